package processor_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

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

// benchCase is one pipeline of the span benchmarks.
type benchCase struct {
	name  string
	procs func() []sdktrace.SpanProcessor
	// attrs returns the attributes of the i-th span; nil means the eight
	// steady attributes on every span.
	attrs func(i int) []attribute.KeyValue
}

func benchCases() []benchCase {
	mp := noop.NewMeterProvider()
	return []benchCase{
		{"none", func() []sdktrace.SpanProcessor { return []sdktrace.SpanProcessor{discard{}} }, nil},
		{"guard-onstart", func() []sdktrace.SpanProcessor {
			return []sdktrace.SpanProcessor{processor.CardinalityGuard(processor.WithMeterProvider(mp)), discard{}}
		}, nil},
		{"guard-wrapping", func() []sdktrace.SpanProcessor {
			return []sdktrace.SpanProcessor{processor.CardinalityGuard(processor.WithMeterProvider(mp), processor.WithDownstream(discard{}))}
		}, nil},
		// Every span carries a new enduser.id for a key whose one slot is
		// taken: one value replaced and the span marked.
		{"overflow", func() []sdktrace.SpanProcessor {
			return []sdktrace.SpanProcessor{processor.CardinalityGuard(processor.WithMeterProvider(mp),
				processor.WithKeyLimit("enduser.id", 1), processor.WithDownstream(discard{}))}
		}, func(i int) []attribute.KeyValue {
			a := append([]attribute.KeyValue(nil), steadyAttrs...)
			a[7] = attribute.String("enduser.id", "user-"+strconv.Itoa(i)+"x")
			return a
		}},
		// Every span carries a raw url.path that normalizes to an
		// admitted template.
		{"normalizing", func() []sdktrace.SpanProcessor {
			return []sdktrace.SpanProcessor{processor.CardinalityGuard(processor.WithMeterProvider(mp), processor.WithDownstream(discard{}))}
		}, func(i int) []attribute.KeyValue {
			a := append([]attribute.KeyValue(nil), steadyAttrs...)
			a[2] = attribute.String("url.path", "/users/"+strconv.Itoa(100000+i)+"/orders")
			return a
		}},
	}
}

// spanRunner starts and ends spans through one pipeline.
type spanRunner struct {
	tp   *sdktrace.TracerProvider
	tr   trace.Tracer
	opts [][]trace.SpanStartOption // per span, cycled
}

const benchSpanName = "GET /users/{id}/orders"

func newSpanRunner(c benchCase, attrs func(int) []attribute.KeyValue) *spanRunner {
	o := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sdktrace.AlwaysSample())}
	for _, p := range c.procs() {
		o = append(o, sdktrace.WithSpanProcessor(p))
	}
	r := &spanRunner{tp: sdktrace.NewTracerProvider(o...)}
	r.tr = r.tp.Tracer("bench")
	if attrs == nil {
		attrs = func(int) []attribute.KeyValue { return steadyAttrs }
	}
	r.opts = make([][]trace.SpanStartOption, 1024) // a power of two
	for i := range r.opts {
		r.opts[i] = []trace.SpanStartOption{trace.WithAttributes(attrs(i)...)}
	}
	// Warm up: admit the steady values, and take the one enduser.id slot
	// so that every measured span of the overflow case overflows.
	primer := append(append([]attribute.KeyValue(nil), steadyAttrs...), attribute.String("enduser.id", "primer"))
	for range 64 {
		_, s := r.tr.Start(context.Background(), benchSpanName, trace.WithAttributes(primer...))
		s.End()
	}
	return r
}

func (r *spanRunner) span(i int) {
	_, s := r.tr.Start(context.Background(), benchSpanName, r.opts[i&(len(r.opts)-1)]...)
	s.End()
}

// BenchmarkGuard measures a span start and end with eight attributes
// through the same TracerProvider with and without the guard; the "none"
// case is the provider with only a no-op processor. The guard's added cost
// is the difference from "none"; BenchmarkGuardAdded measures it directly.
func BenchmarkGuard(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			r := newSpanRunner(c, c.attrs)
			defer func() { _ = r.tp.Shutdown(context.Background()) }()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.span(i)
			}
		})
	}
}

// BenchmarkGuardAdded measures the guard's added cost per span against the
// same pipeline without it, in alternating batches of 16 spans, so that
// load from other processes on the machine falls on both sides alike.
// Each batch pair gives one difference; the reported added-ns/span is the
// median of those differences, so a batch hit by a GC pause or by
// preemption does not skew it. base-ns/span is the median batch without the
// guard; ns/op is the cost of one span through each of the two pipelines.
func BenchmarkGuardAdded(b *testing.B) {
	cases := benchCases()
	for _, c := range cases[1:] {
		b.Run(c.name, func(b *testing.B) {
			base := newSpanRunner(cases[0], c.attrs)
			guarded := newSpanRunner(c, c.attrs)
			defer func() {
				_ = base.tp.Shutdown(context.Background())
				_ = guarded.tp.Shutdown(context.Background())
			}()
			const batch = 16
			batches := (b.N + batch - 1) / batch
			diffs := make([]time.Duration, 0, batches)
			bases := make([]time.Duration, 0, batches)
			b.ResetTimer()
			for k := range batches {
				t0 := time.Now()
				for j := range batch {
					base.span(k*batch + j)
				}
				t1 := time.Now()
				for j := range batch {
					guarded.span(k*batch + j)
				}
				t2 := time.Now()
				diffs = append(diffs, t2.Sub(t1)-t1.Sub(t0))
				bases = append(bases, t1.Sub(t0))
			}
			b.StopTimer()
			b.ReportMetric(float64(median(diffs))/batch, "added-ns/span")
			b.ReportMetric(float64(median(bases))/batch, "base-ns/span")
		})
	}
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkGuardLateAttributes starts spans with four attributes and sets
// four more after start. Reading the attributes in OnStart (the plain
// wiring) makes the SDK copy them at the first SetAttributes after start;
// this benchmark shows that allocation next to the other two cases.
func BenchmarkGuardLateAttributes(b *testing.B) {
	start := []trace.SpanStartOption{trace.WithAttributes(steadyAttrs[:4]...)}
	late := steadyAttrs[4:]
	for _, c := range benchCases()[:3] {
		b.Run(c.name, func(b *testing.B) {
			r := newSpanRunner(c, nil)
			defer func() { _ = r.tp.Shutdown(context.Background()) }()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, s := r.tr.Start(context.Background(), benchSpanName, start...)
				s.SetAttributes(late...)
				s.End()
			}
		})
	}
}

// BenchmarkGuardOnly measures the guard's own work per span without the
// SDK around it, on spans ended beforehand: OnEnd with a downstream (the
// wrapping wiring) in the steady state and on the overflow and normalizing
// paths, and OnStart on a live span (the plain wiring).
func BenchmarkGuardOnly(b *testing.B) {
	mp := noop.NewMeterProvider()
	rec := &lastSpans{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("bench")
	const n = 1024
	end := func(attrs func(i int) []attribute.KeyValue) []sdktrace.ReadOnlySpan {
		rec.spans = nil
		for i := range n + 1 { // the last one primes the guard

			_, s := tr.Start(context.Background(), "GET /users/{id}/orders", trace.WithAttributes(attrs(i)...))
			s.End()
		}
		return rec.spans
	}
	steady := end(func(int) []attribute.KeyValue { return steadyAttrs })
	overflow := end(func(i int) []attribute.KeyValue {
		a := append([]attribute.KeyValue(nil), steadyAttrs...)
		a[7] = attribute.String("enduser.id", "user-"+strconv.Itoa(i)+"x")
		return a
	})
	normalizing := end(func(i int) []attribute.KeyValue {
		a := append([]attribute.KeyValue(nil), steadyAttrs...)
		a[2] = attribute.String("url.path", "/users/"+strconv.Itoa(100000+i)+"/orders")
		return a
	})
	_, live := tr.Start(context.Background(), "GET /users/{id}/orders", trace.WithAttributes(steadyAttrs...))
	defer live.End()
	rw := live.(sdktrace.ReadWriteSpan)

	for _, tc := range []struct {
		name  string
		spans []sdktrace.ReadOnlySpan
	}{{"wrapping", steady}, {"wrapping-overflow", overflow}, {"wrapping-normalizing", normalizing}} {
		b.Run(tc.name, func(b *testing.B) {
			g := processor.CardinalityGuard(processor.WithMeterProvider(mp),
				processor.WithKeyLimit("enduser.id", 1), processor.WithDownstream(discard{}))
			g.OnEnd(steady[0])
			g.OnEnd(tc.spans[n])
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				g.OnEnd(tc.spans[i&(n-1)])
			}
		})
	}
	b.Run("onstart", func(b *testing.B) {
		g := processor.CardinalityGuard(processor.WithMeterProvider(mp))
		g.OnStart(context.Background(), rw)
		b.ReportAllocs()
		for b.Loop() {
			g.OnStart(context.Background(), rw)
		}
	})
}

// lastSpans records ended spans.
type lastSpans struct {
	discard
	spans []sdktrace.ReadOnlySpan
}

func (l *lastSpans) OnEnd(s sdktrace.ReadOnlySpan) { l.spans = append(l.spans, s) }
