package sampler

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testTick  = 10 * time.Millisecond
	testDelay = 100 * time.Millisecond
)

// harness is an ErrorKeeper on a fake clock inside a real TracerProvider,
// handing what it keeps to a span recorder.
type harness struct {
	t     *testing.T
	clock *clockwork.FakeClock
	rec   *tracetest.SpanRecorder
	keep  *ErrorKeeper
	tp    *sdktrace.TracerProvider
	tr    trace.Tracer
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	return newHarnessTo(t, nil, opts...)
}

// newHarnessTo is newHarness with next as the downstream; with next nil,
// the harness's span recorder.
func newHarnessTo(t *testing.T, next sdktrace.SpanProcessor, opts ...Option) *harness {
	t.Helper()
	clk := clockwork.NewFakeClock()
	rec := tracetest.NewSpanRecorder()
	if next == nil {
		next = rec
	}
	base := []Option{withClock(clk), withTick(testTick), WithRatio(0), WithDecisionDelay(testDelay), WithMaxKeptPerSecond(0)}
	keep := ErrorKeeping(next, append(base, opts...)...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(keep))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := &harness{t: t, clock: clk, rec: rec, keep: keep, tp: tp, tr: tp.Tracer("test")}
	h.waitIdle()
	return h
}

// waitIdle returns once the background goroutine waits on its timer, that
// is, after it has finished any sweep. The context only guards against a
// hang; no assertion depends on time.
func (h *harness) waitIdle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.clock.BlockUntilContext(ctx, 1); err != nil {
		h.t.Fatalf("background goroutine did not come back to its timer: %v", err)
	}
}

// advance moves the fake clock and waits for the sweep it triggers.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.waitIdle()
	h.clock.Advance(d)
	h.waitIdle()
}

// trace starts a local root with children; errAt marks the child (0-based)
// that fails, -1 for none. It returns the root, still open.
func (h *harness) trace(ctx context.Context, children, errAt int) (context.Context, trace.Span) {
	ctx, root := h.tr.Start(ctx, "root")
	for i := range children {
		_, c := h.tr.Start(ctx, "child")
		if i == errAt {
			c.SetStatus(codes.Error, "boom")
		}
		c.End()
	}
	return ctx, root
}

func keptBy(s sdktrace.ReadOnlySpan) string {
	for _, kv := range s.Attributes() {
		if kv.Key == KeptByKey {
			return kv.Value.AsString()
		}
	}
	return ""
}

func TestShouldSample(t *testing.T) {
	tid := trace.TraceID{1}
	remote := func(sampled bool, ts string) context.Context {
		st, err := trace.ParseTraceState(ts)
		if err != nil {
			t.Fatal(err)
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: trace.SpanID{2}, Remote: true, TraceState: st,
			TraceFlags: trace.TraceFlags(0).WithSampled(sampled),
		})
		return trace.ContextWithRemoteSpanContext(context.Background(), sc)
	}
	local := func(sampled bool) context.Context {
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: trace.SpanID{3},
			TraceFlags: trace.TraceFlags(0).WithSampled(sampled),
		})
		return trace.ContextWithSpanContext(context.Background(), sc)
	}
	tests := []struct {
		name      string
		ratio     float64
		ctx       context.Context
		want      sdktrace.SamplingDecision
		wantState string
		wantHead  uint64
	}{
		{"root, ratio 1", 1, context.Background(), sdktrace.RecordAndSample, "", 1},
		{"root, ratio 0", 0, context.Background(), sdktrace.RecordOnly, "", 0},
		{"remote sampled parent wins over ratio 0", 0, remote(true, "ot=th:8,v=1"), sdktrace.RecordAndSample, "ot=th:8,v=1", 1},
		{"remote unsampled parent wins over ratio 1", 1, remote(false, "v=1"), sdktrace.RecordOnly, "v=1", 0},
		{"local sampled parent", 0, local(true), sdktrace.RecordAndSample, "", 0},
		{"local unsampled parent", 1, local(false), sdktrace.RecordOnly, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := ErrorKeeping(nil, WithRatio(tt.ratio))
			defer func() { _ = k.Shutdown(context.Background()) }()
			r := k.ShouldSample(sdktrace.SamplingParameters{ParentContext: tt.ctx, TraceID: tid, Name: "s"})
			if r.Decision != tt.want {
				t.Errorf("decision = %v, want %v", r.Decision, tt.want)
			}
			if got := r.Tracestate.String(); got != tt.wantState {
				t.Errorf("tracestate = %q, want %q", got, tt.wantState)
			}
			head := len(r.Attributes) == 1 && r.Attributes[0] == KeptByKey.String(KeptByHead)
			if head != (tt.want == sdktrace.RecordAndSample) {
				t.Errorf("attributes = %v", r.Attributes)
			}
			if got := k.Stats().HeadSampled; got != tt.wantHead {
				t.Errorf("HeadSampled = %d, want %d", got, tt.wantHead)
			}
		})
	}
}

func TestShouldSampleMatchesStockRatio(t *testing.T) {
	const ratio = 0.3
	stock := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	k := ErrorKeeping(nil, WithRatio(ratio), WithLogger(zap.NewNop())) // asked alone: no wiring warning
	defer func() { _ = k.Shutdown(context.Background()) }()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		var tid trace.TraceID
		for i := range tid {
			tid[i] = byte(rng.Uint32())
		}
		p := sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: tid}
		want := stock.ShouldSample(p).Decision == sdktrace.RecordAndSample
		got := k.ShouldSample(p).Decision == sdktrace.RecordAndSample
		if got != want {
			t.Fatalf("trace %s: sampled = %v, stock sampled = %v", tid, got, want)
		}
	}
}

func TestShouldSampleDropsAfterShutdown(t *testing.T) {
	k := ErrorKeeping(nil, WithRatio(0))
	if err := k.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := k.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: trace.TraceID{1}})
	if r.Decision != sdktrace.Drop {
		t.Errorf("decision after Shutdown = %v, want Drop", r.Decision)
	}
}

func TestTailDecision(t *testing.T) {
	tests := []struct {
		name        string
		opts        []Option
		errAt       int
		rootAttr    attribute.KeyValue
		slowChild   bool
		wantKeptBy  string
		wantSpans   int
		wantRelease uint64
	}{
		{name: "error in a child rescues the whole local trace", errAt: 1, wantKeptBy: KeptByError, wantSpans: 4},
		{name: "clean trace is released", errAt: -1, wantRelease: 1},
		{
			name: "slow trace is kept by latency", errAt: -1, slowChild: true,
			opts:       []Option{WithLatencyThreshold(time.Second)},
			wantKeptBy: KeptByLatency, wantSpans: 5,
		},
		{
			name: "fast trace under the latency threshold is released", errAt: -1,
			opts: []Option{WithLatencyThreshold(time.Hour)}, wantRelease: 1,
		},
		{
			name: "predicate keeps", errAt: -1, rootAttr: attribute.Bool("vip", true),
			opts: []Option{WithPredicate(func(s sdktrace.ReadOnlySpan) bool {
				for _, kv := range s.Attributes() {
					if kv.Key == "vip" {
						return true
					}
				}
				return false
			})},
			wantKeptBy: KeptByPredicate, wantSpans: 4,
		},
		{
			name: "error wins over latency and predicate", errAt: 0, slowChild: true,
			opts: []Option{
				WithLatencyThreshold(time.Second),
				WithPredicate(func(sdktrace.ReadOnlySpan) bool { return true }),
			},
			wantKeptBy: KeptByError, wantSpans: 5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts...)
			ctx, root := h.trace(context.Background(), 3, tt.errAt)
			if tt.slowChild {
				start := time.Now()
				_, c := h.tr.Start(ctx, "slow", trace.WithTimestamp(start))
				c.End(trace.WithTimestamp(start.Add(2 * time.Second)))
			}
			if tt.rootAttr.Valid() {
				root.SetAttributes(tt.rootAttr)
			}
			root.End()

			if got := len(h.rec.Ended()); got != 0 {
				t.Fatalf("%d spans exported before the decision delay", got)
			}
			h.advance(testDelay - testTick)
			if got := len(h.rec.Ended()); got != 0 {
				t.Fatalf("%d spans exported before the decision delay", got)
			}
			h.advance(testTick)

			got := h.rec.Ended()
			if len(got) != tt.wantSpans {
				t.Fatalf("exported %d spans, want %d", len(got), tt.wantSpans)
			}
			for _, s := range got {
				if !s.SpanContext().IsSampled() {
					t.Errorf("span %q exported without the sampled flag", s.Name())
				}
				if p := s.Parent(); p.IsValid() && !p.IsSampled() {
					t.Errorf("span %q has a local parent without the sampled flag", s.Name())
				}
				if kb := keptBy(s); kb != tt.wantKeptBy {
					t.Errorf("span %q kept_by = %q, want %q", s.Name(), kb, tt.wantKeptBy)
				}
			}
			st := h.keep.Stats()
			if st.Released != tt.wantRelease {
				t.Errorf("Released = %d, want %d", st.Released, tt.wantRelease)
			}
			if st.TracesHeld != 0 || st.SpansHeld != 0 || st.BytesHeld != 0 {
				t.Errorf("still held after the decision: %+v", st)
			}
		})
	}
}

func TestHeadSampledSpansPassStraightThrough(t *testing.T) {
	h := newHarness(t, WithRatio(1))
	_, root := h.trace(context.Background(), 2, 0)
	root.End()
	got := h.rec.Ended()
	if len(got) != 3 {
		t.Fatalf("exported %d spans at once, want 3", len(got))
	}
	for _, s := range got {
		if kb := keptBy(s); kb != KeptByHead {
			t.Errorf("kept_by = %q, want head", kb)
		}
	}
	if st := h.keep.Stats(); st.TracesHeld != 0 || st.KeptByError != 0 {
		t.Errorf("head-sampled trace went through the tail: %+v", st)
	}
}

func TestLateSpansFollowTheDecision(t *testing.T) {
	tests := []struct {
		name       string
		errAt      int
		wantLate   int // late spans exported
		wantKept   uint64
		wantReleas uint64
	}{
		{"kept trace", 0, 1, 1, 0},
		{"released trace", -1, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx, root := h.trace(context.Background(), 2, tt.errAt)
			_, straggler := h.tr.Start(ctx, "straggler")
			root.End()
			h.advance(testDelay)
			before := len(h.rec.Ended())

			straggler.SetStatus(codes.Error, "late failure does not reopen the decision")
			straggler.End()

			after := h.rec.Ended()
			if got := len(after) - before; got != tt.wantLate {
				t.Fatalf("late spans exported = %d, want %d", got, tt.wantLate)
			}
			if tt.wantLate > 0 {
				late := after[len(after)-1]
				if late.Name() != "straggler" || !late.SpanContext().IsSampled() || keptBy(late) != KeptByError {
					t.Errorf("late span exported as %q sampled=%v kept_by=%q",
						late.Name(), late.SpanContext().IsSampled(), keptBy(late))
				}
			}
			st := h.keep.Stats()
			if st.LateSpansKept != tt.wantKept || st.LateSpansReleased != tt.wantReleas {
				t.Errorf("late kept/released = %d/%d, want %d/%d",
					st.LateSpansKept, st.LateSpansReleased, tt.wantKept, tt.wantReleas)
			}
		})
	}
}

func TestDecisionCacheForgetsOldestFirst(t *testing.T) {
	h := newHarness(t, WithDecisionCacheSize(2), WithMaxTraces(10))
	var stragglers []trace.Span
	for range 3 {
		ctx, root := h.trace(context.Background(), 0, -1)
		root.SetStatus(codes.Error, "x")
		_, s := h.tr.Start(ctx, "straggler")
		stragglers = append(stragglers, s)
		root.End()
	}
	h.advance(testDelay)
	// The first trace's decision was forgotten: its straggler starts a new
	// held trace. The other two follow their decisions.
	for _, s := range stragglers {
		s.End()
	}
	st := h.keep.Stats()
	if st.LateSpansKept != 2 || st.TracesHeld != 1 {
		t.Errorf("late kept = %d, held = %d; want 2 and 1", st.LateSpansKept, st.TracesHeld)
	}
}

func TestMaxWaitDecidesTracesWhoseRootDoesNotEnd(t *testing.T) {
	const maxWait = time.Second
	h := newHarness(t, WithMaxWait(maxWait))
	_, root := h.trace(context.Background(), 2, 1)
	h.advance(maxWait - testTick)
	if got := len(h.rec.Ended()); got != 0 {
		t.Fatalf("exported %d spans before the maximum wait", got)
	}
	h.advance(testTick)
	if got := len(h.rec.Ended()); got != 2 {
		t.Fatalf("exported %d spans at the maximum wait, want 2", got)
	}
	root.End()
	st := h.keep.Stats()
	if st.ExpiredMaxWait != 1 || st.KeptByError != 1 || st.LateSpansKept != 1 {
		t.Errorf("stats = %+v", st)
	}
	if got := len(h.rec.Ended()); got != 3 {
		t.Errorf("root did not follow the decision: %d spans exported", got)
	}
}

func TestMemoryBoundHoldsUnderAFloodOfTraces(t *testing.T) {
	const (
		maxTraces = 64
		maxBytes  = 32 << 10
		traces    = 5_000
		workers   = 4
	)
	// A span of this test, with its trace's share, is well under it.
	maxSpanBytes := 2 * (heldSpanBytes + traceBaseBytes + spanSlotBytes*spanBufCap)
	h := newHarness(t, WithMaxTraces(maxTraces), WithMaxBytes(maxBytes), WithMaxSpansPerTrace(3))

	var wg sync.WaitGroup
	var mu sync.Mutex
	var violations []Stats
	var failing atomic.Uint64
	for w := range workers {
		wg.Go(func() {
			for i := range traces / workers {
				errAt := -1
				if i%100 == w {
					errAt = 0
					failing.Add(1)
				}
				_, root := h.trace(context.Background(), 1+i%4, errAt)
				root.End()
				// The totals may exceed a limit for an instant by the
				// span each other worker is adding.
				if st := h.keep.Stats(); st.TracesHeld > maxTraces+workers || st.BytesHeld > maxBytes+workers*maxSpanBytes {
					mu.Lock()
					violations = append(violations, st)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(violations) > 0 {
		t.Fatalf("bound exceeded %d times, first: %+v", len(violations), violations[0])
	}

	st := h.keep.Stats()
	if st.EvictedMaxTraces+st.EvictedMaxBytes+st.EvictedMaxSpans == 0 {
		t.Errorf("a flood under small limits evicted nothing: %+v", st)
	}
	h.advance(testDelay)
	st = h.keep.Stats()
	decided := st.KeptByError + st.Released + st.RateLimited
	if decided != traces || st.TracesHeld != 0 {
		t.Errorf("decided %d of %d traces, %d still held", decided, traces, st.TracesHeld)
	}
	// Early decisions still see the errors: every failing trace was kept.
	if st.KeptByError != failing.Load() {
		t.Errorf("KeptByError = %d, want %d", st.KeptByError, failing.Load())
	}
}

func TestSpanLimitDecidesTheTraceEarly(t *testing.T) {
	h := newHarness(t, WithMaxSpansPerTrace(4))
	ctx, root := h.trace(context.Background(), 4, 1)
	if got := len(h.rec.Ended()); got != 4 {
		t.Fatalf("exported %d spans at the span limit, want 4", got)
	}
	for range 3 {
		_, c := h.tr.Start(ctx, "after")
		c.End()
	}
	root.End()
	st := h.keep.Stats()
	if st.EvictedMaxSpans != 1 || st.KeptByError != 1 || st.LateSpansKept != 4 || st.TracesHeld != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestMaxKeptPerSecond(t *testing.T) {
	h := newHarness(t, WithMaxKeptPerSecond(2), WithMaxKeptBurst(2))
	failing := func(n int) {
		for range n {
			_, root := h.trace(context.Background(), 1, 0)
			root.End()
		}
	}
	failing(5)
	h.advance(testDelay)
	if st := h.keep.Stats(); st.KeptByError != 2 || st.RateLimited != 3 {
		t.Fatalf("kept/limited = %d/%d, want 2/3", st.KeptByError, st.RateLimited)
	}
	h.advance(time.Second)
	failing(1)
	h.advance(testDelay)
	if st := h.keep.Stats(); st.KeptByError != 3 {
		t.Errorf("after a second, kept = %d, want 3", st.KeptByError)
	}
}

func TestForceFlushDecidesEverythingHeld(t *testing.T) {
	h := newHarness(t)
	_, r1 := h.trace(context.Background(), 2, 0)
	r1.End()
	_, open := h.trace(context.Background(), 1, 0) // root still open
	if err := h.keep.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(h.rec.Ended()); got != 4 {
		t.Errorf("exported %d spans, want 4", got)
	}
	open.End()
	if st := h.keep.Stats(); st.TracesHeld != 0 || st.KeptByError != 2 || st.LateSpansKept != 1 {
		t.Errorf("stats = %+v", st)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.keep.ForceFlush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ForceFlush(canceled) = %v, want context.Canceled", err)
	}
}

func TestShutdown(t *testing.T) {
	tests := []struct {
		name        string
		cancel      bool
		wantErr     error
		wantSpans   int
		wantDropped uint64
	}{
		{name: "flushes what is held", wantSpans: 3},
		{name: "releases what is held when its context is done", cancel: true, wantErr: context.Canceled, wantDropped: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			_, r1 := h.trace(context.Background(), 2, 0)
			r1.End()
			_, r2 := h.trace(context.Background(), 2, -1)
			r2.End()
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			err := h.keep.Shutdown(ctx)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Shutdown = %v, want %v", err, tt.wantErr)
			}
			if got := len(h.rec.Ended()); got != tt.wantSpans {
				t.Errorf("exported %d spans, want %d", got, tt.wantSpans)
			}
			st := h.keep.Stats()
			if st.TracesHeld != 0 || st.SpansHeld != 0 || st.BytesHeld != 0 || st.DroppedShutdown != tt.wantDropped {
				t.Errorf("stats = %+v", st)
			}

			// Spans ending afterwards are dropped and counted.
			_, late := h.tr.Start(context.Background(), "after")
			late.End()
			if got := h.keep.Stats().DroppedShutdown; got != tt.wantDropped {
				t.Errorf("DroppedShutdown = %d after Shutdown; the sampler should drop, not record", got)
			}
			if err := h.keep.Shutdown(context.Background()); err != nil {
				t.Errorf("second Shutdown = %v", err)
			}
		})
	}
}

func TestOnEndAfterShutdownIsCounted(t *testing.T) {
	k := ErrorKeeping(nil, WithRatio(0))
	if err := k.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	span := tracetest.SpanStub{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1},
	})}.Snapshot()
	k.OnEnd(span)
	if got := k.Stats().DroppedShutdown; got != 1 {
		t.Errorf("DroppedShutdown = %d, want 1", got)
	}
}

// viewProcessor hands spans on under its own read-only view, as a wrapping
// processor may.
type viewProcessor struct{ next sdktrace.SpanProcessor }

type view struct{ sdktrace.ReadOnlySpan }

func (p viewProcessor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) { p.next.OnStart(ctx, s) }
func (p viewProcessor) OnEnd(s sdktrace.ReadOnlySpan)                         { p.next.OnEnd(view{s}) }
func (p viewProcessor) Shutdown(ctx context.Context) error                    { return p.next.Shutdown(ctx) }
func (p viewProcessor) ForceFlush(ctx context.Context) error                  { return p.next.ForceFlush(ctx) }

func TestWorksBehindAWrappingProcessor(t *testing.T) {
	clk := clockwork.NewFakeClock()
	rec := tracetest.NewSpanRecorder()
	keep := ErrorKeeping(rec, withClock(clk), withTick(testTick), WithRatio(0), WithDecisionDelay(testDelay))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(viewProcessor{keep}))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	h := &harness{t: t, clock: clk, rec: rec, keep: keep, tp: tp, tr: tp.Tracer("test")}

	_, root := h.trace(context.Background(), 2, 0)
	root.End()
	h.advance(testDelay)
	got := rec.Ended()
	if len(got) != 3 {
		t.Fatalf("exported %d spans, want 3", len(got))
	}
	for _, s := range got {
		if !s.SpanContext().IsSampled() || keptBy(s) != KeptByError {
			t.Errorf("span %q: sampled=%v kept_by=%q", s.Name(), s.SpanContext().IsSampled(), keptBy(s))
		}
	}
}

func TestRescuedSpanTraceState(t *testing.T) {
	tests := []struct {
		name   string
		state  string
		sample bool
		want   string
	}{
		{"rescued span loses th, keeps rv and other vendors", "ot=th:c;rv:abcdef01234567,vendor=x", false, "ot=rv:abcdef01234567,vendor=x"},
		{"rescued span with only th loses the ot entry", "vendor=x,ot=th:c", false, "vendor=x"},
		{"rescued span without ot is unchanged", "vendor=x", false, "vendor=x"},
		{"head-sampled span keeps th", "ot=th:c;rv:abcdef01234567", true, "ot=th:c;rv:abcdef01234567"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ts, err := trace.ParseTraceState(tt.state)
			if err != nil {
				t.Fatal(err)
			}
			parent := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9}, Remote: true, TraceState: ts,
				TraceFlags: trace.TraceFlags(0).WithSampled(tt.sample),
			})
			ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
			_, root := h.trace(ctx, 0, -1)
			root.SetStatus(codes.Error, "x")
			root.End()
			h.advance(testDelay)
			got := h.rec.Ended()
			if len(got) != 1 {
				t.Fatalf("exported %d spans, want 1", len(got))
			}
			if s := got[0].SpanContext().TraceState().String(); s != tt.want {
				t.Errorf("tracestate = %q, want %q", s, tt.want)
			}
			if p := got[0].Parent(); p.IsSampled() != tt.sample {
				t.Errorf("remote parent sampled = %v, want it untouched (%v)", p.IsSampled(), tt.sample)
			}
		})
	}
}

// collectMetrics reads every int64 data point: metric name, then encoded
// attributes, then value.
func collectMetrics(t *testing.T, reader *sdkmetric.ManualReader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			pts := map[string]int64{}
			var dps []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				dps = d.DataPoints
			case metricdata.Gauge[int64]:
				dps = d.DataPoints
			}
			for _, dp := range dps {
				pts[dp.Attributes.Encoded(attribute.DefaultEncoder())] = dp.Value
			}
			out[m.Name] = pts
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	h := newHarness(t, WithMeterProvider(mp))
	_, r1 := h.trace(context.Background(), 1, 0)
	r1.End()
	_, r2 := h.trace(context.Background(), 1, -1)
	r2.End()

	collect := func() map[string]map[string]int64 { return collectMetrics(t, reader) }
	got := collect()
	if v := got[metricTraces][""]; v != 2 {
		t.Errorf("%s = %d, want 2", metricTraces, v)
	}
	h.advance(testDelay)
	got = collect()
	wants := []struct {
		metric, attrs string
		want          int64
	}{
		{metricDecided, "tracekeeper.sampler.decision=error", 1},
		{metricDecided, "tracekeeper.sampler.decision=released", 1},
		{metricTraces, "", 0},
		{metricRescued, "", 2},
		{metricReleased, "", 2},
	}
	for _, w := range wants {
		if v, ok := got[w.metric][w.attrs]; !ok || v != w.want {
			t.Errorf("%s{%s} = %d (present %v), want %d", w.metric, w.attrs, v, ok, w.want)
		}
	}
}

func TestRatioFromEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		sampler string
		arg     string
		want    float64
	}{
		{"ratio sampler", "parentbased_traceidratio", "0.25", 0.25},
		{"plain ratio sampler", "traceidratio", " 0.5 ", 0.5},
		{"other sampler ignored", "always_on", "0.25", DefaultRatio},
		{"no argument", "traceidratio", "", DefaultRatio},
		{"malformed ignored", "traceidratio", "half", DefaultRatio},
		{"out of range ignored", "traceidratio", "2", DefaultRatio},
		{"NaN ignored", "traceidratio", "NaN", DefaultRatio},
		{"nan ignored", "parentbased_traceidratio", "nan", DefaultRatio},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{envSampler: tt.sampler, envSamplerArg: tt.arg}
			c := config{ratio: DefaultRatio}.fromEnv(func(k string) string { return env[k] })
			if c.ratio != tt.want {
				t.Errorf("ratio = %v, want %v", c.ratio, tt.want)
			}
		})
	}
	t.Run("option wins", func(t *testing.T) {
		t.Setenv(envSampler, "traceidratio")
		t.Setenv(envSamplerArg, "0.25")
		if c := newConfig([]Option{WithRatio(0.75)}); c.ratio != 0.75 {
			t.Errorf("ratio = %v, want 0.75", c.ratio)
		}
		if c := newConfig(nil); c.ratio != 0.25 {
			t.Errorf("ratio = %v, want 0.25 from the environment", c.ratio)
		}
		if c := newConfig([]Option{WithRatio(math.NaN())}); c.ratio != 0.25 {
			t.Errorf("WithRatio(NaN): ratio = %v, want 0.25 from the environment", c.ratio)
		}
	})
}

// A NaN ratio is ignored: the head samples at the default ratio, not every
// trace as sdktrace.TraceIDRatioBased(NaN) would.
func TestNaNRatioIgnored(t *testing.T) {
	keep := ErrorKeeping(nil, WithRatio(math.NaN()), WithMeterProvider(noopmetric.NewMeterProvider()))
	t.Cleanup(func() { _ = keep.Shutdown(context.Background()) })
	ids := newSeededIDs(1)
	sampled := 0
	const n = 10000
	for range n {
		tid, _ := ids.NewIDs(context.Background())
		r := keep.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: tid, Name: "op"})
		if r.Decision == sdktrace.RecordAndSample {
			sampled++
		}
	}
	if sampled > n/10 {
		t.Fatalf("sampled %d of %d at the head, want about %v of them", sampled, n, DefaultRatio)
	}
}

// seededIDs generates the same trace and span IDs for every provider built
// with the same seed, so two pipelines see the same head decisions.
type seededIDs struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newSeededIDs(seed uint64) *seededIDs {
	return &seededIDs{rng: rand.New(rand.NewPCG(seed, seed))}
}

func (g *seededIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var tid trace.TraceID
	var sid trace.SpanID
	for i := range tid {
		tid[i] = byte(g.rng.Uint32())
	}
	for i := range sid {
		sid[i] = byte(g.rng.Uint32())
	}
	return tid, sid
}

func (g *seededIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var sid trace.SpanID
	for i := range sid {
		sid[i] = byte(g.rng.Uint32())
	}
	return sid
}

// errorTraces counts the distinct failing traces among exported spans.
func errorTraces(spans []sdktrace.ReadOnlySpan) int {
	seen := map[trace.TraceID]bool{}
	for _, s := range spans {
		if s.Status().Code == codes.Error {
			seen[s.SpanContext().TraceID()] = true
		}
	}
	return len(seen)
}

func TestErrorTracesKeptAgainstStock(t *testing.T) {
	const (
		ratio  = 0.05
		traces = 20_000
		every  = 100 // 1% of traces fail
	)
	run := func(tp *sdktrace.TracerProvider) {
		tr := tp.Tracer("test")
		for i := range traces {
			ctx, root := tr.Start(context.Background(), "root")
			for j := range 3 {
				_, c := tr.Start(ctx, "child")
				if i%every == 0 && j == 1 {
					c.SetStatus(codes.Error, "boom")
				}
				c.End()
			}
			root.End()
		}
	}

	stockRec := tracetest.NewSpanRecorder()
	stock := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithSpanProcessor(stockRec), sdktrace.WithIDGenerator(newSeededIDs(7)))
	run(stock)
	if err := stock.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	clk := clockwork.NewFakeClock()
	rec := tracetest.NewSpanRecorder()
	keep := ErrorKeeping(rec, withClock(clk), WithRatio(ratio), WithMaxKeptPerSecond(0))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(keep),
		sdktrace.WithIDGenerator(newSeededIDs(7)))
	run(tp)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	const failing = traces / every
	stockKept, kept := errorTraces(stockRec.Ended()), errorTraces(rec.Ended())
	t.Logf("error traces kept: stock ParentBased(TraceIDRatioBased(%.2f)) %d/%d (%.1f%%), ErrorKeeping %d/%d (%.1f%%)",
		ratio, stockKept, failing, 100*float64(stockKept)/failing, kept, failing, 100*float64(kept)/failing)
	if kept != failing {
		t.Errorf("ErrorKeeping kept %d of %d failing traces, want all", kept, failing)
	}
	if stockKept >= kept {
		t.Errorf("stock kept %d failing traces, ErrorKeeping %d", stockKept, kept)
	}
	// Head decisions are the stock ones: the head-sampled spans are the same.
	stockHead, head := len(stockRec.Ended()), 0
	for _, s := range rec.Ended() {
		if keptBy(s) == KeptByHead {
			head++
		}
	}
	if head != stockHead {
		t.Errorf("head-sampled spans: %d, stock %d", head, stockHead)
	}
}

// countingProcessor counts the unsampled spans it forwards.
type countingProcessor struct {
	next     sdktrace.SpanProcessor
	unsample atomic.Uint64
}

func (p *countingProcessor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	p.next.OnStart(ctx, s)
}

func (p *countingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		p.unsample.Add(1)
	}
	p.next.OnEnd(s)
}
func (p *countingProcessor) Shutdown(ctx context.Context) error   { return p.next.Shutdown(ctx) }
func (p *countingProcessor) ForceFlush(ctx context.Context) error { return p.next.ForceFlush(ctx) }

// Every recorded-only span is accounted for exactly once, whatever races
// between span ends, sweeps, early decisions and Shutdown.
func TestEverySpanIsAccountedForUnderConcurrency(t *testing.T) {
	clk := clockwork.NewFakeClock()
	rec := tracetest.NewSpanRecorder()
	keep := ErrorKeeping(rec, withClock(clk), withTick(testTick), WithRatio(0),
		WithDecisionDelay(testDelay), WithMaxTraces(128), WithMaxSpansPerTrace(4),
		WithDecisionCacheSize(64), WithMaxKeptPerSecond(0))
	counter := &countingProcessor{next: keep}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(counter))
	tr := tp.Tracer("test")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var started atomic.Uint64
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, root := tr.Start(context.Background(), "root")
				for j := range 1 + (i+w)%6 {
					_, c := tr.Start(ctx, "child")
					if (i+j)%50 == 0 {
						c.SetStatus(codes.Error, "x")
					}
					c.End()
				}
				root.End()
				started.Add(1)
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				clk.Advance(testTick)
			}
		}
	})
	// Let the workers produce a fair amount before shutting down under them.
	for started.Load() < 2_000 {
		runtime.Gosched()
	}
	if err := keep.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	_ = tp.Shutdown(context.Background())

	st := keep.Stats()
	ended := counter.unsample.Load()
	accounted := st.SpansRescued + st.SpansReleased + st.DroppedShutdown
	if accounted != ended || st.SpansHeld != 0 || st.TracesHeld != 0 {
		t.Errorf("%d recorded-only spans ended; rescued %d + released %d + dropped %d = %d; held %d",
			ended, st.SpansRescued, st.SpansReleased, st.DroppedShutdown, accounted, st.SpansHeld)
	}
	if got := uint64(len(rec.Ended())); got != st.SpansRescued {
		t.Errorf("downstream got %d spans, SpansRescued = %d", got, st.SpansRescued)
	}
}

// The default cap keeps a burst of failures whole: 386 failing traces in
// 0.3 s, as an outage starts, are all kept.
func TestDefaultCapKeepsABurst(t *testing.T) {
	const (
		traces = 386
		over   = 300 * time.Millisecond
	)
	h := newHarness(t, WithMaxKeptPerSecond(DefaultMaxKeptPerSecond))
	for i := range traces {
		_, root := h.trace(context.Background(), 1, 0)
		root.End()
		if i%10 == 9 {
			h.advance(over / (traces / 10))
		}
	}
	h.advance(testDelay)
	st := h.keep.Stats()
	t.Logf("burst of %d failing traces in %v at the default cap: kept %d, rate limited %d",
		traces, over, st.KeptByError, st.RateLimited)
	if st.KeptByError != traces || st.RateLimited != 0 {
		t.Errorf("kept %d, rate limited %d; want all %d kept", st.KeptByError, st.RateLimited, traces)
	}
	// Past the burst, the cap holds.
	for range 2 * DefaultKeptBurstSeconds * DefaultMaxKeptPerSecond {
		_, root := h.trace(context.Background(), 1, 0)
		root.End()
	}
	h.advance(testDelay)
	if st := h.keep.Stats(); st.RateLimited == 0 {
		t.Errorf("a sustained flood was not capped: %+v", st)
	}
}
