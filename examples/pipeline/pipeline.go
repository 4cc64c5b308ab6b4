// Package pipeline is the tracing setup the examples share, the part a
// service copies: the non-blocking exporter, the cardinality guard in
// front of the error-keeping sampler, and a TracerProvider that uses them.
//
// Everything is configured by the standard environment variables:
// OTEL_EXPORTER_OTLP_* for the exporter (endpoint, protocol, headers…),
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES for the resource, and
// OTEL_TRACES_SAMPLER_ARG for the share of traces kept without an error
// (default 0.1; traces with an error are always kept).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/processor"
	"github.com/tracekeeper/tracekeeper/sampler"
)

// Pipeline is a started TracerProvider and the exporter it feeds.
type Pipeline struct {
	TracerProvider *sdktrace.TracerProvider
	Exporter       *exporter.Exporter
	Keeper         *sampler.ErrorKeeper
	Guard          *processor.Guard
}

// New builds the pipeline and installs it as the global TracerProvider
// and propagator (W3C trace context and baggage), which otelhttp and
// otelgrpc use by default.
func New(ctx context.Context) (*Pipeline, error) {
	ratio := 0.1
	if v := os.Getenv("OTEL_TRACES_SAMPLER_ARG"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio between 0 and 1", v)
		}
		ratio = r
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, err
	}

	exp := exporter.New() // OTEL_EXPORTER_OTLP_* configure it
	// The sampler holds each trace until it is decided, then hands the
	// kept ones to the batcher; the guard bounds names and attribute
	// values before the sampler sees them.
	keep := sampler.ErrorKeeping(sdktrace.NewBatchSpanProcessor(exp), sampler.WithRatio(ratio))
	guard := processor.CardinalityGuard(processor.WithDownstream(keep))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(keep),
		sdktrace.WithSpanProcessor(guard),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return &Pipeline{TracerProvider: tp, Exporter: exp, Keeper: keep, Guard: guard}, nil
}

// Shutdown decides the traces the sampler still holds, flushes the
// batcher and sends what the exporter has queued, within ctx, then
// prints what was delivered and dropped to standard error.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	err := p.TracerProvider.Shutdown(ctx)
	s := p.Exporter.Stats()
	fmt.Fprintf(os.Stderr, "tracing: %d spans exported, %d dropped; %d traces kept for an error\n",
		s.Exported, s.Dropped.Total(), p.Keeper.Stats().KeptByError)
	return err
}
