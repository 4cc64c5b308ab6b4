package processor_test

import (
	"context"
	"strconv"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/processor"
)

// discard is a downstream processor that does nothing, so that the
// benchmarks measure the span pipeline and the guard, not an exporter.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

// steadyAttrs are eight attributes of a typical server span whose values
// are all admitted after the first span.
var steadyAttrs = []attribute.KeyValue{
	attribute.String("http.request.method", "GET"),
	attribute.String("http.route", "/users/{id}/orders"),
	attribute.String("url.path", "/users/{id}/orders"),
	attribute.String("url.scheme", "https"),
	attribute.String("server.address", "api.example.com"),
	attribute.Int("server.port", 443),
	attribute.Int("http.response.status_code", 200),
	attribute.String("network.protocol.version", "1.1"),
}

// BenchmarkGuard measures a span start and end with eight attributes
// through the same TracerProvider with and without the guard. The guard's
// added cost per span is the difference from the "none" case.
func BenchmarkGuard(b *testing.B) {
	mp := noop.NewMeterProvider()
	const ids = 1 << 16
	userIDs := make([]string, ids)
	rawPaths := make([]string, ids)
	for i := range ids {
		userIDs[i] = "user-" + strconv.Itoa(i) + "x"
		rawPaths[i] = "/users/" + strconv.Itoa(100000+i) + "/orders"
	}

	cases := []struct {
		name  string
		procs func() []sdktrace.SpanProcessor
		attrs func(i int) []attribute.KeyValue
	}{
		{"none", func() []sdktrace.SpanProcessor { return []sdktrace.SpanProcessor{discard{}} }, nil},
		{"guard-onstart", func() []sdktrace.SpanProcessor {
			return []sdktrace.SpanProcessor{processor.CardinalityGuard(processor.WithMeterProvider(mp)), discard{}}
		}, nil},
		{"guard-wrapping", func() []sdktrace.SpanProcessor {
			return []sdktrace.SpanProcessor{processor.CardinalityGuard(processor.WithMeterProvider(mp), processor.WithDownstream(discard{}))}
		}, nil},
		{"overflow", func() []sdktrace.SpanProcessor {
			return []sdktrace.SpanProcessor{processor.CardinalityGuard(processor.WithMeterProvider(mp),
				processor.WithKeyLimit("enduser.id", 16), processor.WithDownstream(discard{}))}
		}, func(i int) []attribute.KeyValue {
			a := append([]attribute.KeyValue(nil), steadyAttrs...)
			a[7] = attribute.String("enduser.id", userIDs[i%ids])
			return a
		}},
		{"normalizing", func() []sdktrace.SpanProcessor {
			return []sdktrace.SpanProcessor{processor.CardinalityGuard(processor.WithMeterProvider(mp), processor.WithDownstream(discard{}))}
		}, func(i int) []attribute.KeyValue {
			a := append([]attribute.KeyValue(nil), steadyAttrs...)
			a[2] = attribute.String("url.path", rawPaths[i%ids])
			return a
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sdktrace.AlwaysSample())}
			for _, p := range tc.procs() {
				opts = append(opts, sdktrace.WithSpanProcessor(p))
			}
			tp := sdktrace.NewTracerProvider(opts...)
			defer func() { _ = tp.Shutdown(context.Background()) }()
			tr := tp.Tracer("bench")
			ctx := context.Background()
			// Precompute the per-span attribute options so that building
			// them is not measured.
			var perSpan [][]trace.SpanStartOption
			if tc.attrs != nil {
				perSpan = make([][]trace.SpanStartOption, 1024)
				for i := range perSpan {
					perSpan[i] = []trace.SpanStartOption{trace.WithAttributes(tc.attrs(i * 61)...)}
				}
			}
			steady := []trace.SpanStartOption{trace.WithAttributes(steadyAttrs...)}
			// Warm up: admit the steady values.
			for range 64 {
				_, s := tr.Start(ctx, "GET /users/{id}/orders", steady...)
				s.End()
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				o := steady
				if perSpan != nil {
					o = perSpan[i&1023]
					i++
				}
				_, s := tr.Start(ctx, "GET /users/{id}/orders", o...)
				s.End()
			}
		})
	}
}

// BenchmarkGuardOnly measures the guard's own work per span, without the
// SDK around it: OnEnd on an ended span (wrapping) and OnStart on a live
// span (rewriting at start), both in the steady state.
func BenchmarkGuardOnly(b *testing.B) {
	mp := noop.NewMeterProvider()
	rec := &lastSpan{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, live := tp.Tracer("bench").Start(context.Background(), "GET /users/{id}/orders", trace.WithAttributes(steadyAttrs...))
	live.End()
	ended := rec.span
	_, live = tp.Tracer("bench").Start(context.Background(), "GET /users/{id}/orders", trace.WithAttributes(steadyAttrs...))
	defer live.End()
	rw := live.(sdktrace.ReadWriteSpan)

	b.Run("wrapping", func(b *testing.B) {
		g := processor.CardinalityGuard(processor.WithMeterProvider(mp), processor.WithDownstream(discard{}))
		g.OnEnd(ended)
		b.ReportAllocs()
		for b.Loop() {
			g.OnEnd(ended)
		}
	})
	b.Run("onstart", func(b *testing.B) {
		g := processor.CardinalityGuard(processor.WithMeterProvider(mp))
		g.OnStart(context.Background(), rw)
		b.ReportAllocs()
		for b.Loop() {
			g.OnStart(context.Background(), rw)
		}
	})
}

type lastSpan struct {
	discard
	span sdktrace.ReadOnlySpan
}

func (l *lastSpan) OnEnd(s sdktrace.ReadOnlySpan) { l.span = s }
