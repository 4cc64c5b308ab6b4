// Package sampler keeps the traces that went wrong even when head sampling
// dropped them.
//
// Head sampling decides when a trace starts, before anything has failed: at
// a 5% ratio, 95% of failing requests leave no trace. ErrorKeeping returns
// an ErrorKeeper, which is both the provider's sampler and a span processor
// in front of the usual batch processor; TracerProviderOptions registers
// both sides at once:
//
//	keep := sampler.ErrorKeeping(sdktrace.NewBatchSpanProcessor(exp), sampler.WithRatio(0.05))
//	tp := sdktrace.NewTracerProvider(keep.TracerProviderOptions()...)
//
// Registered on one side only, it says so once (WithLogger, or the
// OpenTelemetry error handler).
//
// # Head
//
// As a sampler it asks the head for every new local trace and every span
// with a remote parent. The default head is
// sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)); WithHead takes
// any sdktrace.Sampler instead, such as a jaegerremote sampler, a
// probability sampler writing the ot=th threshold, or a rule sampler.
// What the head samples goes out as the head returned it, tracestate and
// attributes included, with tracekeeper.sampler.kept_by=head added. Where
// the head drops, ErrorKeeper answers RecordOnly: the span is recorded but
// leaves the process unsampled. A span with a local parent follows the
// parent without asking the head, so a trace is sampled or held whole in
// this process.
//
// # Tail
//
// As a processor it passes sampled spans straight to the next processor and
// holds recorded-only spans per trace. A trace is decided when the decision
// delay has passed after its local root span ended (the first span of the
// trace in this process: no parent, or a remote one), or when it has been
// held for the maximum wait. It is kept when any held span has status Error,
// or the held spans cover at least the latency threshold (earliest start to
// latest end), or the predicate matches a span; rules are tried in that
// order and the first match names the reason. The spans of a kept trace go
// to the next processor as read-only views that report the sampled flag
// (on the span and on a local parent), carry
// tracekeeper.sampler.kept_by=error|latency|predicate, and have the ot=th
// tracestate threshold erased: a rescued span was not selected with a known
// probability, and a backend must not multiply it by one. Head-sampled
// spans keep the threshold their head wrote. Other traces are released.
// The next processor sees OnStart for every recorded span and OnEnd only
// for the spans that are kept.
//
// A bounded decision cache remembers the outcome of recently decided
// traces, so spans that end after their trace was decided follow it: handed
// on if it was kept, released if not.
//
// # Early decisions
//
// A limit can force a decision before the trace's deadline: the trace
// limit or the byte limit (the oldest held trace is decided), the span
// limit (the trace that reached it), or the maximum wait. An early
// decision applies the same rules to the spans held at that moment: a
// trace that already holds an Error span, covers the latency threshold or
// matches the predicate is kept, not released. Its spans that end later
// follow the decision as late spans; an error in a span that ends after a
// release does not reopen it. Early decisions run on the goroutine that
// ended the span, or on the background goroutine for the maximum wait,
// and are counted by reason.
//
// # Limits
//
// Memory is bounded three ways: traces held (WithMaxTraces), spans per
// trace (WithMaxSpansPerTrace) and bytes held (WithMaxBytes). The trace and
// byte limits bound the totals: held traces are spread over up to 16
// shards by trace ID, each with its own lock, so OnEnd costs one map lookup
// under a shard lock (two for a trace's first span, which also asks the
// decision cache), but one trace may use the whole budget when the
// others leave room, and when a limit is exceeded the oldest held trace of
// any shard is decided first, traces of equal age being taken from every
// shard in turn. For an instant the totals may exceed a limit by the spans
// other goroutines are adding at the same moment. Nothing blocks and
// nothing grows without bound.
//
// A held span is the sampler's own copy, not the SDK's record: a string a
// span recorded may point into a larger one and keep all of it alive (the
// SDK shortens a value over SpanLimits.AttributeValueLengthLimit by
// slicing it, a value may be the first bytes of a request body, a
// tracestate member points into the header it was parsed from). The copy
// owns what it holds: its name, its attribute keys and values of every
// type (string slices, slices and maps included), its events and links
// with their attributes, the status description and the trace states are
// copied into buffers of its own, and the record is let go. The byte
// figure (Stats.BytesHeld) is what the copies keep alive, each copy and
// its buffers counted by the sizes allocated, plus each held trace's
// entry and span buffer. The resource and instrumentation scope, shared by all spans of
// a provider, are not copied and not counted. The heap retained by held
// spans stays within WithMaxBytes plus 20% (allocator rounding), whatever
// the spans' shape; the decision cache (about 45 bytes per remembered
// trace) is bounded separately by WithDecisionCacheSize.
//
// Kept spans go downstream with the values they were recorded with. The
// copies of released spans are reused for later spans, so that holding a
// span of plain attributes allocates nothing once the sampler has warmed
// up (events, links, slice and map values, and a trace state other than
// the last one copied, allocate their copies); with WithPredicate they
// are not reused, since the predicate may keep the spans it is handed.
// Copying costs time instead (see What it cannot see).
//
// # The cap on kept traces
//
// Traces kept by the tail are capped by a token bucket: it refills at
// WithMaxKeptPerSecond traces per second and holds up to WithMaxKeptBurst
// of them, by default five seconds' worth (500 at the default 100 per
// second). A burst of failures as an outage starts is kept whole; a
// sustained flood is held to the rate, the traces over it released and
// counted as rate_limited. A larger burst keeps a longer spike whole at
// the price of a larger spike of spans downstream. Head-sampled traces are
// never capped.
//
// # Dry run
//
// WithDryRun(true) decides as usual, but hands every recorded span
// downstream, sampled, marked with tracekeeper.sampler.would_keep (a
// bool) and tracekeeper.sampler.decision (head, error, latency, predicate,
// rate_limited or released), so a user can see in the backend what the
// sampler would keep before trusting it. Propagation, counters and metrics
// are those of a normal run.
//
// # Flush and shutdown
//
// ForceFlush decides every held trace now and flushes the next processor;
// Shutdown does the same and shuts it down. Both return by their
// context's deadline even when the downstream is slow, late by no more
// than the time to take the shard locks and, for Shutdown, to release
// what is held (well under a millisecond for thousands of traces): the
// deciding runs on a goroutine of its own, and past the deadline the call
// returns an error wrapping ctx.Err() that says what was left. After a
// ForceFlush deadline, traces not reached stay held and kept spans in hand
// go on being handed downstream. After a Shutdown deadline nothing more is
// handed on: held traces are released undecided and spans in hand are
// dropped as the downstream returns, all counted as
// spans.dropped{reason=shutdown}. The metrics stay registered for one more
// collection, which sees the final flush and those drops.
//
// # Defaults
//
//	head                  ParentBased(TraceIDRatioBased(ratio))  WithHead
//	ratio                 0.05     WithRatio, OTEL_TRACES_SAMPLER_ARG
//	decision delay        500 ms   WithDecisionDelay
//	maximum wait          30 s     WithMaxWait
//	latency threshold     off      WithLatencyThreshold
//	predicate             none     WithPredicate
//	traces held           10 000   WithMaxTraces
//	spans per trace       1 000    WithMaxSpansPerTrace
//	bytes held            64 MiB   WithMaxBytes
//	decision cache        50 000   WithDecisionCacheSize
//	kept traces / second  100      WithMaxKeptPerSecond
//	kept burst            500      WithMaxKeptBurst (5 s of the rate)
//	dry run               off      WithDryRun
//
// OTEL_TRACES_SAMPLER_ARG sets the ratio when OTEL_TRACES_SAMPLER is
// traceidratio or parentbased_traceidratio; WithRatio wins over it, and
// WithHead over both. Held traces are checked against their deadlines
// every fifth of the decision delay (at most every 100 ms), so a trace is
// decided within that much after its deadline.
//
// # What it cannot see
//
// Only this process's spans. A trace it rescues was propagated to other
// services with sampled=0, so their spans of it are gone unless they run
// their own tail; an exported rescued trace is this process's part of it.
// An error that happens after its trace was decided (in a span that ends
// later than the decision delay after the local root) does not reopen the
// decision. A span ending after the decision cache forgot its trace starts
// a new held trace of its own. Recording every span costs what the SDK
// charges for a recorded span, where the stock ratio sampler makes 95% of
// spans non-recording; holding a span costs a copy of it. Both are
// measured in one run of BenchmarkKeeperAdded, at a 5% head with 1% of
// traces failing and spans of eight attributes: on a quiet 2-core AMD
// EPYC, the keeper adds about 3.4 µs per span to the stock pipeline's
// 1.0 µs, 1.7 µs of it the SDK's recording and 1.6 µs its own copying,
// holding and deciding; without the copy, its own part was 0.85-1.0 µs in
// runs alternating with it.
//
// Whole-trace tail sampling across services belongs in an OpenTelemetry
// Collector tier: a first tier with the loadbalancing exporter routing by
// trace ID, in front of a second tier running the tail_sampling processor.
// Feed it with this project's exporter and sample at the head with
// ParentBased(AlwaysOn) or a ratio of 1.
//
// # Metrics
//
// Through WithMeterProvider (default otel.GetMeterProvider()), read at
// collection time from the counters that Stats also returns:
//
//	tracekeeper.sampler.traces.decided   {trace}  tracekeeper.sampler.decision=head|error|latency|predicate|rate_limited|released
//	tracekeeper.sampler.traces.evicted   {trace}  tracekeeper.sampler.reason=max_traces|max_bytes|max_spans_per_trace|max_wait
//	tracekeeper.sampler.traces.held      {trace}  gauge
//	tracekeeper.sampler.spans.held       {span}   gauge
//	tracekeeper.sampler.bytes.held       By       gauge, estimated
//	tracekeeper.sampler.spans.rescued    {span}
//	tracekeeper.sampler.spans.released   {span}
//	tracekeeper.sampler.spans.late       {span}   tracekeeper.sampler.decision=kept|released
//	tracekeeper.sampler.spans.dropped    {span}   tracekeeper.sampler.reason=shutdown
package sampler
