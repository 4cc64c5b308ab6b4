package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
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
	reason string
	opt    metric.ObserveOption
}

func newReplacedCounter(t target, key, reason string) *replacedCounter {
	return &replacedCounter{
		reason: reason,
		opt: metric.WithAttributeSet(attribute.NewSet(
			attribute.String(attrTarget, t.String()),
			attribute.String(attrKey, key),
			attribute.String(attrReason, reason),
		)),
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

// selfMetrics is the Guard's registration with its MeterProvider. All
// instruments are observable: the hot path only bumps atomic counters,
// which the callback reads at collection time.
type selfMetrics struct {
	reg metric.Registration
}

var targetOpts = [numTargets]metric.ObserveOption{
	metric.WithAttributeSet(attribute.NewSet(attribute.String(attrTarget, targetAttribute.String()))),
	metric.WithAttributeSet(attribute.NewSet(attribute.String(attrTarget, targetSpanName.String()))),
}

func newSelfMetrics(mp metric.MeterProvider, g *Guard) (*selfMetrics, error) {
	m := mp.Meter(meterName)
	replacedC, err1 := m.Int64ObservableCounter(metricReplaced,
		metric.WithUnit("{value}"),
		metric.WithDescription("Span names and attribute values replaced with the overflow value."))
	normalizedC, err2 := m.Int64ObservableCounter(metricNormalized,
		metric.WithUnit("{value}"),
		metric.WithDescription("Span names and attribute values rewritten by a normalizer and admitted."))
	markedC, err3 := m.Int64ObservableCounter(metricMarked,
		metric.WithUnit("{span}"),
		metric.WithDescription("Spans marked with the overflow attribute."))
	keysG, err4 := m.Int64ObservableGauge(metricKeys,
		metric.WithUnit("{key}"),
		metric.WithDescription("Attribute keys and instrumentation scopes tracked."))
	valuesG, err5 := m.Int64ObservableGauge(metricValues,
		metric.WithUnit("{value}"),
		metric.WithDescription("Distinct attribute values and span names admitted."))
	resetsC, err6 := m.Int64ObservableCounter(metricResets,
		metric.WithUnit("{reset}"),
		metric.WithDescription("Times the tracked state was cleared by the reset interval."))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return nil, fmt.Errorf("processor: create metrics: %w", err)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
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
		return nil
	}, replacedC, normalizedC, markedC, keysG, valuesG, resetsC)
	if err != nil {
		return nil, fmt.Errorf("processor: register metrics callback: %w", err)
	}
	return &selfMetrics{reg: reg}, nil
}

func (m *selfMetrics) unregister() error {
	return m.reg.Unregister()
}
