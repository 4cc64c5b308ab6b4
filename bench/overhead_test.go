package bench_test

import (
	"context"
	"slices"
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
	// extra, when not nil, gives the attribute that the spans of the i-th
	// operation carry besides their own, on both sides alike.
	extra func(i int) attribute.KeyValue
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

// guarded is the stock pipeline with CardinalityGuard wrapping its
// BatchSpanProcessor, as the README recommends.
func guarded(opts ...processor.Option) func() (*sdktrace.TracerProvider, func(*testing.B)) {
	return func() (*sdktrace.TracerProvider, func(*testing.B)) {
		g := processor.CardinalityGuard(append([]processor.Option{processor.WithDownstream(bspNop()),
			processor.WithMeterProvider(noop.NewMeterProvider())}, opts...)...)
		return provider(sdktrace.WithSpanProcessor(g)), nil
	}
}

// guardedPlain is the stock pipeline with CardinalityGuard registered
// beside its BatchSpanProcessor, the plain wiring.
func guardedPlain() (*sdktrace.TracerProvider, func(*testing.B)) {
	g := processor.CardinalityGuard(processor.WithMeterProvider(noop.NewMeterProvider()))
	return provider(sdktrace.WithSpanProcessor(g), sdktrace.WithSpanProcessor(bspNop())), nil
}

func stock() (*sdktrace.TracerProvider, func(*testing.B)) {
	return provider(sdktrace.WithSpanProcessor(bspNop())), nil
}

// loadSpan is one span of the load's shape (scenario.StartEnd): a server
// span with eight attributes, among them a 97-byte user agent, in 24
// variants of four routes and six status codes.
func loadSpan(tr trace.Tracer, i int) { scenario.StartEnd(context.Background(), tr, i) }

// extraVariants is the number of distinct extra attributes a case cycles
// through; they are built before the benchmark.
const extraVariants = 1024

// extraAttr is a tracer whose spans carry one attribute more than they are
// started with: the one of the operation set with at. It lets a case use
// the load's span shape unchanged and add the value under test.
type extraAttr struct {
	trace.Tracer
	opts []trace.SpanStartOption // one per variant
	i    int
	buf  []trace.SpanStartOption
}

func newExtraAttr(tr trace.Tracer, attr func(i int) attribute.KeyValue) *extraAttr {
	t := &extraAttr{Tracer: tr, opts: make([]trace.SpanStartOption, extraVariants)}
	for i := range t.opts {
		t.opts[i] = trace.WithAttributes(attr(i))
	}
	return t
}

func (t *extraAttr) at(i int) { t.i = i % extraVariants }

func (t *extraAttr) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	t.buf = append(append(t.buf[:0], opts...), t.opts[t.i])
	return t.Tracer.Start(ctx, name, t.buf...)
}

var pairedCases = []pairedCase{
	{
		// The load's spans once all their values are admitted (the
		// warm-up sees every variant): eight attributes, none
		// overflowing, nothing rewritten. Two of the values are of
		// normalized kinds, the span name and http.route
		// ("/api/v1/orders/{id}"); they hold a digit but no id, and as
		// admitted values they pass without the normalizer running.
		name: "guard/steady",
		base: stock,
		with: guarded(),
		op:   loadSpan,
		unit: "span",
	},
	{
		// The same spans with the guard in the plain wiring, registered
		// beside the BatchSpanProcessor.
		name: "guard/steady-plain",
		base: stock,
		with: guardedPlain,
		op:   loadSpan,
		unit: "span",
	},
	{
		// The normalizing path: the load's span plus a raw url.path with
		// an id, "/api/v1/orders/100123", which the built-in normalizer
		// rewrites to the admitted template "/api/v1/orders/{id}" on every
		// span.
		name: "guard/normalizing",
		base: stock,
		with: guarded(),
		extra: func(i int) attribute.KeyValue {
			return attribute.String("url.path", "/api/v1/orders/"+strconv.Itoa(100000+i))
		},
		op:   loadSpan,
		unit: "span",
	},
	{
		// The overflow path: the load's span plus an enduser.id that is
		// new on every span, for a key limited to one value: the value
		// is replaced and the span marked.
		name:  "guard/overflow",
		base:  stock,
		with:  guarded(processor.WithKeyLimit("enduser.id", 1)),
		extra: func(i int) attribute.KeyValue { return attribute.String("enduser.id", "user-"+strconv.Itoa(i)) },
		op:    loadSpan,
		unit:  "span",
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
// and without the component in alternating chunks of pairChunk
// operations, the side that goes first alternating too, so that noise from
// the rest of the machine and any advantage of going second fall on both
// sides alike. Reported per operation (a span or a four-span trace, as
// the metric's unit says): base-ns, the median chunk without the
// component; added-ns, the median of the chunk-by-chunk differences (not
// the difference of two medians); added-allocs, from testing.AllocsPerRun
// on each side. ns/op and allocs/op count both sides together.
//
// Medians, because a chunk's time has a long tail on a small machine: a
// garbage collection, the batch processor's goroutine taking the CPU, or
// another process lands in some chunks and not others. A mean of the same
// differences moves by hundreds of nanoseconds from one run to the next,
// and by tens of nanoseconds for two identical pipelines.
func BenchmarkAddedCost(b *testing.B) {
	for _, c := range pairedCases {
		b.Run(c.name, func(b *testing.B) {
			baseTP, _ := c.base()
			withTP, report := c.with()
			defer shutdown(b, baseTP)
			defer shutdown(b, withTP)
			base, with := newSide(baseTP, c), newSide(withTP, c)
			for i := range 1024 { // warm up: admit the steady values, fill pools
				base.op(i)
				with.op(i)
			}
			chunks := (b.N + pairChunk - 1) / pairChunk
			baseNs, addedNs := make([]float64, 0, chunks), make([]float64, 0, chunks)
			b.ReportAllocs()
			b.ResetTimer()
			for k := range chunks {
				i, n := k*pairChunk, min(pairChunk, b.N-k*pairChunk)
				first, second := base, with
				if k%2 == 1 {
					first, second = with, base
				}
				first.chunk(i, n)
				second.chunk(i, n)
				baseNs = append(baseNs, base.last)
				addedNs = append(addedNs, with.last-base.last)
			}
			b.StopTimer()
			b.ReportMetric(median(baseNs), "base-ns/"+c.unit)
			b.ReportMetric(median(addedNs), "added-ns/"+c.unit)
			b.ReportMetric(quantile(addedNs, 0.25), "added-q1-ns/"+c.unit)
			b.ReportMetric(quantile(addedNs, 0.75), "added-q3-ns/"+c.unit)
			b.ReportMetric(float64(len(addedNs)), "pairs")
			i := b.N
			allocs := func(s *side) float64 {
				return testing.AllocsPerRun(200, func() { s.op(i); i++ })
			}
			b.ReportMetric(allocs(with)-allocs(base), "added-allocs/"+c.unit)
			if report != nil {
				report(b)
			}
		})
	}
}

// side is one of the two pipelines of a paired case.
type side struct {
	c     *pairedCase
	tr    trace.Tracer
	extra *extraAttr // nil without c.extra
	last  float64    // ns per operation of the latest chunk
}

func newSide(tp *sdktrace.TracerProvider, c pairedCase) *side {
	s := &side{c: &c, tr: tp.Tracer(scenario.TracerName)}
	if c.extra != nil {
		s.extra = newExtraAttr(s.tr, c.extra)
		s.tr = s.extra
	}
	return s
}

func (s *side) op(i int) {
	if s.extra != nil {
		s.extra.at(i)
	}
	s.c.op(s.tr, i)
}

// chunk runs operations i to i+n-1 and records their time per operation.
func (s *side) chunk(i, n int) {
	t0 := time.Now()
	for j := range n {
		s.op(i + j)
	}
	s.last = float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func median(v []float64) float64 { return quantile(v, 0.5) }

// quantile returns the q-quantile of v by the nearest rank, sorting v.
func quantile(v []float64, q float64) float64 {
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return v[min(len(v)-1, int(q*float64(len(v))))]
}
