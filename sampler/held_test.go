package sampler

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
)

// everyShape is a span with a value of every attribute type, in the span
// and in its events and links, and trace states on all three contexts.
func everyShape(t testing.TB) tracetest.SpanStub {
	ts, err := trace.ParseTraceState("ot=th:8;rv:abcdef01234567,vendor=x")
	if err != nil {
		t.Fatal(err)
	}
	attrs := []attribute.KeyValue{
		attribute.String("s", "value"),
		attribute.String("empty", ""),
		attribute.Bool("b", true),
		attribute.Int64("i", -3),
		attribute.Float64("f", 1.5),
		attribute.BoolSlice("bs", []bool{true, false}),
		attribute.Int64Slice("is", []int64{1, 2, 3}),
		attribute.Float64Slice("fs", []float64{0.5}),
		attribute.StringSlice("ss", []string{"a", "", "ccc"}),
		attribute.ByteSlice("bytes", []byte{0, 1, 2}),
		attribute.Slice("slice", attribute.StringValue("x"), attribute.IntValue(7),
			attribute.SliceValue(attribute.StringValue("nested"))),
		attribute.Map("map", attribute.String("k", "v"), attribute.Map("inner", attribute.String("k2", "v2"))),
		{Key: "none"},
	}
	sc := func(id byte, remote bool) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{id, 1}, SpanID: trace.SpanID{id}, TraceState: ts, Remote: remote,
		})
	}
	now := time.Unix(1_700_000_000, 5)
	return tracetest.SpanStub{
		Name:        "GET /orders",
		SpanContext: sc(1, false),
		Parent:      sc(1, true),
		SpanKind:    trace.SpanKindServer,
		StartTime:   now,
		EndTime:     now.Add(time.Second),
		Attributes:  attrs,
		Events: []sdktrace.Event{
			{Name: "e1", Attributes: attrs, DroppedAttributeCount: 2, Time: now},
			{Name: "e2", Time: now},
		},
		Links: []sdktrace.Link{
			{SpanContext: sc(2, true), Attributes: attrs[:4], DroppedAttributeCount: 1},
			{SpanContext: sc(3, true)},
		},
		Status:                 sdktrace.Status{Code: codes.Error, Description: "boom"},
		DroppedAttributes:      4,
		DroppedEvents:          5,
		DroppedLinks:           6,
		ChildSpanCount:         7,
		Resource:               resource.NewSchemaless(attribute.String("service.name", "svc")),
		InstrumentationScope:   instrumentation.Scope{Name: "scope", Version: "1"},
		InstrumentationLibrary: instrumentation.Scope{Name: "scope", Version: "1"},
	}
}

// copyOf returns a pooled copy of s, the way OnEnd makes one.
func copyOf(s sdktrace.ReadOnlySpan) *heldSpan {
	h := heldSpans.get()
	h.fill(dataOf(s, new(mirror.Span)), s.SpanContext(), s.Status())
	return h
}

// equalSpans compares two spans field by field: trace states by their
// encoding, and an empty slice as equal to nil.
func equalSpans(t *testing.T, got, want sdktrace.ReadOnlySpan) {
	t.Helper()
	g, w := tracetest.SpanStubFromReadOnlySpan(got), tracetest.SpanStubFromReadOnlySpan(want)
	if !g.SpanContext.Equal(w.SpanContext) || !g.Parent.Equal(w.Parent) {
		t.Errorf("span contexts: got %v / %v, want %v / %v", g.SpanContext, g.Parent, w.SpanContext, w.Parent)
	}
	for i := range min(len(g.Links), len(w.Links)) {
		if !g.Links[i].SpanContext.Equal(w.Links[i].SpanContext) {
			t.Errorf("link %d: got %v, want %v", i, g.Links[i].SpanContext, w.Links[i].SpanContext)
		}
		g.Links[i].SpanContext, w.Links[i].SpanContext = trace.SpanContext{}, trace.SpanContext{}
	}
	g.SpanContext, w.SpanContext, g.Parent, w.Parent = trace.SpanContext{}, trace.SpanContext{}, trace.SpanContext{}, trace.SpanContext{}
	for _, st := range []*tracetest.SpanStub{&g, &w} {
		st.Attributes = nilIfEmpty(st.Attributes)
		st.Events, st.Links = nilIfEmpty(st.Events), nilIfEmpty(st.Links)
		for i := range st.Events {
			st.Events[i].Attributes = nilIfEmpty(st.Events[i].Attributes)
		}
		for i := range st.Links {
			st.Links[i].Attributes = nilIfEmpty(st.Links[i].Attributes)
		}
	}
	gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
	for i := range gv.NumField() {
		if f := gv.Type().Field(i).Name; !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("%s: got %v, want %v", f, gv.Field(i), wv.Field(i))
		}
	}
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// stringsOf calls f with every string a span references, trace states'
// members included.
func stringsOf(s sdktrace.ReadOnlySpan, f func(where, s string)) {
	var value func(where string, v attribute.Value)
	kvs := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			f(where+" key", string(kv.Key))
			value(where+" "+string(kv.Key), kv.Value)
		}
	}
	value = func(where string, v attribute.Value) {
		switch v.Type() {
		case attribute.STRING:
			f(where, v.AsString())
		case attribute.STRINGSLICE:
			for _, s := range v.AsStringSlice() {
				f(where, s)
			}
		case attribute.SLICE:
			for _, e := range v.AsSlice() {
				value(where, e)
			}
		case attribute.MAP:
			kvs(where, v.AsMap())
		}
	}
	state := func(where string, sc trace.SpanContext) {
		sc.TraceState().Walk(func(k, v string) bool {
			f(where+" trace state", k)
			f(where+" trace state", v)
			return true
		})
	}
	f("name", s.Name())
	f("status", s.Status().Description)
	state("span", s.SpanContext())
	state("parent", s.Parent())
	kvs("attribute", s.Attributes())
	for _, e := range s.Events() {
		f("event name", e.Name)
		kvs("event attribute", e.Attributes)
	}
	for _, l := range s.Links() {
		state("link", l.SpanContext)
		kvs("link attribute", l.Attributes)
	}
}

// sharesMemory reports the strings of the copy that point into a string
// of the original.
func sharesMemory(t *testing.T, cp, orig sdktrace.ReadOnlySpan) {
	t.Helper()
	type span struct{ lo, hi uintptr }
	var origs []span
	stringsOf(orig, func(_, s string) {
		if len(s) > 0 {
			p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
			origs = append(origs, span{p, p + uintptr(len(s))})
		}
	})
	stringsOf(cp, func(where, s string) {
		if len(s) == 0 {
			return
		}
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		for _, o := range origs {
			if p < o.hi && o.lo < p+uintptr(len(s)) {
				t.Errorf("%s %q points into the original", where, s)
				return
			}
		}
	})
}

func TestHeldSpanIsAnEqualCopyOwningItsStrings(t *testing.T) {
	stub := everyShape(t)
	orig := stub.Snapshot()
	h := copyOf(orig)
	equalSpans(t, h, orig)
	sharesMemory(t, h, orig)

	// A recycled copy filled again holds the new span only.
	heldSpans.put(h)
	small := tracetest.SpanStub{Name: "small", Attributes: []attribute.KeyValue{attribute.String("k", "v")}}.Snapshot()
	h = copyOf(small)
	equalSpans(t, h, small)
	heldSpans.put(h)
}

// Every method of sdktrace.ReadOnlySpan is answered by the copy itself,
// not by the nil interface it embeds for the SDK's unexported method.
func TestHeldSpanDefinesEveryMethod(t *testing.T) {
	h := copyOf(everyShape(t).Snapshot())
	v := reflect.ValueOf(h)
	iface := reflect.TypeFor[sdktrace.ReadOnlySpan]()
	for i := range iface.NumMethod() {
		m := iface.Method(i)
		if !m.IsExported() {
			continue
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: %v", m.Name, r)
				}
			}()
			v.MethodByName(m.Name).Call(nil)
		}()
	}
}

// The size counts the copy, its buffers and what it adds for values of
// composite types, no more.
func TestHeldSpanSize(t *testing.T) {
	fresh := func(s sdktrace.ReadOnlySpan) *heldSpan {
		h := new(heldSpan) // not pooled: buffers of the size this span needs
		h.fill(dataOf(s, new(mirror.Span)), s.SpanContext(), s.Status())
		return h
	}
	bare := fresh(tracetest.SpanStub{Name: "s"}.Snapshot())
	if want := heldSpanBytes + int64(cap(bare.text)); bare.size != want || cap(bare.text) < 1 {
		t.Errorf("bare span: size %d, want %d", bare.size, want)
	}
	long := strings.Repeat("v", 1000)
	h := fresh(tracetest.SpanStub{
		Name:       "s",
		Attributes: []attribute.KeyValue{attribute.String("key", long)},
		Events:     []sdktrace.Event{{Name: "e"}},
		Links:      []sdktrace.Link{{}},
	}.Snapshot())
	want := heldSpanBytes + int64(cap(h.text)) + eventBytes + linkBytes
	if h.size != want || cap(h.text) < 1+recordHeader+3+1000+1 {
		t.Errorf("size %d (text %d), want %d", h.size, cap(h.text), want)
	}
}

// A kept span reaches the downstream with the values it was recorded
// with, also when the SDK shortened them, and keeps them while the copies
// of released spans are recycled after it.
func TestKeptSpanCarriesItsRecordedValues(t *testing.T) {
	for _, predicate := range []bool{false, true} {
		name := "recycling"
		var opts []Option
		if predicate {
			name = "with a predicate"
			opts = append(opts, WithPredicate(func(sdktrace.ReadOnlySpan) bool { return false }))
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, opts...)
			orig := tracetest.NewSpanRecorder()
			limits := sdktrace.NewSpanLimits()
			limits.AttributeValueLengthLimit = 8
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(h.keep), sdktrace.WithSpanProcessor(h.keep),
				sdktrace.WithSpanProcessor(orig), sdktrace.WithSpanLimits(limits))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tr := tp.Tracer("test")

			stub := everyShape(t)
			run := func(fail bool, n int) {
				for i := range n {
					ctx, root := tr.Start(context.Background(), stub.Name+strings.Repeat("!", i%3),
						trace.WithAttributes(append(stub.Attributes, attribute.String("long", strings.Repeat("x", 100+i)))...),
						trace.WithLinks(trace.Link{SpanContext: stub.Links[0].SpanContext, Attributes: stub.Attributes}))
					_, child := tr.Start(ctx, "child")
					child.AddEvent("e", trace.WithAttributes(stub.Attributes...))
					if fail {
						child.SetStatus(codes.Error, "boom")
					}
					child.End()
					root.End()
				}
			}
			run(false, 50) // released: fills the pool
			h.advance(testDelay)
			run(true, 5)
			h.advance(testDelay)
			kept := h.rec.Ended()
			run(false, 200) // released after: reuses the pool
			h.advance(testDelay)

			byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
			for _, s := range orig.Ended() {
				byID[s.SpanContext().SpanID()] = s
			}
			if len(kept) != 10 {
				t.Fatalf("kept %d spans, want 10", len(kept))
			}
			for _, s := range kept {
				want := byID[s.SpanContext().SpanID()]
				if keptBy(s) != KeptByError {
					t.Errorf("span %q kept_by %q", s.Name(), keptBy(s))
				}
				got := tracetest.SpanStubFromReadOnlySpan(s)
				got.Attributes = got.Attributes[:len(got.Attributes)-1] // the mark
				// The view's flags: sampled, on the span and on a local parent.
				got.SpanContext = got.SpanContext.WithTraceFlags(want.SpanContext().TraceFlags())
				got.Parent = got.Parent.WithTraceFlags(want.Parent().TraceFlags())
				equalSpans(t, got.Snapshot(), want)
			}
		})
	}
}

// fuzzAttrs builds attributes of every type from data; their strings are
// pieces of one string, as substrings of a request body would be.
func fuzzAttrs(data []byte) []attribute.KeyValue {
	whole := string(data)
	var kvs []attribute.KeyValue
	piece := func(i int) string {
		if len(whole) == 0 {
			return ""
		}
		lo := i % len(whole)
		return whole[lo : lo+(len(whole)-lo)/2]
	}
	for i, b := range data {
		key := attribute.Key(piece(i + 1))
		if key == "" {
			key = "k"
		}
		s := piece(i)
		switch b % 9 {
		case 0:
			kvs = append(kvs, key.String(s))
		case 1:
			kvs = append(kvs, key.StringSlice([]string{s, piece(i + 2), ""}))
		case 2:
			kvs = append(kvs, attribute.Map(string(key), attribute.String(piece(i+3), s), key.Int(i)))
		case 3:
			kvs = append(kvs, attribute.Slice(string(key), attribute.StringValue(s),
				attribute.SliceValue(attribute.StringValue(piece(i+4))), attribute.BoolValue(b&1 == 0)))
		case 4:
			kvs = append(kvs, key.Int64(int64(b)))
		case 5:
			kvs = append(kvs, key.Float64(float64(b)/3))
		case 6:
			kvs = append(kvs, key.Bool(b&16 == 0))
		case 7:
			kvs = append(kvs, key.ByteSlice([]byte(s)))
		case 8:
			kvs = append(kvs, key.Int64Slice([]int64{int64(i), int64(b)}))
		}
	}
	return kvs
}

// A copy is equal to the span it was made from and shares no string with
// it, whatever the attributes, also when made in a recycled copy.
func FuzzHeldSpanCopy(f *testing.F) {
	f.Add([]byte("GET /api/v1/orders/{id}"), "vendor=x")
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "ot=th:8;rv:abcdef01234567")
	f.Add([]byte("\xff\xfe\x00"), "")
	f.Fuzz(func(t *testing.T, data []byte, state string) {
		ts, err := trace.ParseTraceState(state)
		if err != nil {
			ts = trace.TraceState{}
		}
		if len(data) > 64 {
			data = data[:64] // the comparisons below are quadratic
		}
		attrs := fuzzAttrs(data)
		whole := string(data)
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceState: ts})
		orig := tracetest.SpanStub{
			Name:        whole[:len(whole)/3],
			SpanContext: sc,
			Parent:      sc,
			Attributes:  attrs,
			Events:      []sdktrace.Event{{Name: whole[len(whole)/2:], Attributes: attrs}},
			Links:       []sdktrace.Link{{SpanContext: sc, Attributes: attrs}},
			Status:      sdktrace.Status{Code: codes.Error, Description: whole[len(whole)/4:]},
		}.Snapshot()
		h := copyOf(orig)
		equalSpans(t, h, orig)
		sharesMemory(t, h, orig)
		if h.size < heldSpanBytes+int64(len(h.text)) {
			t.Errorf("size %d under the copy's own %d bytes", h.size, heldSpanBytes+int64(len(h.text)))
		}
		heldSpans.put(h)
	})
}
