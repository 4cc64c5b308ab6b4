// Command job is a short-lived program, a batch job or a serverless
// function, that must not lose its spans when it exits: it flushes the
// TracerProvider (which hands the batched spans to the exporter) and then
// the exporter (which waits until they are sent), before it returns.
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=nightly-report go run ./job
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/tracekeeper/tracekeeper/examples/pipeline"
)

func main() {
	ctx := context.Background()
	p, err := pipeline.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	runErr := run(ctx)

	// Flush before exit, in this order: the provider's batcher first, then
	// the exporter, whose ForceFlush returns once the spans are sent (or
	// dropped and counted). Then Shutdown releases everything.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.TracerProvider.ForceFlush(fctx); err != nil {
		log.Print(err)
	}
	if err := p.Exporter.ForceFlush(fctx); err != nil {
		log.Print(err)
	}
	if err := p.Shutdown(fctx); err != nil {
		log.Print(err)
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, runErr)
		os.Exit(1)
	}
}

// run is the job: a root span with a step per item, one of which fails
// and is retried.
func run(ctx context.Context) error {
	tracer := otel.Tracer("github.com/tracekeeper/tracekeeper/examples/job")
	ctx, span := tracer.Start(ctx, "nightly report")
	defer span.End()
	for i := range 5 {
		_, step := tracer.Start(ctx, "render section")
		step.SetAttributes(attribute.Int("section", i))
		if i == 3 {
			err := errors.New("template missing")
			step.RecordError(err)
			step.SetStatus(codes.Error, err.Error())
			step.AddEvent("retrying with the default template")
		}
		step.End()
	}
	fmt.Printf("trace %s\n", span.SpanContext().TraceID())
	return nil
}
