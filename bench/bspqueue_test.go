package bench_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
	"github.com/tracekeeper/tracekeeper/exporter"
)

// handedCounter counts the spans the BatchSpanProcessor hands to next.
type handedCounter struct {
	next   sdktrace.SpanExporter
	handed atomic.Int64
}

func (c *handedCounter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	c.handed.Add(int64(len(spans)))
	return c.next.ExportSpans(ctx, spans)
}

func (c *handedCounter) Shutdown(ctx context.Context) error { return c.next.Shutdown(ctx) }

// BenchmarkBSPQueueLoss measures the spans that the SDK's
// BatchSpanProcessor drops in its default 2048-span queue under the
// comparison's load (scenario.DefaultRate spans/s from
// scenario.DefaultGoroutines goroutines, for 5 s a round), in front of an
// exporter that does nothing and in front of ours sending to a loopback
// receiver, the two alternating in every round. What the processor drops
// in front of an exporter that does nothing is a floor: its goroutine
// waits for a core while the load's goroutines run, and no exporter
// behind it can take its loss under that floor. It reports the median of
// the rounds for each, and the largest.
func BenchmarkBSPQueueLoss(b *testing.B) {
	const dur = 5 * time.Second
	pipelines := []struct {
		name string
		exp  func(b *testing.B) (sdktrace.SpanExporter, func())
	}{
		{"nop", func(*testing.B) (sdktrace.SpanExporter, func()) { return nopExporter{}, func() {} }},
		{"tracekeeper", func(b *testing.B) (sdktrace.SpanExporter, func()) {
			recv, done := loopback(b)
			return exporter.New(exporter.WithEndpoint(recv.Addr()), exporter.WithInsecure(),
				exporter.WithLogger(zap.NewNop())), done
		}},
	}
	drops := make([][]int64, len(pipelines))
	for range b.N {
		for i, p := range pipelines {
			exp, done := p.exp(b)
			c := &handedCounter{next: exp}
			tp := sdktrace.NewTracerProvider(sdktrace.WithResource(scenario.Resource()), sdktrace.WithBatcher(c))
			load := scenario.Generate(context.Background(), tp.Tracer(scenario.TracerName),
				scenario.LoadConfig{Rate: scenario.DefaultRate, Duration: dur})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := tp.Shutdown(ctx); err != nil {
				b.Fatalf("%s: shutdown: %v", p.name, err)
			}
			cancel()
			done()
			drops[i] = append(drops[i], load.Ended-c.handed.Load())
		}
	}
	for i, p := range pipelines {
		slices.Sort(drops[i])
		b.ReportMetric(float64(drops[i][len(drops[i])/2]), p.name+"-dropped/round")
		b.ReportMetric(float64(drops[i][len(drops[i])-1]), p.name+"-dropped-max/round")
	}
}
