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

// rescuedSpan is the read-only view under which a recorded-only span is
// handed downstream once its trace is kept: sampled, with the reason
// attached and the tracestate threshold erased. Every other method reads
// through to the span as recorded.
type rescuedSpan struct {
	sdktrace.ReadOnlySpan
	sc     trace.SpanContext
	parent trace.SpanContext
	keptBy attribute.KeyValue
}

var _ sdktrace.ReadOnlySpan = (*rescuedSpan)(nil)

func newRescuedSpan(s sdktrace.ReadOnlySpan, keptBy attribute.KeyValue) *rescuedSpan {
	sc := s.SpanContext()
	sc = sc.WithTraceFlags(sc.TraceFlags().WithSampled(true)).
		WithTraceState(eraseThreshold(sc.TraceState()))
	parent := s.Parent()
	if parent.IsValid() && !parent.IsRemote() {
		// A local parent belongs to the same held trace and is kept with it.
		parent = parent.WithTraceFlags(parent.TraceFlags().WithSampled(true)).
			WithTraceState(eraseThreshold(parent.TraceState()))
	}
	return &rescuedSpan{ReadOnlySpan: s, sc: sc, parent: parent, keptBy: keptBy}
}

func (s *rescuedSpan) SpanContext() trace.SpanContext { return s.sc }

func (s *rescuedSpan) Parent() trace.SpanContext { return s.parent }

// Attributes returns the recorded attributes followed by the kept-by
// attribute, in a new slice: the recorded one may be shared with the SDK.
func (s *rescuedSpan) Attributes() []attribute.KeyValue {
	attrs := s.ReadOnlySpan.Attributes()
	out := make([]attribute.KeyValue, len(attrs), len(attrs)+1)
	copy(out, attrs)
	return append(out, s.keptBy)
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

// Estimated bytes a held span keeps alive. The figure is a cheap estimate,
// not a measurement: a fixed cost for the span record, plus a fixed cost per
// attribute, event and link, plus the lengths of the name, the attribute
// keys and the string attribute values.
const (
	spanBaseBytes  = 512 // span record, its interface box and its slot here
	attrBaseBytes  = 64  // attribute.KeyValue with its value header
	eventBaseBytes = 128 // event record, without its attributes
	linkBaseBytes  = 96  // link record, without its attributes
)

func estimateBytes(s sdktrace.ReadOnlySpan) int64 {
	n := spanBaseBytes + len(s.Name())
	for _, kv := range s.Attributes() {
		n += attrBaseBytes + len(kv.Key)
		if kv.Value.Type() == attribute.STRING {
			n += len(kv.Value.AsString())
		}
	}
	n += eventBaseBytes*len(s.Events()) + linkBaseBytes*len(s.Links())
	return int64(n)
}
