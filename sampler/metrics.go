package sampler

import (
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tracekeeper/tracekeeper/internal/selfobs"
)

// Stats is a point-in-time snapshot of an ErrorKeeper's counters. Counters
// count since construction; the Held fields are current values.
type Stats struct {
	// TracesHeld, SpansHeld and BytesHeld describe what is held right now,
	// waiting for a decision. BytesHeld is the package's estimate.
	TracesHeld int
	SpansHeld  int
	BytesHeld  int64

	// HeadSampled counts local traces sampled at the head: new roots
	// selected by the ratio, and spans continuing a sampled remote parent.
	HeadSampled uint64

	// Each decided trace counts once in exactly one of these.
	KeptByError     uint64
	KeptByLatency   uint64
	KeptByPredicate uint64
	RateLimited     uint64 // qualified, but over WithMaxKeptPerSecond; released
	Released        uint64 // no rule matched

	// SpansRescued counts spans handed downstream by the tail, late ones
	// included; SpansReleased counts the spans let go.
	SpansRescued  uint64
	SpansReleased uint64

	// Late spans ended after their trace was decided and followed the
	// decision. They are also counted in SpansRescued or SpansReleased.
	LateSpansKept     uint64
	LateSpansReleased uint64

	// Traces decided before their local root ended plus the decision delay,
	// by cause.
	EvictedMaxTraces uint64 // the trace limit was reached: oldest first
	EvictedMaxBytes  uint64 // the byte limit was exceeded: oldest first
	EvictedMaxSpans  uint64 // the trace reached the span limit itself
	ExpiredMaxWait   uint64 // held for the maximum wait

	// DroppedShutdown counts recorded-only spans released undecided because
	// Shutdown's context ended first, or that ended after Shutdown.
	DroppedShutdown uint64
}

type counters struct {
	headSampled      atomic.Uint64
	decided          [numOutcomes]atomic.Uint64
	spansRescued     atomic.Uint64
	spansReleased    atomic.Uint64
	lateKept         atomic.Uint64
	lateReleased     atomic.Uint64
	evictedMaxTraces atomic.Uint64
	evictedMaxBytes  atomic.Uint64
	evictedMaxSpans  atomic.Uint64
	expiredMaxWait   atomic.Uint64
	droppedShutdown  atomic.Uint64
}

// Stats returns a snapshot of the counters. It briefly takes each shard's
// lock to read what is held.
func (k *ErrorKeeper) Stats() Stats {
	var s Stats
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		s.SpansHeld += sh.spans
		sh.mu.Unlock()
	}
	s.TracesHeld = int(k.held.traces.Load())
	s.BytesHeld = k.held.bytes.Load()
	c := &k.stats
	s.HeadSampled = c.headSampled.Load()
	s.KeptByError = c.decided[outcomeError].Load()
	s.KeptByLatency = c.decided[outcomeLatency].Load()
	s.KeptByPredicate = c.decided[outcomePredicate].Load()
	s.RateLimited = c.decided[outcomeRateLimited].Load()
	s.Released = c.decided[outcomeReleased].Load()
	s.SpansRescued = c.spansRescued.Load()
	s.SpansReleased = c.spansReleased.Load()
	s.LateSpansKept = c.lateKept.Load()
	s.LateSpansReleased = c.lateReleased.Load()
	s.EvictedMaxTraces = c.evictedMaxTraces.Load()
	s.EvictedMaxBytes = c.evictedMaxBytes.Load()
	s.EvictedMaxSpans = c.evictedMaxSpans.Load()
	s.ExpiredMaxWait = c.expiredMaxWait.Load()
	s.DroppedShutdown = c.droppedShutdown.Load()
	return s
}

// Metric names and attribute keys of the sampler's own metrics.
const (
	meterName = "github.com/tracekeeper/tracekeeper/sampler"

	metricDecided  = "tracekeeper.sampler.traces.decided"
	metricEvicted  = "tracekeeper.sampler.traces.evicted"
	metricTraces   = "tracekeeper.sampler.traces.held"
	metricSpans    = "tracekeeper.sampler.spans.held"
	metricBytes    = "tracekeeper.sampler.bytes.held"
	metricRescued  = "tracekeeper.sampler.spans.rescued"
	metricReleased = "tracekeeper.sampler.spans.released"
	metricLate     = "tracekeeper.sampler.spans.late"
	metricDropped  = "tracekeeper.sampler.spans.dropped"

	attrDecision = attribute.Key("tracekeeper.sampler.decision")
	attrReason   = attribute.Key("tracekeeper.sampler.reason")
)

var (
	optHead        = selfobs.Attributes(attrDecision.String(KeptByHead))
	optError       = selfobs.Attributes(attrDecision.String(KeptByError))
	optLatency     = selfobs.Attributes(attrDecision.String(KeptByLatency))
	optPredicate   = selfobs.Attributes(attrDecision.String(KeptByPredicate))
	optRateLimited = selfobs.Attributes(attrDecision.String(DecisionRateLimited))
	optReleased    = selfobs.Attributes(attrDecision.String(DecisionReleased))
	optLateKept    = selfobs.Attributes(attrDecision.String("kept"))
	optMaxTraces   = selfobs.Attributes(attrReason.String("max_traces"))
	optMaxBytes    = selfobs.Attributes(attrReason.String("max_bytes"))
	optMaxSpans    = selfobs.Attributes(attrReason.String("max_spans_per_trace"))
	optMaxWait     = selfobs.Attributes(attrReason.String("max_wait"))
	optShutdown    = selfobs.Attributes(attrReason.String("shutdown"))
)

// registerMetrics creates the observable instruments and the one callback
// that reads Stats at collection time, so the hot path only touches
// atomics. Shutdown retires the registration, so the collection after it
// still sees the final flush and the shutdown drops. Instrument errors are
// reported once; the sampler works without its metrics.
func (k *ErrorKeeper) registerMetrics() *selfobs.Registration {
	b := selfobs.New(k.cfg.meterProvider, meterName, "sampler")
	decided := b.Counter(metricDecided, "{trace}", "Traces decided, by decision.")
	evicted := b.Counter(metricEvicted, "{trace}", "Traces decided early because a limit was reached, by reason.")
	traces := b.Gauge(metricTraces, "{trace}", "Traces held waiting for a decision.")
	spans := b.Gauge(metricSpans, "{span}", "Spans held waiting for a decision.")
	bytes := b.Gauge(metricBytes, "By", "Estimated bytes of the spans held.")
	rescued := b.Counter(metricRescued, "{span}", "Recorded-only spans handed downstream because their trace was kept.")
	released := b.Counter(metricReleased, "{span}", "Recorded-only spans let go because their trace was not kept.")
	late := b.Counter(metricLate, "{span}", "Spans that ended after their trace was decided, by decision.")
	dropped := b.Counter(metricDropped, "{span}", "Spans released undecided, by reason.")
	reg := b.Observe(func(o metric.Observer) {
		s := k.Stats()
		o.ObserveInt64(decided, int64(s.HeadSampled), optHead)
		o.ObserveInt64(decided, int64(s.KeptByError), optError)
		o.ObserveInt64(decided, int64(s.KeptByLatency), optLatency)
		o.ObserveInt64(decided, int64(s.KeptByPredicate), optPredicate)
		o.ObserveInt64(decided, int64(s.RateLimited), optRateLimited)
		o.ObserveInt64(decided, int64(s.Released), optReleased)
		o.ObserveInt64(evicted, int64(s.EvictedMaxTraces), optMaxTraces)
		o.ObserveInt64(evicted, int64(s.EvictedMaxBytes), optMaxBytes)
		o.ObserveInt64(evicted, int64(s.EvictedMaxSpans), optMaxSpans)
		o.ObserveInt64(evicted, int64(s.ExpiredMaxWait), optMaxWait)
		o.ObserveInt64(traces, int64(s.TracesHeld))
		o.ObserveInt64(spans, int64(s.SpansHeld))
		o.ObserveInt64(bytes, s.BytesHeld)
		o.ObserveInt64(rescued, int64(s.SpansRescued))
		o.ObserveInt64(released, int64(s.SpansReleased))
		o.ObserveInt64(late, int64(s.LateSpansKept), optLateKept)
		o.ObserveInt64(late, int64(s.LateSpansReleased), optReleased)
		o.ObserveInt64(dropped, int64(s.DroppedShutdown), optShutdown)
	}, decided, evicted, traces, spans, bytes, rescued, released, late, dropped)
	selfobs.Report(k.cfg.logger, b.Err())
	return reg
}
