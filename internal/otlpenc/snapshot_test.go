package otlpenc

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// opaque hides the concrete type of a span, so the encoder reads it
// through its methods.
type opaque struct{ sdktrace.ReadOnlySpan }

// richSDKSpans records spans from a real TracerProvider that use every
// field of a span: remote and local parents, trace state, events and
// links with attributes, dropped counts, statuses, invalid UTF-8.
func richSDKSpans(n int) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(resA),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit: -1, AttributeCountLimit: 6, EventCountLimit: 2, LinkCountLimit: 2,
			AttributePerEventCountLimit: 2, AttributePerLinkCountLimit: 2,
		}))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracers := []trace.Tracer{
		tp.Tracer(scopeA.Name, trace.WithInstrumentationVersion(scopeA.Version), trace.WithSchemaURL(scopeA.SchemaURL)),
		tp.Tracer(scopeC.Name, trace.WithInstrumentationAttributeSet(scopeC.Attributes)),
	}
	ts, err := trace.ParseTraceState("vendor=abc,ot=th:8")
	if err != nil {
		panic(err)
	}
	for i := range n {
		parent := context.Background()
		if i%3 != 0 {
			parent = trace.ContextWithRemoteSpanContext(parent,
				spanContext(uint64(i+1), i%2 == 0, i%3 == 1).WithTraceState(ts))
		}
		_, s := tracers[i%2].Start(parent, "op \xff "+string(rune('a'+i%26)),
			trace.WithSpanKind(trace.SpanKind(i%6)), trace.WithAttributes(everyValue()[:i%10]...),
			trace.WithLinks(
				trace.Link{SpanContext: spanContext(uint64(i+50), true, true), Attributes: otlptest.Attributes8(i)[:i%4]},
				trace.Link{SpanContext: spanContext(uint64(i+60), false, false)},
				trace.Link{SpanContext: spanContext(uint64(i+70), true, false)},
			),
			trace.WithTimestamp(epoch.Add(time.Duration(i)*time.Second)))
		s.AddEvent("retry", trace.WithAttributes(otlptest.Attributes8(i)[:i%5]...), trace.WithTimestamp(epoch))
		if i%4 == 0 {
			s.AddEvent("more")
			s.AddEvent("and more", trace.WithAttributes(attribute.String("k", "v\xc3")))
		}
		switch i % 3 {
		case 1:
			s.SetStatus(codes.Error, "deadlock \xe2\x28 detected")
		case 2:
			s.SetStatus(codes.Ok, "")
		}
		s.End(trace.WithTimestamp(epoch.Add(time.Duration(i)*time.Second + time.Millisecond)))
	}
	return rec.Ended()
}

// TestEncodeSnapshotInPlace checks that the SDK's spans are read in place,
// which needs mirror.Span to mirror the SDK's snapshot exactly: when an SDK
// upgrade changes the snapshot this test fails (the encoder then reads
// spans through their methods, correct but slower) until mirror.Span
// follows.
func TestEncodeSnapshotInPlace(t *testing.T) {
	spans := richSDKSpans(1)
	if mirror.SpanOf(spans[0]) == nil {
		t.Fatal("the SDK's snapshot no longer has mirror.Span's layout: update mirror.Span")
	}
	if mirror.SpanOf(opaque{spans[0]}) != nil || mirror.SpanOf(otlptest.Spans(1)[0]) != nil {
		t.Fatal("a span of another type is read in place")
	}
}

// TestEncodeSnapshotInPlaceMatchesMethods requires the bytes encoded from
// SDK spans read in place to be those encoded from the same spans read
// through their methods, and the reference's.
func TestEncodeSnapshotInPlaceMatchesMethods(t *testing.T) {
	spans := richSDKSpans(60)
	hidden := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		hidden[i] = opaque{s}
	}
	enc := NewEncoder()
	for _, maxBytes := range []int{0, 1500} {
		direct, dres := enc.Encode(spans, maxBytes, nil)
		methods, mres := enc.Encode(hidden, maxBytes, nil)
		if dres != mres || dres.Repaired == 0 || len(direct) != len(methods) {
			t.Fatalf("maxBytes %d: %d requests, %+v in place; %d, %+v through methods", maxBytes, len(direct), dres, len(methods), mres)
		}
		for i := range direct {
			if !bytes.Equal(direct[i].Bytes(), methods[i].Bytes()) {
				t.Errorf("maxBytes %d: request %d differs", maxBytes, i)
			}
			direct[i].Release()
			methods[i].Release()
		}
	}
	reqs, _ := enc.Encode(spans, 0, nil)
	assertEqual(t, reference(spans), decode(t, reqs[0].Bytes()))
	reqs[0].Release()
}
