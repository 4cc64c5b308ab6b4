package sampler

import (
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestEraseThreshold(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"vendor=x", "vendor=x"},
		{"ot=th:8", ""},
		{"ot=th:8;rv:abcdef01234567", "ot=rv:abcdef01234567"},
		{"ot=rv:abcdef01234567;th:8;x:y", "ot=rv:abcdef01234567;x:y"},
		{"a=1,ot=th:0;x:y,b=2", "ot=x:y,a=1,b=2"},
		{"a=1,ot=rv:01", "a=1,ot=rv:01"},
		{"ot=thx:1;th:2", "ot=thx:1"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ts, err := trace.ParseTraceState(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := eraseThreshold(ts).String(); got != tt.want {
				t.Errorf("eraseThreshold(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzEraseThreshold(f *testing.F) {
	for _, s := range []string{
		"", "ot=th:8", "ot=th:8;rv:abcdef01234567", "a=1,ot=th:0;x:y,b=2",
		"ot=;", "ot=th", "ot=th:;th:1", "ot=:th", "t@v=1,ot=rv:1;th:fffff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ts, err := trace.ParseTraceState(in)
		if err != nil {
			return
		}
		out := eraseThreshold(ts)
		if out.Len() > ts.Len() {
			t.Fatalf("%q grew to %q", in, out.String())
		}
		for m := range strings.SplitSeq(out.Get("ot"), ";") {
			if name, _, _ := strings.Cut(m, ":"); name == "th" {
				t.Fatalf("%q: th survived in %q", in, out.String())
			}
		}
		var wantOT []string
		for m := range strings.SplitSeq(ts.Get("ot"), ";") {
			if name, _, _ := strings.Cut(m, ":"); name != "th" && ts.Get("ot") != "" {
				wantOT = append(wantOT, m)
			}
		}
		rest := strings.Join(wantOT, ";")
		if _, err := ts.Insert("ot", rest); err != nil {
			rest = "" // not a valid value alone: the entry goes
		}
		if got := out.Get("ot"); got != rest {
			t.Fatalf("%q: ot = %q, want the other members %q", in, got, rest)
		}
		ts.Walk(func(k, v string) bool {
			if k != "ot" && out.Get(k) != v {
				t.Fatalf("%q: entry %s changed to %q", in, k, out.Get(k))
			}
			return true
		})
		if again := eraseThreshold(out); again.String() != out.String() {
			t.Fatalf("%q: not idempotent: %q then %q", in, out.String(), again.String())
		}
	})
}

func TestRescuedSpanView(t *testing.T) {
	attrs := make([]attribute.KeyValue, 2, 8) // spare capacity must not be written
	attrs[0], attrs[1] = attribute.String("a", "1"), attribute.Int("b", 2)
	tid := trace.TraceID{1}
	stub := tracetest.SpanStub{
		Name: "s",
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: trace.SpanID{2},
		}),
		Parent: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: trace.SpanID{3},
		}),
		Attributes: attrs,
	}
	inner := stub.Snapshot()
	v := newMarkedSpan(inner, keptByAttrs[outcomeError])

	if !v.SpanContext().IsSampled() || !v.Parent().IsSampled() {
		t.Errorf("sampled flags: span %v, local parent %v", v.SpanContext().IsSampled(), v.Parent().IsSampled())
	}
	if v.SpanContext().SpanID() != inner.SpanContext().SpanID() || v.Parent().SpanID() != inner.Parent().SpanID() {
		t.Error("IDs changed")
	}
	got := v.Attributes()
	want := append(slices.Clone(attrs), KeptByKey.String(KeptByError))
	if !slices.Equal(got, want) {
		t.Errorf("attributes = %v, want %v", got, want)
	}
	if full := attrs[:3]; full[2].Valid() {
		t.Errorf("the view wrote into the recorded attributes' spare capacity: %v", full[2])
	}
	if inner.SpanContext().IsSampled() {
		t.Error("the recorded span was modified")
	}
	var _ sdktrace.ReadOnlySpan = v
}
