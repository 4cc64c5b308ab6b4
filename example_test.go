package tracekeeper_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/processor"
	"github.com/tracekeeper/tracekeeper/sampler"
)

// The whole pipeline: the guard bounds names and attributes, the sampler
// keeps a share of traces plus every trace with an error, and the batcher
// feeds the non-blocking exporter. Here the backend is a loopback stand-in
// for a collector, and the head ratio is 0 so that the output does not
// depend on random trace IDs; in production it is typically 0.01–0.1.
func Example_pipeline() {
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer backend.Close()

	exp := exporter.New(exporter.WithEndpoint(strings.TrimPrefix(backend.URL, "http://")), exporter.WithInsecure())
	keep := sampler.ErrorKeeping(sdktrace.NewBatchSpanProcessor(exp),
		sampler.WithRatio(0), sampler.WithDecisionDelay(10*time.Millisecond))
	guard := processor.CardinalityGuard(processor.WithDownstream(keep))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(guard))

	tracer := tp.Tracer("checkout")
	for i := range 100 {
		ctx, root := tracer.Start(context.Background(), fmt.Sprintf("GET /orders/%d", i))
		_, child := tracer.Start(ctx, "db.query", trace.WithSpanKind(trace.SpanKindClient))
		if i%10 == 0 {
			child.RecordError(errors.New("connection reset"))
			child.SetStatus(codes.Error, "connection reset")
		}
		child.End()
		root.End()
	}

	// Shutdown decides what the sampler still holds, flushes the batcher
	// and sends what the exporter has queued.
	_ = tp.Shutdown(context.Background())

	fmt.Println("traces kept for their error:", keep.Stats().KeptByError)
	fmt.Println("span names templated by the guard:", guard.Stats().Normalized)
	s := exp.Stats()
	fmt.Println("spans exported:", s.Exported, "dropped:", s.Dropped.Total())
	// Output:
	// traces kept for their error: 10
	// span names templated by the guard: 100
	// spans exported: 20 dropped: 0
}
