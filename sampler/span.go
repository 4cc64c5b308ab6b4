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
// sampled at the head. Every other method reads through to the span: the
// sampler's copy of a held span, the SDK's record of a late or
// head-sampled one.
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

// Attributes returns the span's attributes followed by the marks, in a
// new slice: the SDK's record shares its own with the span, and the
// sampler's copy decodes them from its records.
func (s *markedSpan) Attributes() []attribute.KeyValue {
	if h, ok := s.ReadOnlySpan.(*heldSpan); ok {
		return append(h.attributes(len(s.marks)), s.marks...)
	}
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
