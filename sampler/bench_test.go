package sampler

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/internal/cputime"
	"github.com/tracekeeper/tracekeeper/internal/mirror"
)

// Workload of the pipeline benchmarks: traces of a root and three
// children, eight attributes per span, one trace in a hundred failing in a
// child, a 5% head ratio, and a simulated arrival rate of one trace per
// millisecond of the injected clock.
const (
	benchRatio          = 0.05
	benchChildren       = 3
	benchSpansPerTrace  = 1 + benchChildren
	benchErrorEvery     = 100
	benchTraceInterval  = time.Millisecond
	benchWarmupTraces   = 2_000 // simulated time before "held" is sampled: > decision delay
	benchSampleInterval = 64
)

var benchAttrs = []attribute.KeyValue{
	attribute.String("http.request.method", "GET"),
	attribute.String("url.path", "/api/v1/orders"),
	attribute.Int("http.response.status_code", 200),
	attribute.String("server.address", "orders.internal"),
	attribute.Int("server.port", 8080),
	attribute.String("user_agent.original", "bench/1.0"),
	attribute.Bool("cache.hit", false),
	attribute.Int64("orders.count", 3),
}

// errorCountingExporter counts exported spans and distinct failing traces.
type errorCountingExporter struct {
	mu     sync.Mutex
	spans  int
	failed map[trace.TraceID]struct{}
}

func newErrorCountingExporter() *errorCountingExporter {
	return &errorCountingExporter{failed: map[trace.TraceID]struct{}{}}
}

func (e *errorCountingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spans += len(spans)
	for _, s := range spans {
		if s.Status().Code == codes.Error {
			e.failed[s.SpanContext().TraceID()] = struct{}{}
		}
	}
	return nil
}

func (e *errorCountingExporter) Shutdown(context.Context) error { return nil }

func (e *errorCountingExporter) failedTraces() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.failed)
}

// BenchmarkPipeline measures one span (start and end, eight attributes)
// through a TracerProvider with a BatchSpanProcessor, first with the stock
// ParentBased(TraceIDRatioBased(0.05)) sampler, then with ErrorKeeping at
// the same ratio. The difference in ns/op is the added cost per span. It
// also reports the bytes and traces held in steady state and the share of
// failing traces that reached the exporter.
func BenchmarkPipeline(b *testing.B) {
	b.Run("stock", func(b *testing.B) {
		exp := newErrorCountingExporter()
		tp := sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(benchRatio))),
			sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(exp)))
		failing := runPipeline(b, tp, func() {}, nil)
		b.StopTimer()
		if err := tp.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		reportKept(b, exp, failing)
	})
	b.Run("errorkeeping", func(b *testing.B) {
		exp := newErrorCountingExporter()
		clk := clockwork.NewFakeClock()
		keep := ErrorKeeping(sdktrace.NewBatchSpanProcessor(exp), withClock(clk), WithRatio(benchRatio))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(keep))
		var held heldSampler
		failing := runPipeline(b, tp, func() { clk.Advance(benchTraceInterval) }, func(n int) {
			if n >= benchWarmupTraces && n%benchSampleInterval == 0 {
				held.add(keep.Stats())
			}
		})
		b.StopTimer()
		st := keep.Stats()
		if err := tp.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		reportKept(b, exp, failing)
		held.report(b)
		if st.EvictedMaxTraces+st.EvictedMaxBytes+st.EvictedMaxSpans > 0 || st.RateLimited > 0 {
			b.Logf("limits reached: %+v", st)
		}
	})
}

// runPipeline runs b.N spans as traces of benchSpansPerTrace and returns
// the number of failing traces it produced. tick runs after every trace;
// observe, if set, gets the number of traces so far.
func runPipeline(b *testing.B, tp *sdktrace.TracerProvider, tick func(), observe func(int)) int {
	tr := tp.Tracer("bench")
	ctx := context.Background()
	failing, traces := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += benchSpansPerTrace {
		fail := traces%benchErrorEvery == benchErrorEvery-1
		rctx, root := tr.Start(ctx, "GET /api/v1/orders", trace.WithAttributes(benchAttrs...))
		for c := range benchChildren {
			_, child := tr.Start(rctx, "SELECT orders", trace.WithAttributes(benchAttrs...))
			if fail && c == 1 {
				child.SetStatus(codes.Error, "deadlock detected")
			}
			child.End()
		}
		root.End()
		if fail {
			failing++
		}
		traces++
		tick()
		if observe != nil {
			observe(traces)
		}
	}
	return failing
}

func reportKept(b *testing.B, exp *errorCountingExporter, failing int) {
	if failing == 0 {
		return
	}
	b.ReportMetric(100*float64(exp.failedTraces())/float64(failing), "%err-kept")
}

// heldSampler averages Stats samples taken in steady state.
type heldSampler struct {
	n             int
	bytes, traces float64
}

func (h *heldSampler) add(s Stats) {
	h.n++
	h.bytes += float64(s.BytesHeld)
	h.traces += float64(s.TracesHeld)
}

func (h *heldSampler) report(b *testing.B) {
	if h.n == 0 {
		return
	}
	b.ReportMetric(h.bytes/float64(h.n), "held-B")
	b.ReportMetric(h.traces/float64(h.n), "held-traces")
}

// BenchmarkOnEnd measures the processor side alone for recorded-only spans:
// the copy, the shard lookup and the append, with sweeps running
// on the simulated clock. Spans are prebuilt, so the SDK's own cost is out.
func BenchmarkOnEnd(b *testing.B) {
	const traces = 1024 // IDs recur after 1 s simulated, well after their decision
	spans := make([]sdktrace.ReadOnlySpan, 0, traces*benchSpansPerTrace)
	for t := range traces {
		tid := trace.TraceID{byte(t), byte(t >> 8), 0xa5, 7: 1, 15: byte(t * 31)}
		root := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}})
		for c := range benchChildren {
			spans = append(spans, tracetest.SpanStub{
				Name:        "SELECT orders",
				SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{byte(2 + c)}}),
				Parent:      root,
				Attributes:  benchAttrs,
			}.Snapshot())
		}
		spans = append(spans, tracetest.SpanStub{
			Name: "GET /api/v1/orders", SpanContext: root, Attributes: benchAttrs,
		}.Snapshot())
	}
	clk := clockwork.NewFakeClock()
	// The decision cache is off so that the reused trace IDs form new
	// traces each round instead of following an earlier decision.
	keep := ErrorKeeping(nil, withClock(clk), WithRatio(benchRatio), WithDecisionCacheSize(0))
	defer func() { _ = keep.Shutdown(context.Background()) }()

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		keep.OnEnd(spans[i%len(spans)])
		if i%benchSpansPerTrace == benchSpansPerTrace-1 {
			clk.Advance(benchTraceInterval)
		}
	}
}

// BenchmarkHeldSpanFill measures the copy OnEnd makes of a span it holds,
// alone: a span of the SDK with the workload's eight attributes, copied
// again and again into the same value, so that its memory stays in the
// cache. In the pipeline a pooled copy comes back cold, which costs more.
func BenchmarkHeldSpanFill(b *testing.B) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, sp := tp.Tracer("bench").Start(context.Background(), "SELECT orders", trace.WithAttributes(benchAttrs...))
	sp.End()
	s := rec.Ended()[0]
	h := new(heldSpan)
	b.ReportAllocs()
	for b.Loop() {
		h.fill(dataOf(s, new(mirror.Span)), s.SpanContext(), s.Status())
	}
}

// BenchmarkShouldSample compares the head decision with the stock sampler's.
func BenchmarkShouldSample(b *testing.B) {
	// Asked alone, as the sampler of no provider: the wiring warning is
	// expected and silenced.
	keep := ErrorKeeping(nil, WithRatio(benchRatio), WithLogger(zap.NewNop()))
	defer func() { _ = keep.Shutdown(context.Background()) }()
	for _, s := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{
		{"stock", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(benchRatio))},
		{"errorkeeping", keep},
	} {
		b.Run(s.name, func(b *testing.B) {
			p := sdktrace.SamplingParameters{ParentContext: context.Background(), Name: "s"}
			b.ReportAllocs()
			for i := range b.N {
				p.TraceID[15], p.TraceID[8] = byte(i), byte(i>>8)
				_ = s.sampler.ShouldSample(p)
			}
		})
	}
}

// slowProcessor takes a fixed time for every span it is handed.
type slowProcessor struct {
	discard
	per time.Duration
}

func (p slowProcessor) OnEnd(sdktrace.ReadOnlySpan) { time.Sleep(p.per) }

// BenchmarkDeadlines measures how long ForceFlush and Shutdown take, with
// a 300 ms deadline, when the downstream takes 10 ms per span and 400 kept
// spans are held: the figures of the package documentation's promise that
// both return by their deadline. Run with -benchtime 1x.
func BenchmarkDeadlines(b *testing.B) {
	const (
		deadline = 300 * time.Millisecond
		per      = 10 * time.Millisecond
		traces   = 100
	)
	for range b.N {
		keep := ErrorKeeping(slowProcessor{per: per}, WithRatio(0), WithDecisionDelay(time.Hour),
			WithMaxKeptPerSecond(0))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(keep))
		hold := func() {
			for range traces {
				_, root := runTrace(tp.Tracer("bench"), true)
				root.End()
			}
		}
		hold()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		ferr := keep.ForceFlush(ctx)
		flush := time.Since(start)
		cancel()

		hold()
		ctx, cancel = context.WithTimeout(context.Background(), deadline)
		start = time.Now()
		serr := keep.Shutdown(ctx)
		shut := time.Since(start)
		cancel()
		st := keep.Stats()
		b.ReportMetric(float64(deadline.Milliseconds()), "deadline-ms")
		b.ReportMetric(float64(flush.Microseconds())/1000, "forceflush-ms")
		b.ReportMetric(float64(shut.Microseconds())/1000, "shutdown-ms")
		b.ReportMetric(float64(st.DroppedShutdown), "dropped-spans")
		b.Logf("ForceFlush: %v after %v; Shutdown: %v after %v", ferr, flush, serr, shut)
		keep.workers.Wait() // the goroutines still handing on, for the next round
		_ = tp.Shutdown(context.Background())
	}
}

// runTrace starts a root with three children, the second failing when fail
// is set, and returns the root still open.
func runTrace(tr trace.Tracer, fail bool) (context.Context, trace.Span) {
	ctx, root := tr.Start(context.Background(), "GET /api/v1/orders", trace.WithAttributes(benchAttrs...))
	for c := range benchChildren {
		_, child := tr.Start(ctx, "SELECT orders", trace.WithAttributes(benchAttrs...))
		if fail && c == 1 {
			child.SetStatus(codes.Error, "deadlock detected")
		}
		child.End()
	}
	return ctx, root
}

// Shape of BenchmarkKeeperAdded: a chunk is one sweep period of traces
// (100 ms of the simulated clock at one trace per millisecond), so that
// every chunk of the keeper contains exactly one sweep and the medians
// cannot leave the sweep out.
const (
	pairTraces    = 100 // defaultTick(DefaultDecisionDelay) / benchTraceInterval, checked below
	pairSpans     = pairTraces * benchSpansPerTrace
	pairMinRounds = 10
)

// BenchmarkKeeperAdded measures, in one process, what ErrorKeeping adds
// per span to the stock pipeline at a 5% head ratio with one trace in a
// hundred failing, and how much of it is the SDK recording the spans the
// stock sampler would not record. Three pipelines, each a TracerProvider
// with a BatchSpanProcessor and an exporter that counts:
//
//	stock   ParentBased(TraceIDRatioBased(0.05))
//	record  the keeper's head answers (sampled where the ratio samples,
//	        RecordOnly elsewhere) and a processor that hands sampled spans
//	        on and ignores the others: the SDK's recording cost alone
//	keeper  ErrorKeeping at the same ratio
//
// One op is a round: a chunk of pairTraces traces through each pipeline,
// in an order that cycles through the six permutations. The keeper's sweep
// runs on the benchmark goroutine once per chunk, at the simulated time of
// its background tick, so its cost is in the keeper's chunk. A chunk is
// timed by the CPU time of the benchmark's thread (on Linux; elsewhere the
// wall clock), so that other processes on a shared machine do not land in
// the figures; the batch processors' goroutines and the collector's
// background workers run on other threads and are left out alike, the
// collector's assists on this thread are in. Reported per span, as medians
// over rounds of the differences within a round (q1 and q3 give the
// spread): added (keeper − stock), sdk (record − stock) and own (keeper −
// record). The collector's work for the spans the keeper holds is shared
// by whichever chunks it lands in; BenchmarkPipeline, which runs the
// pipelines one after the other, includes it whole.
func BenchmarkKeeperAdded(b *testing.B) {
	if defaultTick(DefaultDecisionDelay) != pairTraces*benchTraceInterval {
		b.Fatal("a chunk is no longer one sweep period")
	}
	mk := func(name string, sampler sdktrace.Sampler, proc sdktrace.SpanProcessor) *pairSide {
		return &pairSide{name: name, tp: sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(proc))}
	}
	bsp := func() sdktrace.SpanProcessor { return sdktrace.NewBatchSpanProcessor(newErrorCountingExporter()) }
	clk := clockwork.NewFakeClock()
	keep := ErrorKeeping(bsp(), withClock(clk), withTick(time.Hour), WithRatio(benchRatio),
		WithMeterProvider(noopmetric.NewMeterProvider()))
	stock := mk("stock", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(benchRatio)), bsp())
	record := mk("record", recordOnlyHead{sdktrace.TraceIDRatioBased(benchRatio)}, sampledOnly{bsp()})
	keeper := mk("keeper", keep, keep)
	keeper.keep, keeper.clk = keep, clk
	sides := []*pairSide{stock, record, keeper}
	for _, s := range sides {
		s.tr = s.tp.Tracer("bench")
		if s.clk == nil {
			s.clk = clockwork.NewFakeClock() // advanced alike, so the harness costs the same
		}
		for range benchWarmupTraces / pairTraces {
			s.chunk()
		}
	}
	rounds := max(b.N, pairMinRounds)
	added, sdk, own, base := make([]float64, rounds), make([]float64, rounds), make([]float64, rounds), make([]float64, rounds)
	var held heldSampler
	defer cputime.LockThread()()
	b.ReportAllocs()
	b.ResetTimer()
	for r := range rounds {
		for _, i := range permutations[r%len(permutations)] {
			sides[i].chunk()
		}
		base[r] = stock.last
		added[r] = keeper.last - stock.last
		sdk[r] = record.last - stock.last
		own[r] = keeper.last - record.last
		held.add(keep.Stats())
	}
	b.StopTimer()
	report := func(v []float64, unit string) {
		b.ReportMetric(quantile(v, 0.5), unit+"-ns/span")
		b.ReportMetric(quantile(v, 0.25), unit+"-q1-ns/span")
		b.ReportMetric(quantile(v, 0.75), unit+"-q3-ns/span")
	}
	b.ReportMetric(quantile(base, 0.5), "stock-ns/span")
	report(added, "added")
	report(sdk, "sdk")
	report(own, "own")
	b.ReportMetric(float64(rounds), "rounds")
	b.Logf("chunks timed by %s", cputime.Name)
	allocs := func(s *pairSide) float64 {
		return testing.AllocsPerRun(4, s.chunk) / pairSpans
	}
	sa, ra, ka := allocs(stock), allocs(record), allocs(keeper)
	b.ReportMetric(ka-sa, "added-allocs/span")
	b.ReportMetric(ka-ra, "own-allocs/span")
	held.report(b)
	if st := keep.Stats(); st.EvictedMaxTraces+st.EvictedMaxBytes+st.EvictedMaxSpans > 0 || st.RateLimited > 0 {
		b.Logf("limits reached: %+v", st)
	}
	for _, s := range sides {
		if err := s.tp.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// permutations of the three sides, cycled through round by round so that
// no side is always first or always after the same one.
var permutations = [][3]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {2, 1, 0}, {1, 0, 2}}

// pairSide is one pipeline of BenchmarkKeeperAdded.
type pairSide struct {
	name  string
	tp    *sdktrace.TracerProvider
	tr    trace.Tracer
	clk   *clockwork.FakeClock
	keep  *ErrorKeeper // the keeper side only
	batch []victim
	n     int     // traces so far
	last  float64 // ns per span of the latest chunk
}

// chunk runs pairTraces traces, one trace per millisecond of the side's
// clock, then the keeper's sweep, and records the time per span, by
// cputime.Now.
func (s *pairSide) chunk() {
	t0 := cputime.Now()
	for range pairTraces {
		_, root := runTrace(s.tr, s.n%benchErrorEvery == benchErrorEvery-1)
		root.End()
		s.n++
		s.clk.Advance(benchTraceInterval)
	}
	if s.keep != nil {
		s.batch = s.keep.sweep(s.clk.Now(), s.batch[:0])
	}
	s.last = float64(cputime.Now()-t0) / pairSpans
}

// recordOnlyHead answers as the ErrorKeeper's default head does: a local
// parent is followed, a new trace or a remote parent is sampled by the
// ratio, and what the ratio drops is recorded without being sampled.
type recordOnlyHead struct{ ratio sdktrace.Sampler }

func (h recordOnlyHead) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	r := sdktrace.SamplingResult{Decision: sdktrace.RecordOnly, Tracestate: psc.TraceState()}
	switch {
	case psc.IsValid():
		if psc.IsSampled() {
			r.Decision = sdktrace.RecordAndSample
		}
	default:
		r = h.ratio.ShouldSample(p)
		if r.Decision == sdktrace.Drop {
			r.Decision = sdktrace.RecordOnly
		}
	}
	return r
}

func (recordOnlyHead) Description() string { return "recordOnlyHead" }

// sampledOnly hands sampled spans to next and does nothing with the others.
type sampledOnly struct{ sdktrace.SpanProcessor }

func (p sampledOnly) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanContext().IsSampled() {
		p.SpanProcessor.OnEnd(s)
	}
}

// quantile returns the q-quantile of v by the nearest rank, sorting v.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[min(len(v)-1, int(q*float64(len(v))))]
}
