package sampler

import (
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// KeptByKey is the span attribute that says why a span was exported. Its
// values are KeptByHead, KeptByError, KeptByLatency and KeptByPredicate.
const KeptByKey = attribute.Key("tracekeeper.sampler.kept_by")

// Values of KeptByKey.
const (
	KeptByHead      = "head"      // sampled up front by the head ratio or a sampled parent
	KeptByError     = "error"     // a held span of the trace had status Error
	KeptByLatency   = "latency"   // the held spans covered the latency threshold
	KeptByPredicate = "predicate" // the user predicate matched a held span
)

// DryRun attributes: in dry run (WithDryRun) every span is handed
// downstream carrying WouldKeepKey, whether the sampler would have
// exported it, and DecisionKey, the decision taken for its trace: one of
// KeptByHead, KeptByError, KeptByLatency, KeptByPredicate,
// DecisionRateLimited or DecisionReleased.
const (
	WouldKeepKey = attribute.Key("tracekeeper.sampler.would_keep")
	DecisionKey  = attribute.Key("tracekeeper.sampler.decision")
)

// Values of DecisionKey besides the KeptBy values.
const (
	DecisionRateLimited = "rate_limited" // a rule matched, but the cap of kept traces was reached
	DecisionReleased    = "released"     // no rule matched
)

// markedSpan is the read-only view under which a span is handed
// downstream by the tail (or by any path in dry run): sampled, with its
// marks attached and the tracestate threshold erased when it was not
// sampled at the head. Every other method reads through to the span as
// recorded.
type markedSpan struct {
	sdktrace.ReadOnlySpan
	sc     trace.SpanContext
	parent trace.SpanContext
	marks  []attribute.KeyValue
}

var _ sdktrace.ReadOnlySpan = (*markedSpan)(nil)

func newMarkedSpan(s sdktrace.ReadOnlySpan, marks []attribute.KeyValue) *markedSpan {
	sc := s.SpanContext()
	parent := s.Parent()
	if !sc.IsSampled() {
		sc = sc.WithTraceFlags(sc.TraceFlags().WithSampled(true)).
			WithTraceState(eraseThreshold(sc.TraceState()))
		if parent.IsValid() && !parent.IsRemote() {
			// A local parent belongs to the same held trace and is kept with it.
			parent = parent.WithTraceFlags(parent.TraceFlags().WithSampled(true)).
				WithTraceState(eraseThreshold(parent.TraceState()))
		}
	}
	return &markedSpan{ReadOnlySpan: s, sc: sc, parent: parent, marks: marks}
}

func (s *markedSpan) SpanContext() trace.SpanContext { return s.sc }

func (s *markedSpan) Parent() trace.SpanContext { return s.parent }

// Attributes returns the recorded attributes followed by the marks, in a
// new slice: the recorded one may be shared with the SDK.
func (s *markedSpan) Attributes() []attribute.KeyValue {
	attrs := s.ReadOnlySpan.Attributes()
	out := make([]attribute.KeyValue, len(attrs), len(attrs)+len(s.marks))
	copy(out, attrs)
	return append(out, s.marks...)
}

// eraseThreshold removes the th sub-key of the OpenTelemetry tracestate
// entry (ot=th:…;rv:…). A rescued span was not selected with any known
// probability, so, per the OpenTelemetry probability-sampling rules, it must
// not carry a threshold a backend would extrapolate counts from. Other
// sub-keys (rv among them) and other vendors' entries are kept; an ot entry
// left empty is removed.
func eraseThreshold(ts trace.TraceState) trace.TraceState {
	ot := ts.Get("ot")
	if ot == "" {
		return ts
	}
	kept, changed := dropSubKey(ot, "th")
	if !changed {
		return ts
	}
	if kept == "" {
		return ts.Delete("ot")
	}
	out, err := ts.Insert("ot", kept)
	if err != nil {
		// What remains is not a valid value on its own (blanks only, say):
		// dropping the entry errs on the safe side.
		return ts.Delete("ot")
	}
	return out
}

// dropSubKey removes every "key:value" member named key from a
// semicolon-separated list and reports whether anything was removed.
func dropSubKey(list, key string) (string, bool) {
	var b strings.Builder
	changed, first := false, true
	for member := range strings.SplitSeq(list, ";") {
		name, _, _ := strings.Cut(member, ":")
		if name == key {
			changed = true
			continue
		}
		if !first {
			b.WriteByte(';')
		}
		first = false
		b.WriteString(member)
	}
	if !changed {
		return list, false
	}
	return b.String(), true
}

// Estimated bytes a held span keeps alive. The figure follows what the
// SDK's span snapshot references: the snapshot itself, its name, its
// attributes (the backing array, keys, strings and the elements of slice
// and map values), its events and links with their attributes, the status
// description and the tracestate. The resource and the instrumentation
// scope are shared by every span of a provider and are not counted. Sizes
// are those of opentelemetry-go v1.47 on 64-bit platforms, rounded up; the
// Go allocator's size classes add up to about an eighth more, which the
// 20% tolerance of the bound covers.
const (
	spanBaseBytes    = 512 // the snapshot (416 B), its interface in the trace's buffer, the buffer's growth
	traceBaseBytes   = 384 // a held trace's entry, map slot and span buffer
	kvBytes          = 64  // an attribute.KeyValue in a backing array
	valueBytes       = 48  // an attribute.Value inside a SLICE value
	eventBytes       = 72  // an sdktrace.Event in the events array
	linkBytes        = 96  // an sdktrace.Link in the links array
	stringBytes      = 16  // a string header inside a []string value
	boxBytes         = 16  // the interface box of a slice or map value
	traceMemberBytes = 32  // one tracestate list member
)

// estimateBytes takes the span's context and status description from the
// caller, which has read them already: every accessor of the SDK's span
// snapshot copies the whole snapshot.
func estimateBytes(s sdktrace.ReadOnlySpan, sc trace.SpanContext, statusDesc string) int64 {
	n := spanBaseBytes + len(s.Name()) + attrsBytes(s.Attributes())
	if evs := s.Events(); len(evs) > 0 {
		n += eventBytes * cap(evs)
		for i := range evs {
			n += len(evs[i].Name) + attrsBytes(evs[i].Attributes)
		}
	}
	if lks := s.Links(); len(lks) > 0 {
		n += linkBytes * cap(lks)
		for i := range lks {
			n += traceStateBytes(lks[i].SpanContext.TraceState()) + attrsBytes(lks[i].Attributes)
		}
	}
	n += len(statusDesc)
	n += traceStateBytes(sc.TraceState())
	return int64(n)
}

// attrsBytes estimates an attribute slice: its backing array, then what
// each key and value references.
func attrsBytes(kvs []attribute.KeyValue) int {
	n := kvBytes * cap(kvs)
	for i := range kvs {
		kv := &kvs[i]
		n += len(kv.Key)
		switch t := kv.Value.Type(); {
		case t == attribute.STRING:
			n += len(kv.Value.AsString())
		case t > attribute.STRING: // slices and maps; scalars reference nothing
			n += valueExtraBytes(&kv.Value)
		}
	}
	return n
}

// valueExtraBytes is what a value references outside its own 48 bytes.
// Scalars reference nothing; slice and map values are read through their
// As… accessors, which copy the elements: rare attributes pay for that.
func valueExtraBytes(v *attribute.Value) int {
	switch v.Type() {
	case attribute.STRING:
		return len(v.AsString())
	case attribute.BYTESLICE:
		return len(v.AsByteSlice())
	case attribute.BOOLSLICE:
		return boxBytes + len(v.AsBoolSlice())
	case attribute.INT64SLICE:
		return boxBytes + 8*len(v.AsInt64Slice())
	case attribute.FLOAT64SLICE:
		return boxBytes + 8*len(v.AsFloat64Slice())
	case attribute.STRINGSLICE:
		ss := v.AsStringSlice()
		n := boxBytes + stringBytes*len(ss)
		for _, s := range ss {
			n += len(s)
		}
		return n
	case attribute.SLICE:
		vs := v.AsSlice()
		n := boxBytes + valueBytes*len(vs)
		for i := range vs {
			n += valueExtraBytes(&vs[i])
		}
		return n
	case attribute.MAP:
		return boxBytes + attrsBytes(v.AsMap())
	}
	return 0
}

// traceStateBytes estimates a tracestate's member list.
func traceStateBytes(ts trace.TraceState) int {
	if ts.Len() == 0 {
		return 0
	}
	n := 0
	ts.Walk(func(k, v string) bool {
		n += traceMemberBytes + len(k) + len(v)
		return true
	})
	return n
}
