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
// first seen, first admitted; values already admitted keep passing.
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
// String, integer, floating-point, slice and map values are guarded;
// booleans have at most two values and always pass. A replaced value of
// any type becomes the string OverflowValue. Slice and map values are
// counted through their string form, which costs an allocation each time
// one is checked; they are rare on spans.
//
// # Defaults
//
// CardinalityGuard() with no options admits DefaultValueLimit (1000)
// values per attribute key and DefaultSpanNameLimit (1000) names per
// instrumentation scope, tracks at most DefaultMaxKeys (512) attribute
// keys and, separately, 512 scopes, exempts no key but OverflowKey, never
// resets, and normalizes span names and the URL-like keys above. There are
// no environment variables.
//
// Memory is bounded whatever the input: values are stored as 64-bit hashes
// in tables of at most 2048 slots per key at the default limit (16 KiB),
// and each key and scope keeps copies of at most four normalized values of
// at most 128 bytes, so that rewriting a raw value to a template it has
// seen costs no allocation. The worst case with all defaults, every key
// and scope full, is under 18 MiB; a typical service uses a few hundred
// KiB. Keys and scope names longer than 256 bytes are not tracked.
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
// unguarded. Reading the attributes in OnStart marks the span's attribute
// array as shared, so the first SetAttributes after start copies it; that
// copy usually stands in for the growth the SDK would have done anyway
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
// OverflowValue and counted with reason key_limit. Values of any length
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
// # Metrics and Stats
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
// had reached its limit) or "key_limit" (the key could not be tracked).
// Guard.Stats returns the same figures as a plain struct.
package processor
