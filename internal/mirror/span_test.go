package mirror

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// hidden hides the concrete type of a span.
type hidden struct{ sdktrace.ReadOnlySpan }

// TestSpanOf checks that the SDK's snapshots are read in place, which
// needs Span to mirror the snapshot exactly: when an SDK upgrade changes
// it this test fails (readers then fall back to the span's methods) until
// Span follows. What is read in place must be what the methods return,
// and a span of any other type is not read in place.
func TestSpanOf(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, s := tp.Tracer("mirror", trace.WithInstrumentationVersion("v1")).Start(context.Background(), "op",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("k", "v")))
	s.AddEvent("e")
	s.End()
	span := rec.Ended()[0]

	var wg sync.WaitGroup
	got := make([]*Span, 4)
	for i := range got { // learning the snapshot type is safe from many goroutines
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = SpanOf(span) }()
	}
	wg.Wait()
	for _, d := range got {
		if d == nil {
			t.Fatal("the SDK's snapshot no longer has Span's layout: update Span")
		}
	}
	var read Span
	ReadSpan(span, &read)
	if !reflect.DeepEqual(*got[0], read) {
		t.Fatalf("in place %+v, through methods %+v", *got[0], read)
	}
	if KnownSpan(span) != got[0] {
		t.Fatal("KnownSpan does not read a snapshot in place once SpanOf has")
	}
	if SpanOf(hidden{span}) != nil || SpanOf(nil) != nil || KnownSpan(hidden{span}) != nil || KnownSpan(nil) != nil {
		t.Fatal("a span of another type is read in place")
	}
}
