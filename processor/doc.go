// Package processor provides CardinalityGuard, a span processor that bounds
// the number of distinct span names and attribute values a service sends to
// its tracing backend.
//
// High-cardinality values (user and request ids, raw URL paths, timestamps)
// in span names and attributes multiply the storage and index cost of every
// tracing backend. The SDK's span limits bound how many attributes one span
// carries, not how many distinct values appear across spans. The Guard
// bounds the latter, the way the metrics SDK bounds attribute sets per
// instrument.
//
// # Model
//
// For every attribute key, and for span names per instrumentation scope,
// the Guard records the distinct values it has admitted. A value seen
// before passes. A new value is admitted while its key has fewer than its
// limit of values; after that, new values are replaced with OverflowValue
// ("tracekeeper.overflow") and the span gets the boolean attribute
// OverflowKey ("tracekeeper.cardinality.overflow") = true. Admission is
// first seen, first admitted; values already admitted keep passing. A span
// name admitted in one scope passes in every scope: each scope's limit
// bounds the new names it brings, so one noisy library cannot crowd out
// the names of the others, and every name that reaches the backend was
// admitted by some scope.
//
// Before a string value is counted it goes through the normalizers, so that
// "/users/12345/orders" and "/users/67890/orders" both become
// "/users/{id}/orders" and count once; the span carries the normalized
// value. The built-in normalizer replaces identifier-like tokens with
// "{id}": runs of digits, UUIDs, hexadecimal strings of 16 or more
// characters with a digit, and alphanumeric tokens of 16 or more characters
// with at least four digits. Tokens are delimited by URL and path
// punctuation, whitespace, brackets, '-', '_' and '.'. It applies to span
// names and to the keys url.path, url.full, http.route, http.target and
// http.url; WithNormalizedKeys adds keys, WithBuiltinNormalizer(false)
// turns it off, and WithNormalizer adds normalizers of your own, which run
// on every string value and span name.
//
// In a URL only the path, the query and the fragment are templated. Where a
// scheme followed by "://" starts, the scheme and the authority after it
// (userinfo, host name, IPv4 or bracketed IPv6 address, port) are kept as
// they are, so a host is never taken for an id:
// "http://127.0.0.1:8080/users/123?page=2" becomes
// "http://127.0.0.1:8080/users/{id}?page={id}". Text without "://", such
// as a bare "10.0.0.1:8080", is tokenized like any other value.
//
// String, integer, floating-point, slice and map values are guarded;
// booleans have at most two values and always pass. A replaced value of
// any type becomes the string OverflowValue. Slice and map values are
// counted through their string form, which costs an allocation each time
// one is checked; they are rare on spans.
//
// # HTTP server span names
//
// WithHTTPRouteSpanNames(true) names server spans the way the semantic
// conventions recommend, "{method} {http.route}" ("GET /users/{id}"), from
// the attributes http.request.method and http.route, with "HTTP" for a
// missing or "_OTHER" method. Spans that are not of kind server, or carry
// no http.route, keep their own name, normalized as above. The rebuilt
// name is guarded like any other. Most HTTP instrumentation sets
// http.route after the span starts, so this needs the wrapping wiring
// (WithDownstream) to see it.
//
// # What the overflow value does to queries
//
// A replaced value is gone: the backend stores "tracekeeper.overflow" in
// its place. Filtered queries therefore under-count: a search for
// enduser.id = "u-1234" misses the spans whose enduser.id was replaced,
// and a count or rate grouped by a guarded key shows the replaced spans
// under one "tracekeeper.overflow" group. The same holds for span names:
// the replaced spans form one operation named "tracekeeper.overflow", and
// metrics a backend derives per operation (request rates, latency
// histograms) count them there. Every affected span carries
// tracekeeper.cardinality.overflow = true, so a query for that attribute
// finds them and says how large the gap is; the replaced metric says which
// keys and scopes lost values. Values admitted before the limit was
// reached are never replaced, so queries for them stay exact.
//
// # Choosing limits
//
// A limit should sit comfortably above the number of legitimate distinct
// values a key takes in normal traffic, and far below what would hurt the
// backend. To find that number, run the Guard first in report-only mode
// (WithReportOnly): it admits, counts and logs exactly as it would act, but
// rewrites nothing, and marks the spans it would have changed with
// WouldOverflowKey ("tracekeeper.cardinality.would_overflow") = true.
// Stats.TopOffenders, the replaced metric and the log of WithLogger name
// the keys and scopes that would overflow and by how much; the values gauge
// says how many values are admitted. Then:
//
//   - keep the default of 1000 for keys of bounded vocabulary (methods,
//     status codes, routes, hosts) and raise it with WithKeyLimit for a key
//     that legitimately needs more;
//   - give keys that carry ids (user, session, request, order ids) a small
//     limit, or exempt them with WithExemptKeys if your backend stores them
//     without indexing them;
//   - size WithSpanNameLimit from the number of routes and operations a
//     scope has, with room to grow; routes named with
//     WithHTTPRouteSpanNames count once each;
//   - use WithResetInterval when the legitimate set drifts over days
//     (deployments, tenants), so that new values get room again.
//
// Then turn report-only off and keep watching the replaced metric: a key
// that starts overflowing after a deployment usually means an id found its
// way into a value.
//
// # Defaults
//
// CardinalityGuard() with no options admits DefaultValueLimit (1000)
// values per attribute key and DefaultSpanNameLimit (1000) names per
// instrumentation scope, tracks at most DefaultMaxKeys (512) attribute
// keys and, separately, 512 scopes, exempts no key but OverflowKey, never
// resets, acts rather than only reporting, keeps span names as they are
// apart from normalizing them, logs nothing, and normalizes span names and
// the URL-like keys above. There are no environment variables.
//
// Memory is bounded whatever the input: values are stored as 64-bit hashes,
// the first four of a key in the key's own state and the rest in tables of
// at most 2048 slots per key at the default limit (16 KiB); the span names
// of all scopes are held together, in tables of under 22 bytes per name
// admitted (at most 1000 per scope by default). Each key and scope keeps
// copies of at most four normalized values of at most 128 bytes, so that
// rewriting a raw value to a template it has seen costs no allocation.
// The fingerprints of up to 8192 admitted attribute values are also kept
// in one table in front of the keys' own (128 KiB), and
// WithHTTPRouteSpanNames keeps up to 1024 of the names it builds, those of
// at most 128 bytes (under 200 KiB), until a reset forgets them; a longer
// name is built again for each span, costing one allocation, and kept by
// nothing. The cache of spans that passed unchanged (see Cost) holds at
// most 512 of them, of at most 16 attributes and 1 KiB of strings each,
// and keeps those strings alive (under 820 KiB in all, more only if they
// are parts of longer strings). The worst case with all defaults, every
// key and scope full, is under 21 MiB, and stays so with
// WithHTTPRouteSpanNames; a typical service uses a few hundred KiB.
// Keys and scope names longer than 256 bytes are not tracked.
//
// # Wirings and what each covers
//
// Recommended: the Guard wraps the processor that exports, and hands it a
// sanitized read-only view of each span when it ends.
//
//	tp := sdktrace.NewTracerProvider(
//		sdktrace.WithSpanProcessor(processor.CardinalityGuard(
//			processor.WithDownstream(sdktrace.NewBatchSpanProcessor(exp)),
//		)),
//	)
//
// This covers the final span name and every span attribute, including
// those set after the span started (http.response.status_code, ids added
// by handlers). The downstream's OnStart still sees the span as it was
// started, and processors registered next to the Guard rather than under
// it see the spans unchanged. A span in which nothing changed is passed
// through as it is, without allocating; otherwise the Guard allocates the
// view and a copy of the attributes, together in one allocation for spans
// of fewer than 20 attributes.
//
// Plain: the Guard is registered next to the exporting processor.
//
//	tp := sdktrace.NewTracerProvider(
//		sdktrace.WithSpanProcessor(processor.CardinalityGuard()),
//		sdktrace.WithBatcher(exp),
//	)
//
// The SDK hands a processor a writable span only in OnStart, so this form
// covers the span name and the attributes present when the span starts
// (those passed to Tracer.Start with trace.WithAttributes, or added by the
// sampler), rewriting them in place through SetName and SetAttributes.
// Attributes set after start, and a name changed with SetName, pass
// unguarded. A span that the span cache (see Cost) recognizes is read in
// place, under the span's own lock; for any other span the Guard reads the
// attributes through the span's methods, which marks its attribute array
// as shared, so the first SetAttributes after start copies it; that copy
// usually stands in for the growth the SDK would have done anyway
// (BenchmarkGuardLateAttributes shows no extra allocation), and costs at
// most one allocation per span. Register the Guard before the exporting
// processor so the SDK calls it first.
//
// Neither wiring touches event and link attributes, the status
// description, the resource or the instrumentation scope. In the plain
// wiring the marker is dropped by the SDK if the span already holds its
// attribute count limit; in the wrapping one the view may hold one
// attribute more than that limit.
//
// # Bad input
//
// No input makes the Guard panic. Attributes with an empty key (which the
// SDK drops before a processor sees them) pass untouched. Keys and scope
// names longer than 256 bytes, and keys or scopes that arrive after
// WithMaxKeys is reached, are not tracked: their values are replaced with
// OverflowValue and counted with reason key_limit (a span name of such a
// scope passes if another scope admitted it, once normalized if
// WithNormalizer is set). Values of any length
// are hashed whole, so a huge value costs time proportional to its length
// and no memory. Invalid UTF-8 is neither repaired nor rejected: it is
// counted like any other bytes, and the built-in normalizer keeps bytes it
// does not replace as they are. A string value equal to OverflowValue
// passes without being counted. Option values out of range (limits below
// 1, a negative reset interval, nil processors, providers or normalizers,
// empty keys) are ignored and the default is kept, as each option
// documents.
//
// # Concurrency
//
// A Guard is safe for concurrent use. Checking a value admitted before
// takes no lock: it reads immutable maps and an open-addressing table
// through atomic loads. Admitting a new value locks only the table of its
// own key, and once a key is full its misses are rejected without a lock.
//
// # Cost
//
// In the steady state, every value admitted before, a span costs no lock
// of the Guard's and no allocation (the plain wiring reads the span under
// the span's own lock, as the span's methods do). Instrumentation mostly
// builds a span's name, keys and values from strings made once
// (constants, or strings built at startup), so the same strings, by
// address and length, come back span after span;
// the Guard remembers up to 512 spans that passed unchanged by the
// identity of their name and attributes (the addresses and lengths of the
// strings, which it keeps alive, the types and the numbers) and passes a
// span that matches one with a comparison per attribute and no hash of
// any string; a span is compared first with the one remembered for its
// name, and only when that differs are its identities hashed to find
// another. A span learnt is one seen twice in a row in its slot with
// the same identities; a reset forgets them. Other spans, and every span
// with custom normalizers or WithHTTPRouteSpanNames, whose verdicts depend
// on more than those identities, cost a hash and a probe of a table per
// attribute and for the name: each attribute's value is hashed with a seed
// taken from the identity of its key string and looked up in one table of
// the pairs that passed before, without finding the key's own state
// first. When the spans of a name keep missing the cache (a string made
// for each request, a user agent or a path, is enough), only one in 32 of
// them is looked up there, and the others pay a little for being counted
// out. The span name is checked without reading the span's
// instrumentation scope when it was admitted before, because on an ended
// span that read costs more than the rest of the check.
//
// BenchmarkGuardAdded measures what the Guard adds to a real
// TracerProvider ending server spans with eight attributes, paired with
// the same pipeline without it; bench/'s AddedCost does the same beside and
// under a BatchSpanProcessor. Both use strings made once, so they measure
// the span cache's path; BenchmarkGuardAdded's plain-fresh and
// wrapping-fresh give each span a user agent string of its own, which
// misses it. The README gives the figures measured on this project's
// machine; a single run's median moves by tens of nanoseconds on a busy
// host, so compare many interleaved runs (benchstat).
//
// # Metrics, Stats and logs
//
// The Guard reports through the MeterProvider given with WithMeterProvider
// (default: the global one). All instruments are asynchronous; the span
// path only increments atomic counters.
//
//	tracekeeper.processor.cardinality.replaced    counter {value}  target, key, reason
//	tracekeeper.processor.cardinality.normalized  counter {value}  target
//	tracekeeper.processor.cardinality.marked      counter {span}
//	tracekeeper.processor.cardinality.keys        gauge   {key}    target
//	tracekeeper.processor.cardinality.values      gauge   {value}  target
//	tracekeeper.processor.cardinality.resets      counter {reset}
//
// target is "attribute" or "span.name". key is the attribute key, or the
// scope name for span names; only the first 100 keys and scopes to
// overflow get their own series, later ones and untracked ones are
// reported as key "tracekeeper.overflow". reason is "value_limit" (the key
// had reached its limit) or "key_limit" (the key could not be tracked). In
// report-only mode, replaced, normalized and marked count what the Guard
// would have done. After Shutdown the next collection still reports the
// final figures; then the instruments go quiet. If the instruments cannot
// be created, the Guard works without them and says so once, through the
// logger of WithLogger or else the OpenTelemetry error handler.
//
// Guard.Stats returns the same figures as a plain struct, with
// TopOffenders: the keys and scopes replaced most, with their counts.
// WithLogger logs those at most once per WithLogInterval (default one
// minute), only when something new was replaced, from a goroutine of the
// Guard that Shutdown stops: logging never runs on a span's path.
package processor
