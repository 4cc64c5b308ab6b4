package bench_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/processor"
	"github.com/tracekeeper/tracekeeper/sampler"
)

// nopExporter discards every span: the BatchSpanProcessor's own cost.
type nopExporter struct{}

var _ sdktrace.SpanExporter = nopExporter{}

func (nopExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (nopExporter) Shutdown(context.Context) error                             { return nil }

// hotPath is one pipeline of BenchmarkHotPath. setup returns the
// provider's options and a function to call after the provider's shutdown.
type hotPath struct {
	name  string
	setup func(b *testing.B) ([]sdktrace.TracerProviderOption, func())
}

// loopback starts a receiver for a benchmark and returns it with its
// cleanup.
func loopback(b *testing.B) (*scenario.Receiver, func()) {
	b.Helper()
	recv, err := scenario.NewReceiver(scenario.ReceiverConfig{})
	if err != nil {
		b.Fatal(err)
	}
	return recv, func() { _ = recv.Close() }
}

var hotPaths = []hotPath{
	{"sdk-no-processor", func(*testing.B) ([]sdktrace.TracerProviderOption, func()) {
		return nil, func() {}
	}},
	{"stock-bsp-nop-exporter", func(*testing.B) ([]sdktrace.TracerProviderOption, func()) {
		return []sdktrace.TracerProviderOption{sdktrace.WithBatcher(nopExporter{})}, func() {}
	}},
	{"stock-bsp-otlptracehttp", func(b *testing.B) ([]sdktrace.TracerProviderOption, func()) {
		recv, done := loopback(b)
		exp, err := otlptracehttp.New(context.Background(),
			otlptracehttp.WithEndpoint(recv.Addr()), otlptracehttp.WithInsecure())
		if err != nil {
			b.Fatal(err)
		}
		return []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp)}, done
	}},
	{"stock-bsp-tracekeeper", func(b *testing.B) ([]sdktrace.TracerProviderOption, func()) {
		recv, done := loopback(b)
		exp := exporter.New(exporter.WithEndpoint(recv.Addr()), exporter.WithInsecure(),
			exporter.WithLogger(zap.NewNop()))
		return []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp)}, done
	}},
	{"guard-sampler-bsp-tracekeeper", func(b *testing.B) ([]sdktrace.TracerProviderOption, func()) {
		recv, done := loopback(b)
		exp := exporter.New(exporter.WithEndpoint(recv.Addr()), exporter.WithInsecure(),
			exporter.WithLogger(zap.NewNop()))
		keep := sampler.ErrorKeeping(sdktrace.NewBatchSpanProcessor(exp))
		guard := processor.CardinalityGuard(processor.WithDownstream(keep))
		return []sdktrace.TracerProviderOption{sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(guard)}, done
	}},
}

// BenchmarkHotPath measures what the application's goroutines pay to start
// and end a span with eight attributes, from several goroutines at once:
// the SDK alone (the floor), the stock BatchSpanProcessor with an exporter
// that does nothing, and the processor with each real exporter sending to
// a loopback receiver; and the full pipeline, CardinalityGuard wrapping the
// error-keeping sampler (its default 5% head ratio) wrapping the processor
// and our exporter. Every span is the root of its own trace, so the
// sampler holds the 95% it does not sample until it decides them, and
// under this load decides most of them early. The spans are ended as fast as possible, far faster
// than either exporter delivers, so the processor drops most of them; the
// exporters' background work competes for the same cores and shows in
// ns/op.
func BenchmarkHotPath(b *testing.B) {
	for _, hp := range hotPaths {
		b.Run(hp.name, func(b *testing.B) {
			opts, cleanup := hp.setup(b)
			defer cleanup()
			tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithResource(scenario.Resource()))...)
			defer shutdown(b, tp)
			tracer := tp.Tracer(scenario.TracerName)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					scenario.StartEnd(ctx, tracer, i)
					i++
				}
			})
			b.StopTimer()
		})
	}
}

// shutdown stops a provider within a bounded time after a benchmark.
func shutdown(b *testing.B, tp *sdktrace.TracerProvider) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		b.Logf("shutdown: %v", err)
	}
}
