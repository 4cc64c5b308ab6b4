// Package sampler keeps the traces that went wrong even when head sampling
// dropped them.
//
// Head sampling decides when a trace starts, before anything has failed: at
// a 5% ratio, 95% of failing requests leave no trace. ErrorKeeping returns
// an ErrorKeeper, which is both the provider's sampler and a span processor
// in front of the usual batch processor:
//
//	keep := sampler.ErrorKeeping(sdktrace.NewBatchSpanProcessor(exp), sampler.WithRatio(0.05))
//	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(keep))
//
// # Head
//
// As a sampler it makes the decisions of
// sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)): a new trace is
// sampled by its trace ID, a span with a parent follows the parent's sampled
// flag, local or remote. Where that sampler would drop, ErrorKeeper answers
// RecordOnly: the span is recorded but leaves the process unsampled. Sampled
// spans carry tracekeeper.sampler.kept_by=head and the parent's tracestate,
// unchanged, as with the stock sampler (which, in opentelemetry-go v1.47,
// writes no ot=th threshold of its own).
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
// probability, and a backend must not multiply it by one. Other traces are
// released. The next processor sees OnStart for every recorded span and
// OnEnd only for the spans that are kept.
//
// A bounded decision cache remembers the outcome of recently decided
// traces, so spans that end after their trace was decided follow it: handed
// on if it was kept, released if not. Kept traces are capped per second
// (WithMaxKeptPerSecond); traces over the cap are released and counted.
//
// # Limits
//
// Memory is bounded three ways: traces held, spans per trace and estimated
// bytes. Held traces and their limits are split over up to 16 shards by
// trace ID, each with its own lock, so OnEnd costs one map lookup under a
// shard lock. When a new trace finds its shard full, the shard's oldest
// trace is decided early with the spans at hand; when the byte limit is
// exceeded, the oldest traces are decided early until it holds; a trace that
// reaches the span limit is decided early itself, and its later spans follow
// the decision. Early decisions run on the goroutine that ended the span and
// are counted by reason. Nothing blocks and nothing grows without bound.
//
// The byte figure is an estimate, not a measurement, chosen to be cheap: per
// span 512 bytes, plus the span name's length, plus 64 bytes and the key's
// length per attribute (and the value's length for strings), plus 128 bytes
// per event and 96 per link.
//
// # Defaults
//
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
//
// OTEL_TRACES_SAMPLER_ARG sets the ratio when OTEL_TRACES_SAMPLER is
// traceidratio or parentbased_traceidratio; WithRatio wins over it. Held
// traces are checked against their deadlines every fifth of the decision
// delay (at most every 100 ms), so a trace is decided within that much after
// its deadline.
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
// spans non-recording; the package benchmarks show the difference.
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
