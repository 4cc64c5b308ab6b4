package bench_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
	"github.com/tracekeeper/tracekeeper/processor"
	"github.com/tracekeeper/tracekeeper/sampler"
)

// pairChunk is the number of operations timed at once on one side of a
// paired benchmark before switching to the other side.
const pairChunk = 32

// pairedCase compares a pipeline with and without one component on the
// same work.
type pairedCase struct {
	name string
	// base and with build the two providers; the extra return value, when
	// not nil, is called after the benchmark to report more metrics.
	base, with func() (*sdktrace.TracerProvider, func(*testing.B))
	// op does one unit of work (a span or a trace) on a tracer; i numbers
	// the operation.
	op func(tr trace.Tracer, i int)
	// unit names the operation in the reported metrics.
	unit string
}

// bspNop is the stock BatchSpanProcessor with an exporter that does
// nothing: the pipeline a component is added to, without network work.
func bspNop() sdktrace.SpanProcessor { return sdktrace.NewBatchSpanProcessor(nopExporter{}) }

func provider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(append(opts, sdktrace.WithResource(scenario.Resource()))...)
}

// spanWith starts and ends one span of the load's shape with one more
// attribute.
func spanWith(tr trace.Tracer, i int, extra attribute.KeyValue) {
	_, s := tr.Start(context.Background(), "GET /api/v1/orders/{id}",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(extra))
	scenario.StartEnd(context.Background(), tr, i) // keeps the eight attributes of every other span
	s.End()
}

var pairedCases = []pairedCase{
	{
		name: "guard/steady",
		base: func() (*sdktrace.TracerProvider, func(*testing.B)) {
			return provider(sdktrace.WithSpanProcessor(bspNop())), nil
		},
		with: func() (*sdktrace.TracerProvider, func(*testing.B)) {
			g := processor.CardinalityGuard(processor.WithDownstream(bspNop()),
				processor.WithMeterProvider(noop.NewMeterProvider()))
			return provider(sdktrace.WithSpanProcessor(g)), nil
		},
		op:   func(tr trace.Tracer, i int) { scenario.StartEnd(context.Background(), tr, i) },
		unit: "span",
	},
	{
		// Every other span carries a new enduser.id: over the key's limit
		// of one value, it is replaced and the span marked.
		name: "guard/overflow",
		base: func() (*sdktrace.TracerProvider, func(*testing.B)) {
			return provider(sdktrace.WithSpanProcessor(bspNop())), nil
		},
		with: func() (*sdktrace.TracerProvider, func(*testing.B)) {
			g := processor.CardinalityGuard(processor.WithDownstream(bspNop()),
				processor.WithKeyLimit("enduser.id", 1), processor.WithMeterProvider(noop.NewMeterProvider()))
			return provider(sdktrace.WithSpanProcessor(g)), nil
		},
		op: func(tr trace.Tracer, i int) {
			spanWith(tr, i, attribute.String("enduser.id", "user-"+strconv.Itoa(i)))
		},
		unit: "2spans",
	},
	{
		// Every other span carries a raw url.path that normalizes to one
		// admitted template.
		name: "guard/normalizing",
		base: func() (*sdktrace.TracerProvider, func(*testing.B)) {
			return provider(sdktrace.WithSpanProcessor(bspNop())), nil
		},
		with: func() (*sdktrace.TracerProvider, func(*testing.B)) {
			g := processor.CardinalityGuard(processor.WithDownstream(bspNop()),
				processor.WithMeterProvider(noop.NewMeterProvider()))
			return provider(sdktrace.WithSpanProcessor(g)), nil
		},
		op: func(tr trace.Tracer, i int) {
			spanWith(tr, i, attribute.String("url.path", "/api/v1/orders/"+strconv.Itoa(100000+i)))
		},
		unit: "2spans",
	},
	{
		// Traces of a server span and three children at a 5% head ratio;
		// one trace in a hundred has a failing child. The base is the
		// stock ratio sampler alone, which loses the failing traces it
		// does not sample.
		name: "sampler/ratio-5pct-errors-1pct",
		base: func() (*sdktrace.TracerProvider, func(*testing.B)) {
			return provider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.05))),
				sdktrace.WithSpanProcessor(bspNop())), nil
		},
		with: func() (*sdktrace.TracerProvider, func(*testing.B)) {
			k := sampler.ErrorKeeping(bspNop(), sampler.WithRatio(0.05),
				sampler.WithMeterProvider(noop.NewMeterProvider()))
			return provider(sdktrace.WithSampler(k), sdktrace.WithSpanProcessor(k)), func(b *testing.B) {
				st := k.Stats()
				b.ReportMetric(float64(st.BytesHeld), "held-B")
				b.ReportMetric(float64(st.TracesHeld), "held-traces")
			}
		},
		op: func(tr trace.Tracer, i int) {
			ctx, root := tr.Start(context.Background(), "GET /api/v1/orders/{id}", trace.WithSpanKind(trace.SpanKindServer))
			for c := range 3 {
				_, child := tr.Start(ctx, "SELECT orders", trace.WithSpanKind(trace.SpanKindClient),
					trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attribute.Int("db.response.returned_rows", c)))
				if c == 2 && i%100 == 0 {
					child.SetStatus(codes.Error, "deadlock detected")
				}
				child.End()
			}
			root.End()
		},
		unit: "trace",
	},
}

// BenchmarkAddedCost measures what CardinalityGuard and the error-keeping
// sampler add to a pipeline of the stock BatchSpanProcessor (with a no-op
// exporter), in one run: the same operations go through the pipeline with
// and without the component in alternating chunks, so that noise from the
// rest of the machine falls on both alike. Reported per operation (one
// span, two spans, or a four-span trace, as the metric's unit says):
// base-ns, with-ns and added-ns; added-allocs from testing.AllocsPerRun on
// each side. ns/op and allocs/op count both sides together.
func BenchmarkAddedCost(b *testing.B) {
	for _, c := range pairedCases {
		b.Run(c.name, func(b *testing.B) {
			baseTP, _ := c.base()
			withTP, report := c.with()
			defer shutdown(b, baseTP)
			defer shutdown(b, withTP)
			base, with := baseTP.Tracer(scenario.TracerName), withTP.Tracer(scenario.TracerName)
			for i := range 1024 { // warm up: admit the steady values, fill pools
				c.op(base, i)
				c.op(with, i)
			}
			var tBase, tWith time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += pairChunk {
				n := min(pairChunk, b.N-i)
				t0 := time.Now()
				for j := range n {
					c.op(base, i+j)
				}
				t1 := time.Now()
				for j := range n {
					c.op(with, i+j)
				}
				tWith += time.Since(t1)
				tBase += t1.Sub(t0)
			}
			b.StopTimer()
			perOp := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			b.ReportMetric(perOp(tBase), "base-ns/"+c.unit)
			b.ReportMetric(perOp(tWith), "with-ns/"+c.unit)
			b.ReportMetric(perOp(tWith-tBase), "added-ns/"+c.unit)
			i := b.N
			allocs := func(tr trace.Tracer) float64 {
				return testing.AllocsPerRun(200, func() { c.op(tr, i); i++ })
			}
			b.ReportMetric(allocs(with)-allocs(base), "added-allocs/"+c.unit)
			if report != nil {
				report(b)
			}
		})
	}
}
