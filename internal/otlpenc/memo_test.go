package otlpenc

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// TestEncodeRepeatedAttributes encodes batches whose spans share
// attributes, the strings themselves or equal copies, in the shapes that
// decide whether an attribute is copied from an earlier span: the same
// key with another value, other types under one key, repaired strings,
// more attributes than the encoder remembers, and spans whose length
// prefix takes one, two or three bytes, so that their bodies move after
// they are written.
func TestEncodeRepeatedAttributes(t *testing.T) {
	method := attribute.String("http.request.method", "GET")
	long := strings.Repeat("n", 20000)
	many := func(i int) []attribute.KeyValue {
		var kvs []attribute.KeyValue
		for j := range memoAttrs + 4 {
			kvs = append(kvs, attribute.Int("k"+strconv.Itoa(j), j*(i%2)))
		}
		return kvs
	}
	tests := []struct {
		name  string
		attrs func(i int) []attribute.KeyValue
		span  func(i int, s *tracetest.SpanStub)
	}{
		{name: "same attributes", attrs: func(int) []attribute.KeyValue {
			return []attribute.KeyValue{method, attribute.Int("n", 1), attribute.Bool("b", true), attribute.Float64("f", 0.5)}
		}},
		{name: "equal strings built per span", attrs: func(i int) []attribute.KeyValue {
			return []attribute.KeyValue{attribute.String("k"+strconv.Itoa(i%2), "v"+strconv.Itoa(i%3))}
		}},
		{name: "same key, other values and types", attrs: func(i int) []attribute.KeyValue {
			switch i % 5 {
			case 0:
				return []attribute.KeyValue{attribute.Int("v", 0)}
			case 1:
				return []attribute.KeyValue{attribute.Bool("v", false)}
			case 2:
				return []attribute.KeyValue{attribute.Float64("v", 0)}
			case 3:
				return []attribute.KeyValue{attribute.String("v", "")}
			default:
				return []attribute.KeyValue{{Key: "v"}, attribute.StringSlice("v", nil)}
			}
		}},
		{name: "same keys, other scalars", attrs: func(i int) []attribute.KeyValue {
			longKey := strings.Repeat("k", 200)
			return []attribute.KeyValue{
				attribute.Bool("b", i%3 == 0), attribute.Int("small", i), attribute.Int("wide", i*i*i*997-500),
				attribute.Float64("f", float64(i)/3), attribute.Bool("", i%2 == 0), attribute.Int("", i*1000),
				attribute.Bool(longKey, i%2 == 1), attribute.Int(longKey, -i), attribute.Float64(longKey, float64(-i)),
			}
		}},
		{name: "runs with scalars written over the copy", attrs: func(i int) []attribute.KeyValue {
			routes := []string{"/a", "/b/{id}"}
			return []attribute.KeyValue{
				method, attribute.Int("status", 200+(i%4)*100), attribute.String("route", routes[i/3%2]),
				attribute.Bool("hit", i%2 == 0), attribute.Int("port", 443+(i%5)*60000), attribute.Float64("load", float64(i)/7),
				method,
			}
		}, span: func(i int, s *tracetest.SpanStub) {
			if i%4 == 3 {
				s.Name = strings.Repeat("m", 200) // the body moves on, with the memos in it
			}
		}},
		{name: "repaired strings", attrs: func(i int) []attribute.KeyValue {
			return []attribute.KeyValue{method, attribute.String("bad\xff", "x"), attribute.String("k", "bad\xfe"), method}
		}},
		{name: "more attributes than remembered", attrs: many},
		{name: "bodies that move", attrs: func(int) []attribute.KeyValue {
			return []attribute.KeyValue{method, attribute.Int("n", 7)}
		}, span: func(i int, s *tracetest.SpanStub) {
			switch i % 3 {
			case 0:
				s.Name = "" // under 128 bytes: the body moves back
			case 1:
				s.Name = long // 16 KiB and more: the body moves on
			default:
				s.Name = strings.Repeat("m", 200)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spans []sdktrace.ReadOnlySpan
			for i := range 12 {
				s := tracetest.SpanStub{Name: "op", SpanContext: spanContext(uint64(i+1), true, false), Attributes: tt.attrs(i)}
				if tt.span != nil {
					tt.span(i, &s)
				}
				spans = append(spans, s.Snapshot())
			}
			enc := NewEncoder()
			for _, maxBytes := range []int{0, 0, 1 << 20} {
				var conv converter
				want := conv.request(spans)
				reqs, res := enc.Encode(spans, maxBytes, nil)
				if len(reqs) != 1 || res.TooLarge != 0 {
					t.Fatalf("%d requests, %+v", len(reqs), res)
				}
				assertEqual(t, want, decode(t, reqs[0].Bytes()))
				if res.Repaired != conv.repaired {
					t.Errorf("Repaired = %d, want %d", res.Repaired, conv.repaired)
				}
				reqs[0].Release()
			}
		})
	}
}

// TestEncodeMirrorsMatch checks the layouts the encoder reads attribute
// values and sets through, and what it reads there.
func TestEncodeMirrorsMatch(t *testing.T) {
	if !valuesInPlace {
		t.Fatal("attribute.Value no longer has valueData's layout: update mirror.Value")
	}
	if !setsInPlace {
		t.Fatal("attribute.Set no longer has setData's layout: update setData")
	}
	if !contextsInPlace {
		t.Fatal("trace.SpanContext no longer has spanContextData's layout: update spanContextData")
	}
	ts, err := trace.ParseTraceState("k=v")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID(3), SpanID: spanID(4), TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	var tmp spanContextData
	if c := contextOf(&sc, &tmp); c.traceID != sc.TraceID() || c.spanID != sc.SpanID() ||
		c.traceFlags != sc.TraceFlags() || c.traceState.String() != "k=v" || !c.remote {
		t.Errorf("span context read as %+v", *c)
	}
	for _, tt := range []struct {
		v   attribute.Value
		num uint64
		str string
	}{
		{attribute.BoolValue(true), 1, ""},
		{attribute.Int64Value(-7), uint64(1<<64 - 7), ""},
		{attribute.Float64Value(0.25), math.Float64bits(0.25), ""},
		{attribute.StringValue("str"), 0, "str"},
	} {
		v := mirror.ValueOf(&tt.v)
		if v.Type() != tt.v.Type() || v.Num() != tt.num || v.Str() != tt.str {
			t.Errorf("%s value: read %+v", tt.v.Type(), *v)
		}
	}
	set := attribute.NewSet(attribute.String("k", "v"))
	copied, rebuilt := set, attribute.NewSet(attribute.String("k", "v"))
	other := attribute.NewSet(attribute.String("k", "w"))
	if !sameSetWords(&set, &copied) || sameSetWords(&set, &other) {
		t.Error("sameSetWords does not tell copies from other sets")
	}
	scope := instrumentation.Scope{Name: "n", Version: "v", Attributes: set}
	for _, tt := range []struct {
		b    instrumentation.Scope
		want bool
	}{
		{scope, true},
		{instrumentation.Scope{Name: strings.Clone("n"), Version: "v", Attributes: rebuilt}, true},
		{instrumentation.Scope{Name: "n", Version: "v", Attributes: other}, false},
		{instrumentation.Scope{Name: "n", Version: "v2", Attributes: set}, false},
		{instrumentation.Scope{Name: "n", Version: "v"}, false},
	} {
		if got := sameScope(&scope, &tt.b); got != tt.want || got != (scope == tt.b) {
			t.Errorf("sameScope(%+v) = %v, want %v", tt.b, got, tt.want)
		}
	}
}

// TestEncodeWithoutMirrors encodes through the paths taken when the
// layouts of attribute.Value, attribute.Set or trace.SpanContext are not
// those of their mirrors, and requires the bytes of the paths that read
// them in place.
func TestEncodeWithoutMirrors(t *testing.T) {
	spans := append(otlptest.Spans(40), otlptest.RandomSpans(3, 40)...)
	spans = append(spans, richSDKSpans(40)...)
	want, _ := NewEncoder().Encode(spans, 0, nil)
	defer want[0].Release()
	for name, flag := range map[string]*bool{"values": &valuesInPlace, "sets": &setsInPlace, "contexts": &contextsInPlace} {
		*flag = false
		got, _ := NewEncoder().Encode(spans, 0, nil)
		*flag = true
		if !bytes.Equal(want[0].Bytes(), got[0].Bytes()) {
			t.Errorf("without the %s mirror, the spans are encoded otherwise", name)
		}
		got[0].Release()
	}
}
