package otlpenc

import (
	"bytes"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"weak"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

func TestEncodeMatchesReference(t *testing.T) {
	ts, err := trace.ParseTraceState("vendor1=opaque,ot=th:8")
	if err != nil {
		t.Fatal(err)
	}
	withState := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID(7), SpanID: spanID(7), TraceFlags: trace.FlagsSampled, TraceState: ts,
	})
	before1970 := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	full := tracetest.SpanStub{
		Name:        "full",
		SpanContext: withState,
		Parent:      spanContext(8, true, true),
		SpanKind:    trace.SpanKindConsumer,
		StartTime:   epoch,
		EndTime:     epoch.Add(time.Second),
		Attributes:  everyValue(),
		Events: []sdktrace.Event{
			{Name: "exception", Time: epoch.Add(time.Millisecond), Attributes: []attribute.KeyValue{
				attribute.String("exception.type", "io.EOF"), attribute.StringSlice("exception.tags", []string{"a"}),
			}, DroppedAttributeCount: 2},
			{}, // everything zero
			{Name: "before 1970", Time: before1970, DroppedAttributeCount: -5},
		},
		Links: []sdktrace.Link{
			{SpanContext: spanContext(9, true, true), Attributes: []attribute.KeyValue{attribute.Int("link.n", 1)}, DroppedAttributeCount: 1},
			{SpanContext: withState}, // the link's trace state is not sent, as stock
			{},                       // an invalid span context
		},
		Status:            sdktrace.Status{Code: codes.Error, Description: "boom"},
		DroppedAttributes: 3,
		DroppedEvents:     4,
		DroppedLinks:      math.MaxUint32 + 10, // clamped
		Resource:          resA,
		InstrumentationScope: instrumentation.Scope{
			Name: "scope", Version: "v9", SchemaURL: "https://example.com/s",
			Attributes: attribute.NewSet(everyValue()...),
		},
	}
	stub := func(name string, res *resource.Resource, sc instrumentation.Scope, n uint64) tracetest.SpanStub {
		return tracetest.SpanStub{
			Name: name, SpanContext: spanContext(n, n%2 == 0, false), Resource: res, InstrumentationScope: sc,
			StartTime: epoch.Add(time.Duration(n)), EndTime: epoch.Add(time.Duration(n) + time.Millisecond),
		}
	}
	snap := func(stubs ...tracetest.SpanStub) []sdktrace.ReadOnlySpan {
		out := make([]sdktrace.ReadOnlySpan, len(stubs))
		for i, s := range stubs {
			out[i] = s.Snapshot()
		}
		return out
	}
	mod := func(s tracetest.SpanStub, f func(*tracetest.SpanStub)) tracetest.SpanStub {
		f(&s)
		return s
	}

	tests := []struct {
		name     string
		spans    []sdktrace.ReadOnlySpan
		repaired int
	}{
		{name: "zero span", spans: snap(tracetest.SpanStub{})},
		{name: "every field", spans: snap(full)},
		{name: "benchmark span", spans: otlptest.Spans(3)},
		{name: "status ok keeps its message", spans: snap(mod(stub("ok", resA, scopeA, 1), func(s *tracetest.SpanStub) {
			s.Status = sdktrace.Status{Code: codes.Ok, Description: "fine"}
		}))},
		{name: "status unset keeps its message", spans: snap(mod(stub("unset", resA, scopeA, 1), func(s *tracetest.SpanStub) {
			s.Status = sdktrace.Status{Code: codes.Unset, Description: "ignored by the SDK, sent by the exporter"}
		}))},
		{name: "unknown status code and kind", spans: snap(mod(stub("unknown", resA, scopeA, 1), func(s *tracetest.SpanStub) {
			s.Status = sdktrace.Status{Code: codes.Code(42)}
			s.SpanKind = trace.SpanKind(42)
		}))},
		{name: "every span kind", spans: snap(
			mod(stub("k0", resA, scopeA, 1), func(s *tracetest.SpanStub) { s.SpanKind = trace.SpanKindUnspecified }),
			mod(stub("k1", resA, scopeA, 2), func(s *tracetest.SpanStub) { s.SpanKind = trace.SpanKindInternal }),
			mod(stub("k2", resA, scopeA, 3), func(s *tracetest.SpanStub) { s.SpanKind = trace.SpanKindServer }),
			mod(stub("k3", resA, scopeA, 4), func(s *tracetest.SpanStub) { s.SpanKind = trace.SpanKindClient }),
			mod(stub("k4", resA, scopeA, 5), func(s *tracetest.SpanStub) { s.SpanKind = trace.SpanKindProducer }),
			mod(stub("k5", resA, scopeA, 6), func(s *tracetest.SpanStub) { s.SpanKind = trace.SpanKindConsumer }),
		)},
		{name: "times before 1970 and zero", spans: snap(mod(stub("old", resA, scopeA, 1), func(s *tracetest.SpanStub) {
			s.StartTime = before1970
			s.EndTime = time.Time{}
		}))},
		{name: "negative dropped counts", spans: snap(mod(stub("neg", resA, scopeA, 1), func(s *tracetest.SpanStub) {
			s.DroppedAttributes, s.DroppedEvents, s.DroppedLinks = -1, -2, -3
		}))},
		{name: "nil spans are skipped", spans: append(append([]sdktrace.ReadOnlySpan{nil}, snap(stub("a", resA, scopeA, 1))...), nil)},
		{name: "nil resource and zero scope", spans: snap(stub("bare", nil, instrumentation.Scope{}, 1))},
		{name: "scope with an empty attribute set", spans: snap(stub("s", resA, scopeEmptySet, 1))},
		{name: "empty resource", spans: snap(stub("e", resEmpty, scopeA, 1))},
		{name: "nil and empty resources group together, first wins", spans: snap(
			stub("nil first", nil, scopeA, 1), stub("empty second", resEmpty, scopeA, 2),
		)},
		{name: "empty and nil resources group together, first wins", spans: snap(
			stub("empty first", resEmpty, scopeA, 1), stub("nil second", nil, scopeA, 2),
		)},
		{name: "equal resources group together, first schema wins", spans: snap(
			stub("a", resA, scopeA, 1), stub("a2", resA2, scopeA, 2), stub("a2 other scope", resA2, scopeB, 3),
		)},
		{name: "resources and scopes interleaved", spans: snap(
			stub("1", resA, scopeA, 1), stub("2", resB, scopeA, 2), stub("3", resA, scopeB, 3),
			stub("4", resB, scopeC, 4), stub("5", resA, scopeA, 5), stub("6", resB, scopeA, 6),
			stub("7", nil, scopeC, 7), stub("8", resA, scopeC, 8), stub("9", resA, scopeB, 9),
		)},
		{name: "equal scopes built separately group together", spans: snap(
			stub("1", resA, instrumentation.Scope{Name: "x", Attributes: attribute.NewSet(attribute.Int("n", 1))}, 1),
			stub("2", resA, instrumentation.Scope{Name: "x", Attributes: attribute.NewSet(attribute.Int("n", 1))}, 2),
			stub("3", resA, instrumentation.Scope{Name: "x", Attributes: attribute.NewSet(attribute.Int("n", 2))}, 3),
		)},
		{name: "invalid UTF-8 everywhere", repaired: 16, spans: snap(tracetest.SpanStub{
			Name:        "bad\xffname", // 1
			SpanContext: spanContext(1, true, false),
			Attributes: []attribute.KeyValue{
				attribute.String("bad\xfekey", "ok"),                          // 2
				attribute.String("k", "bad\xc3value"),                         // 3
				attribute.StringSlice("ss", []string{"ok", "\xff", "x\xfey"}), // 4, 5
				attribute.Map("m", attribute.String("\xff", "\xfe")),          // 6, 7
				attribute.Slice("sl", attribute.StringValue("\xffa")),         // 8
				attribute.ByteSlice("bytes", []byte{0xff, 0xfe}),              // bytes are not strings
			},
			Events: []sdktrace.Event{{
				Name:       "ev\xff",                                            // 9
				Attributes: []attribute.KeyValue{attribute.String("k", "\xff")}, // 10
			}},
			Links: []sdktrace.Link{{
				SpanContext: spanContext(2, false, false),
				Attributes:  []attribute.KeyValue{attribute.String("\xff", "v")}, // 11
			}},
			Status: sdktrace.Status{Code: codes.Error, Description: "\xff"}, // 12
			Resource: resource.NewWithAttributes("https://example.com/\xff", // 13
				attribute.String("service.name", "svc\xff")), // 14
			InstrumentationScope: instrumentation.Scope{Name: "\xff", Version: "v\xff"}, // 15, 16
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := NewEncoder()
			var first []byte
			for round := range 2 { // the second round runs from the caches
				reqs, res := enc.Encode(tt.spans, 0, nil)
				if len(reqs) != 1 {
					t.Fatalf("got %d requests, want 1", len(reqs))
				}
				if got, want := reqs[0].Spans(), countNonNil(tt.spans); got != want {
					t.Errorf("Spans() = %d, want %d", got, want)
				}
				if res.Repaired != tt.repaired || res.TooLarge != 0 {
					t.Errorf("result = %+v, want Repaired %d", res, tt.repaired)
				}
				assertEqual(t, reference(tt.spans), decode(t, reqs[0].Bytes()))
				if round == 0 {
					first = bytes.Clone(reqs[0].Bytes())
				} else if !bytes.Equal(first, reqs[0].Bytes()) {
					t.Error("a second Encode of the same spans produced other bytes")
				}
				if n, err := CountSpans(reqs[0].Bytes()); err != nil || n != countNonNil(tt.spans) {
					t.Errorf("CountSpans = %d, %v", n, err)
				}
				reqs[0].Release()
			}
		})
	}
}

func countNonNil(spans []sdktrace.ReadOnlySpan) int {
	n := 0
	for _, s := range spans {
		if s != nil {
			n++
		}
	}
	return n
}

func TestEncodeNothing(t *testing.T) {
	enc := NewEncoder()
	for _, spans := range [][]sdktrace.ReadOnlySpan{nil, {}, {nil, nil}} {
		out, res := enc.Encode(spans, 100, []*Request{})
		if len(out) != 0 || res != (Result{}) {
			t.Errorf("Encode(%v) = %d requests, %+v; want none", spans, len(out), res)
		}
	}
}

func TestEncodeAppendsToOut(t *testing.T) {
	enc := NewEncoder()
	spans := otlptest.Spans(4)
	out, _ := enc.Encode(spans[:2], 0, nil)
	out, _ = enc.Encode(spans[2:], 0, out)
	if len(out) != 2 || out[0].Spans() != 2 || out[1].Spans() != 2 {
		t.Fatalf("got %d requests", len(out))
	}
	assertEqual(t, reference(spans[:2]), decode(t, out[0].Bytes()))
	assertEqual(t, reference(spans[2:]), decode(t, out[1].Bytes()))
	for _, r := range out {
		r.Release()
	}
	var nilReq *Request
	nilReq.Release() // no panic
}

// mixedBatch returns spans over three resources and four scopes, in an
// interleaved order, with span ids 1..n and sizes that vary.
func mixedBatch(n int) []sdktrace.ReadOnlySpan {
	resources := []*resource.Resource{resA, resB, nil}
	scopes := []instrumentation.Scope{scopeA, scopeB, scopeC, {}}
	spans := make([]sdktrace.ReadOnlySpan, n)
	for i := range spans {
		spans[i] = tracetest.SpanStub{
			Name:                 "op-" + strconv.Itoa(i),
			SpanContext:          spanContext(uint64(i+1), true, false),
			StartTime:            epoch,
			EndTime:              epoch.Add(time.Duration(i)),
			Attributes:           otlptest.Attributes8(i)[:i%9],
			Resource:             resources[(i/3)%len(resources)],
			InstrumentationScope: scopes[(i*7)%len(scopes)],
		}.Snapshot()
	}
	return spans
}

func TestEncodeSplitsByMaxBytes(t *testing.T) {
	spans := mixedBatch(200)
	whole := reference(spans)
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	enc := NewEncoder()
	for _, maxBytes := range []int{400, 777, 1500, 4096, 20000, 1 << 30} {
		t.Run(strconv.Itoa(maxBytes), func(t *testing.T) {
			reqs, res := enc.Encode(spans, maxBytes, nil)
			if res != (Result{}) {
				t.Fatalf("result = %+v", res)
			}
			var got []*tracepb.Span
			for _, r := range reqs {
				if len(r.Bytes()) > maxBytes {
					t.Errorf("request of %d bytes exceeds %d", len(r.Bytes()), maxBytes)
				}
				req := decode(t, r.Bytes())
				// Each request is what the reference makes of its spans.
				var mine []sdktrace.ReadOnlySpan
				for _, rs := range req.ResourceSpans {
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							got = append(got, s)
							mine = append(mine, byID[trace.SpanID(s.SpanId)])
						}
					}
				}
				if r.Spans() != len(mine) {
					t.Errorf("Spans() = %d, request holds %d", r.Spans(), len(mine))
				}
				assertEqual(t, reference(mine), req)
				r.Release()
			}
			// All spans are present once, in the reference order.
			want := flatten(whole)
			if len(got) != len(want) {
				t.Fatalf("got %d spans, want %d", len(got), len(want))
			}
			for i := range want {
				assertEqual(t, want[i], got[i])
			}
			if maxBytes == 400 && len(reqs) < 10 {
				t.Errorf("only %d requests at 400 bytes", len(reqs))
			}
		})
	}
}

func flatten(req interface {
	GetResourceSpans() []*tracepb.ResourceSpans
}) []*tracepb.Span {
	var out []*tracepb.Span
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.ScopeSpans {
			out = append(out, ss.Spans...)
		}
	}
	return out
}

func TestEncodeTooLarge(t *testing.T) {
	spans := otlptest.Spans(5)
	huge := tracetest.SpanStub{
		Name:                 "huge",
		SpanContext:          spanContext(99, true, false),
		Attributes:           []attribute.KeyValue{attribute.String("blob", strings.Repeat("x", 5000))},
		Resource:             resA,
		InstrumentationScope: scopeA,
	}.Snapshot()
	spans = slices.Insert(spans, 2, huge)
	spans = append(spans, huge)

	enc := NewEncoder()
	reqs, res := enc.Encode(spans, 1000, nil)
	if res.TooLarge != 2 {
		t.Fatalf("TooLarge = %d, want 2", res.TooLarge)
	}
	kept := slices.DeleteFunc(slices.Clone(spans), func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "huge" })
	var got []*tracepb.Span
	for _, r := range reqs {
		if len(r.Bytes()) > 1000 {
			t.Errorf("request of %d bytes", len(r.Bytes()))
		}
		got = append(got, flatten(decode(t, r.Bytes()))...)
		r.Release()
	}
	want := flatten(reference(kept))
	if len(got) != len(want) {
		t.Fatalf("got %d spans, want %d", len(got), len(want))
	}
	for i := range want {
		assertEqual(t, want[i], got[i])
	}

	// Without a limit the same batch encodes whole.
	reqs, res = enc.Encode(spans, 0, nil)
	if res.TooLarge != 0 || len(reqs) != 1 {
		t.Fatalf("no limit: %d requests, %+v", len(reqs), res)
	}
	assertEqual(t, reference(spans), decode(t, reqs[0].Bytes()))
	reqs[0].Release()

	// A limit below any envelope leaves nothing.
	reqs, res = enc.Encode(spans, 10, nil)
	if len(reqs) != 0 || res.TooLarge != len(spans) {
		t.Fatalf("tiny limit: %d requests, %+v", len(reqs), res)
	}
}

func TestEncodeRepairedCountedPerRequest(t *testing.T) {
	bad := resource.NewSchemaless(attribute.String("service.name", "bad\xff"))
	var spans []sdktrace.ReadOnlySpan
	for i := range 6 {
		spans = append(spans, tracetest.SpanStub{
			Name: "s", SpanContext: spanContext(uint64(i+1), true, false), Resource: bad,
		}.Snapshot())
	}
	enc := NewEncoder()
	reqs, _ := enc.Encode(spans, 0, nil)
	size := len(reqs[0].Bytes())
	reqs[0].Release()
	reqs, res := enc.Encode(spans, size/2, nil)
	if res.Repaired != len(reqs) || len(reqs) < 2 {
		t.Errorf("%d requests, Repaired = %d; want one repair per request", len(reqs), res.Repaired)
	}
	for _, r := range reqs {
		r.Release()
	}
}

func TestEncodeCacheBounds(t *testing.T) {
	enc := NewEncoder()
	for i := range maxCachedScopes + 10 {
		sc := instrumentation.Scope{Name: "scope-" + strconv.Itoa(i)}
		res := resource.NewSchemaless(attribute.Int("n", i))
		spans := []sdktrace.ReadOnlySpan{tracetest.SpanStub{Name: "x", Resource: res, InstrumentationScope: sc}.Snapshot()}
		reqs, _ := enc.Encode(spans, 0, nil)
		assertEqual(t, reference(spans), decode(t, reqs[0].Bytes()))
		reqs[0].Release()
	}
	if len(enc.resources) > maxCachedResources+1 || len(enc.scopes) > maxCachedScopes+1 {
		t.Errorf("caches hold %d resources, %d scopes", len(enc.resources), len(enc.scopes))
	}
}

// TestEncodeKeepsNoSpans checks that once Encode returns, the Encoder
// holds nothing of the spans: their attributes, composite values included,
// can be collected while the Encoder lives on.
func TestEncodeKeepsNoSpans(t *testing.T) {
	enc := NewEncoder()
	spans := mixedBatch(50)
	var held []weak.Pointer[attribute.KeyValue]
	for i, s := range spans {
		stub := tracetest.SpanStubFromReadOnlySpan(s)
		stub.Attributes = append(slices.Clip(everyValue()), attribute.String("n", strconv.Itoa(i)))
		held = append(held, weak.Make(&stub.Attributes[0]))
		spans[i] = stub.Snapshot()
	}
	for _, maxBytes := range []int{0, 2000} {
		reqs, _ := enc.Encode(spans, maxBytes, nil)
		for _, r := range reqs {
			r.Release()
		}
	}
	clear(spans)
	runtime.GC()
	for i, w := range held {
		if w.Value() != nil {
			t.Fatalf("the attributes of span %d are still reachable after Encode", i)
		}
	}
	runtime.KeepAlive(enc)
}

func TestEncodeSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	// The benchmark's spans, and spans over several resources and scopes,
	// whose envelopes come from the encoder's caches.
	for name, spans := range map[string][]sdktrace.ReadOnlySpan{
		"benchmark": otlptest.Spans(512), "mixed": mixedBatch(512),
	} {
		enc := NewEncoder()
		var out []*Request
		run := func() {
			out, _ = enc.Encode(spans, 0, out[:0])
			for _, r := range out {
				r.Release()
			}
		}
		run()
		if allocs := testing.AllocsPerRun(20, run); allocs > 0 {
			t.Errorf("%s: %v allocations per Encode of 512 spans in the steady state, want 0", name, allocs)
		}
	}
}

// Released requests survive garbage collections, which empty a
// sync.Pool: a process that collects often still encodes without
// allocating.
func TestEncodeAllocsAcrossCollections(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not the program's own under the race detector")
	}
	spans := otlptest.Spans(512)
	enc := NewEncoder()
	var out []*Request
	run := func() {
		out, _ = enc.Encode(spans, 0, out[:0])
		for _, r := range out {
			r.Release()
		}
	}
	run()
	run()
	if n := otlptest.AllocsAcrossCollections(10, run); n != 0 {
		t.Fatalf("Encode after two collections allocated %d times per call, want 0", n)
	}
}

func TestEncodeSDKSpans(t *testing.T) {
	spans := otlptest.SDKSpans(20)
	reqs, res := NewEncoder().Encode(spans, 0, nil)
	if len(reqs) != 1 || res != (Result{}) {
		t.Fatalf("%d requests, %+v", len(reqs), res)
	}
	assertEqual(t, reference(spans), decode(t, reqs[0].Bytes()))
	reqs[0].Release()
}

// TestEncodeNonASCIIAnywhere puts a non-ASCII string, valid or not, as the
// key or the value of each attribute in turn, among attributes of every
// scalar kind, and requires the reference's output and repair count.
func TestEncodeNonASCIIAnywhere(t *testing.T) {
	enc := NewEncoder()
	for _, bad := range []string{"J\xc3\xb6rg", "J\xf6rg", "\xff\xfe\xfd", "ok\xe2\x82"} {
		for pos := range 8 {
			for _, inKey := range []bool{false, true} {
				attrs := otlptest.Attributes8(pos)
				if inKey {
					attrs[pos].Key = attribute.Key("k." + bad)
				} else {
					attrs[pos] = attribute.String(string(attrs[pos].Key), bad)
				}
				spans := []sdktrace.ReadOnlySpan{tracetest.SpanStub{
					Name: "op", SpanContext: spanContext(1, true, false), Attributes: attrs,
					Events: []sdktrace.Event{{Name: "e", Attributes: attrs}},
					Links:  []sdktrace.Link{{SpanContext: spanContext(2, true, true), Attributes: attrs}},
				}.Snapshot()}
				var conv converter
				want := conv.request(spans)
				reqs, res := enc.Encode(spans, 0, nil)
				assertEqual(t, want, decode(t, reqs[0].Bytes()))
				reqs[0].Release()
				if res.Repaired != conv.repaired {
					t.Errorf("%q at %d (key %v): Repaired = %d, want %d", bad, pos, inKey, res.Repaired, conv.repaired)
				}
			}
		}
	}
}

// A small batch encoded after big ones holds a buffer about its size, not
// the arena the big ones grew: a queue of small requests holds about what
// it carries.
func TestSmallRequestAfterBigOnesHoldsItsSize(t *testing.T) {
	e := NewEncoder()
	for range 3 {
		reqs, _ := e.Encode(otlptest.Spans(512), 0, nil)
		for _, r := range reqs {
			r.Release()
		}
	}
	var held []*Request
	for range 20 {
		reqs, _ := e.Encode(otlptest.Spans(1), 0, nil)
		if len(reqs) != 1 {
			t.Fatalf("%d requests", len(reqs))
		}
		r := reqs[0]
		if n := len(r.Bytes()); cap(r.body) > 2*n+minTrimmed {
			t.Fatalf("a %d-byte request holds a %d-byte buffer", n, cap(r.body))
		}
		held = append(held, r) // kept, as a queue keeps them
	}
	for _, r := range held {
		assertEqual(t, reference(otlptest.Spans(1)), decode(t, r.Bytes()))
	}
	for _, r := range held {
		r.Release()
	}
}
