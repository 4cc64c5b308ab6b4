package processor

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tracekeeper/tracekeeper/internal/selfobs"
)

// Self-metric names, attribute keys and values.
const (
	meterName = "github.com/tracekeeper/tracekeeper/processor"

	metricReplaced   = "tracekeeper.processor.cardinality.replaced"
	metricNormalized = "tracekeeper.processor.cardinality.normalized"
	metricMarked     = "tracekeeper.processor.cardinality.marked"
	metricKeys       = "tracekeeper.processor.cardinality.keys"
	metricValues     = "tracekeeper.processor.cardinality.values"
	metricResets     = "tracekeeper.processor.cardinality.resets"

	attrTarget = "target"
	attrKey    = "key"
	attrReason = "reason"

	reasonValueLimit = "value_limit"
	reasonKeyLimit   = "key_limit"
)

// maxMetricKeys bounds how many keys and scopes get their own series in
// the replaced metric: the first ones to overflow. Replacements for any
// others are reported with key=OverflowValue.
const maxMetricKeys = 100

// target says whether a value is an attribute value or a span name.
type target uint8

const (
	targetAttribute target = iota
	targetSpanName
	numTargets
)

func (t target) String() string {
	if t == targetSpanName {
		return "span.name"
	}
	return "attribute"
}

// replacedCounter counts the values replaced for one series of the
// replaced metric.
type replacedCounter struct {
	n      atomic.Uint64
	t      target
	key    string
	reason string
	opt    metric.MeasurementOption
}

func newReplacedCounter(t target, key, reason string) *replacedCounter {
	return &replacedCounter{
		t:      t,
		key:    key,
		reason: reason,
		opt: selfobs.Attributes(
			attribute.String(attrTarget, t.String()),
			attribute.String(attrKey, key),
			attribute.String(attrReason, reason),
		),
	}
}

// replacedCounters holds the bounded set of replaced-value counters. It
// outlives resets, so the counters stay cumulative.
type replacedCounters struct {
	// untrackedBy and otherBy are fixed per target; named holds the first
	// maxMetricKeys keys and scopes to overflow.
	untrackedBy [numTargets]*replacedCounter
	otherBy     [numTargets]*replacedCounter

	mu    sync.Mutex
	named map[namedKey]*replacedCounter
	all   []*replacedCounter
}

type namedKey struct {
	t   target
	key string
}

func newReplacedCounters() *replacedCounters {
	r := &replacedCounters{named: map[namedKey]*replacedCounter{}}
	for t := range numTargets {
		r.untrackedBy[t] = newReplacedCounter(t, OverflowValue, reasonKeyLimit)
		r.otherBy[t] = newReplacedCounter(t, OverflowValue, reasonValueLimit)
		r.all = append(r.all, r.untrackedBy[t], r.otherBy[t])
	}
	return r
}

func (r *replacedCounters) untracked(t target) *atomic.Uint64 {
	return &r.untrackedBy[t].n
}

// forKey returns the counter for key, creating it while fewer than
// maxMetricKeys exist.
func (r *replacedCounters) forKey(t target, key string) *replacedCounter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.named[namedKey{t, key}]; ok {
		return c
	}
	if len(r.named) >= maxMetricKeys {
		return r.otherBy[t]
	}
	c := newReplacedCounter(t, key, reasonValueLimit)
	r.named[namedKey{t, key}] = c
	r.all = append(r.all, c)
	return c
}

func (r *replacedCounters) snapshot() []*replacedCounter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all[:len(r.all):len(r.all)]
}

func (r *replacedCounters) totals() (overLimit, untracked uint64) {
	for _, c := range r.snapshot() {
		if c.reason == reasonKeyLimit {
			untracked += c.n.Load()
		} else {
			overLimit += c.n.Load()
		}
	}
	return overLimit, untracked
}

// top returns the n counters with the most replacements, most first, as
// Offenders.
func (r *replacedCounters) top(n int) []Offender {
	var out []Offender
	for _, c := range r.snapshot() {
		if v := c.n.Load(); v > 0 {
			out = append(out, Offender{Target: c.t.String(), Key: c.key, Reason: c.reason, Replaced: v})
		}
	}
	slices.SortFunc(out, func(a, b Offender) int {
		if c := cmp.Compare(b.Replaced, a.Replaced); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Reason, b.Reason))
	})
	return out[:min(n, len(out))]
}

// values returns the number of values admitted across the table.
func (t *keyTable) values() int {
	n := 0
	t.each(func(ks *keyState) {
		if !ks.exempt {
			n += int(ks.set.count.Load())
		}
	})
	return n
}

// targetOpts are the measurement options of the series that only carry a
// target.
var targetOpts = [numTargets]metric.MeasurementOption{
	selfobs.Attributes(attribute.String(attrTarget, targetAttribute.String())),
	selfobs.Attributes(attribute.String(attrTarget, targetSpanName.String())),
}

// newSelfMetrics registers the Guard's instruments with mp. All of them
// are observable: the span path only bumps atomic counters, which the
// callback reads at collection time. The registration is returned even
// when an instrument could not be created; the error says which.
func newSelfMetrics(mp metric.MeterProvider, g *Guard) (*selfobs.Registration, error) {
	b := selfobs.New(mp, meterName, "processor")
	replacedC := b.Counter(metricReplaced, "{value}",
		"Span names and attribute values replaced with the overflow value (in report-only mode: that would have been).")
	normalizedC := b.Counter(metricNormalized, "{value}",
		"Span names and attribute values rewritten by a normalizer and admitted.")
	markedC := b.Counter(metricMarked, "{span}",
		"Spans marked with the overflow attribute (in report-only mode: the would-overflow attribute).")
	keysG := b.Gauge(metricKeys, "{key}", "Attribute keys and instrumentation scopes tracked.")
	valuesG := b.Gauge(metricValues, "{value}", "Distinct attribute values and span names admitted.")
	resetsC := b.Counter(metricResets, "{reset}", "Times the tracked state was cleared by the reset interval.")
	reg := b.Observe(func(o metric.Observer) {
		for _, c := range g.replaced.snapshot() {
			if n := c.n.Load(); n > 0 {
				o.ObserveInt64(replacedC, int64(n), c.opt)
			}
		}
		o.ObserveInt64(normalizedC, int64(g.normalizedAttrs.Load()), targetOpts[targetAttribute])
		o.ObserveInt64(normalizedC, int64(g.normalizedNames.Load()), targetOpts[targetSpanName])
		o.ObserveInt64(markedC, int64(g.marked.Load()))
		st := g.state.Load()
		o.ObserveInt64(keysG, st.attrs.count.Load(), targetOpts[targetAttribute])
		o.ObserveInt64(keysG, st.names.count.Load(), targetOpts[targetSpanName])
		o.ObserveInt64(valuesG, int64(st.attrs.values()), targetOpts[targetAttribute])
		o.ObserveInt64(valuesG, int64(st.names.values()), targetOpts[targetSpanName])
		o.ObserveInt64(resetsC, int64(g.resets.Load()))
	}, replacedC, normalizedC, markedC, keysG, valuesG, resetsC)
	return reg, b.Err()
}
