package sampler_test

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tracekeeper/tracekeeper/sampler"
)

func ExampleErrorKeeping() {
	exp := tracetest.NewInMemoryExporter() // in production: exporter.New(...)
	keep := sampler.ErrorKeeping(sdktrace.NewBatchSpanProcessor(exp),
		sampler.WithRatio(0), // keep nothing up front, to show the tail alone
		sampler.WithLatencyThreshold(2*time.Second),
	)
	// The ErrorKeeper is both the provider's sampler and a span processor.
	tp := sdktrace.NewTracerProvider(keep.TracerProviderOptions()...)
	tr := tp.Tracer("checkout")
	ctx := context.Background()

	// A request that fails in a child span...
	reqCtx, req := tr.Start(ctx, "GET /checkout")
	_, query := tr.Start(reqCtx, "SELECT orders")
	query.SetStatus(codes.Error, "deadlock detected")
	query.End()
	req.End()

	// ...and one that does not.
	_, health := tr.Start(ctx, "GET /health")
	health.End()

	// Traces are decided half a second after their root span ends; a
	// flush, as before a serverless function freezes, decides them now.
	if err := tp.ForceFlush(ctx); err != nil {
		fmt.Println(err)
	}
	for _, s := range exp.GetSpans() {
		for _, kv := range s.Attributes {
			if kv.Key == sampler.KeptByKey {
				fmt.Printf("%s sampled=%t kept_by=%s\n", s.Name, s.SpanContext.IsSampled(), kv.Value.AsString())
			}
		}
	}
	st := keep.Stats()
	fmt.Printf("kept by error: %d, released: %d\n", st.KeptByError, st.Released)

	if err := tp.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// SELECT orders sampled=true kept_by=error
	// GET /checkout sampled=true kept_by=error
	// kept by error: 1, released: 1
}
