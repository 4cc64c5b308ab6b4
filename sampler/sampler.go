package sampler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
	"github.com/tracekeeper/tracekeeper/internal/selfobs"
)

// ErrorKeeper is a head sampler and a tail span processor in one value. As
// an sdktrace.Sampler it asks its head (by default a trace-ID ratio that
// honours a remote parent's sampled flag) and answers RecordOnly where the
// head would drop. As an sdktrace.SpanProcessor it passes sampled spans to
// the next processor untouched, holds recorded-only spans per trace, and
// when the trace is decided hands the spans of kept traces to the next
// processor as sampled read-only views.
//
// Create it with ErrorKeeping and register it both as the provider's
// sampler and as one of its span processors (TracerProviderOptions). The
// zero value is not usable. All methods are safe for concurrent use;
// OnStart and OnEnd never block; ForceFlush and Shutdown return by their
// context's deadline.
type ErrorKeeper struct {
	cfg     config
	next    sdktrace.SpanProcessor
	head    sdktrace.Sampler
	ratio   sdktrace.Sampler // the default head's root sampler; nil with WithHead
	desc    string
	limiter *rate.Limiter // nil: no cap

	shards    []shard
	shardBits uint
	held      totals
	evictNext atomic.Uint32 // rotates the shard scan of evictOldest

	stopped atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	workers sync.WaitGroup // ForceFlush's and Shutdown's deciding goroutines
	warnMu  sync.Mutex
	warned  []<-chan struct{} // closed once each report of warn is written

	// hand counts the spans detached for a decision and not yet handed
	// on, and holds cutBit once Shutdown's context has ended: from then
	// on nothing is handed downstream, and the spans in hand are dropped
	// and counted. A span leaves hand before it is handed on, in the same
	// atomic step that finds the cutoff not set, so the count at the
	// cutoff is exactly the spans that will be dropped.
	hand atomic.Int64

	stats   counters
	metrics *selfobs.Registration

	// Wiring checks: asked is set by ShouldSample, started by OnStart;
	// unstarted counts recorded-only answers given before any OnStart.
	asked, started atomic.Bool
	unstarted      atomic.Int64
	warnSampler    sync.Once
	warnProcessor  sync.Once
}

var (
	_ sdktrace.Sampler       = (*ErrorKeeper)(nil)
	_ sdktrace.SpanProcessor = (*ErrorKeeper)(nil)
)

// ErrorKeeping returns an ErrorKeeper that hands the spans it keeps to next,
// usually sdktrace.NewBatchSpanProcessor around an exporter:
//
//	keep := sampler.ErrorKeeping(sdktrace.NewBatchSpanProcessor(exp), sampler.WithRatio(0.05))
//	tp := sdktrace.NewTracerProvider(keep.TracerProviderOptions()...)
//
// It starts one background goroutine, stopped by Shutdown. A nil next
// discards every span.
func ErrorKeeping(next sdktrace.SpanProcessor, opts ...Option) *ErrorKeeper {
	cfg := newConfig(opts)
	if next == nil {
		next = discard{}
	}
	k := &ErrorKeeper{
		cfg:  cfg,
		next: next,
		head: cfg.head,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if k.head == nil {
		k.ratio = sdktrace.TraceIDRatioBased(cfg.ratio)
		k.head = sdktrace.ParentBased(k.ratio)
	}
	k.desc = fmt.Sprintf("ErrorKeeping{head:%s,delay:%s,maxWait:%s}",
		k.head.Description(), cfg.decisionDelay, cfg.maxWait)
	if cfg.maxKeptPerSecond > 0 {
		burst := cfg.keptBurst
		if burst == 0 {
			burst = max(int(DefaultKeptBurstSeconds*cfg.maxKeptPerSecond), 1)
		}
		k.limiter = rate.NewLimiter(rate.Limit(cfg.maxKeptPerSecond), burst)
	}
	k.initShards()
	k.metrics = k.registerMetrics()

	timer := cfg.clock.NewTimer(cfg.tick)
	go k.run(timer)
	return k
}

// Description implements sdktrace.Sampler.
func (k *ErrorKeeper) Description() string { return k.desc }

// headAttrs is returned with every head-sampled decision. Its capacity equals
// its length, so nobody appending to it can write into it.
var headAttrs = []attribute.KeyValue{KeptByKey.String(KeptByHead)}

// ShouldSample implements sdktrace.Sampler. A span with a local parent
// follows it: sampled if the parent is, recorded only if not, so that a
// trace is sampled or held whole in this process. For a new trace or a
// remote parent it asks the head (WithHead; by default
// sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))): what the head
// samples is returned as the head returned it, its tracestate included,
// with KeptByKey=head added to its attributes; where the head drops, the
// span is recorded without being sampled (RecordOnly), with the head's
// tracestate, so that the processor side can still keep its trace. After
// Shutdown it drops instead.
func (k *ErrorKeeper) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	if psc.IsValid() && !psc.IsRemote() {
		ts := psc.TraceState()
		switch {
		case psc.IsSampled():
			return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Attributes: headAttrs, Tracestate: ts}
		case k.stopped.Load():
			return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: ts}
		default:
			return sdktrace.SamplingResult{Decision: sdktrace.RecordOnly, Tracestate: ts}
		}
	}
	if !k.asked.Load() {
		k.asked.Store(true)
	}
	var r sdktrace.SamplingResult
	switch {
	case k.ratio == nil:
		r = k.head.ShouldSample(p)
	case psc.IsValid():
		// The default head, ParentBased(TraceIDRatioBased), without
		// looking the parent up again: a remote parent's flag decides.
		r.Tracestate = psc.TraceState()
		if psc.IsSampled() {
			r.Decision = sdktrace.RecordAndSample
		}
	default:
		r = k.ratio.ShouldSample(p)
	}
	switch {
	case r.Decision == sdktrace.RecordAndSample:
		k.stats.headSampled.Add(1)
		r.Attributes = withKeptByHead(r.Attributes)
		return r
	case k.stopped.Load():
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: r.Tracestate}
	case r.Decision == sdktrace.RecordOnly:
		return r
	default:
		if !k.started.Load() && k.unstarted.Add(1) == wiringGrace {
			k.warnProcessor.Do(func() {
				k.warn("sampler: the ErrorKeeper is the provider's sampler but not one of its span processors: " +
					"the spans it records for the tail are never kept; register it with TracerProviderOptions")
			})
		}
		return sdktrace.SamplingResult{Decision: sdktrace.RecordOnly, Tracestate: r.Tracestate}
	}
}

// wiringGrace is how many recorded-only answers ShouldSample gives before
// it warns that OnStart was never called: spans started concurrently may
// all be sampled before the first of them reaches the processors.
const wiringGrace = 1000

// warn reports a wiring mistake to the logger, or to the OpenTelemetry
// error handler when there is none, without waiting for either; Shutdown
// waits for the reports, as long as its ctx allows.
func (k *ErrorKeeper) warn(msg string) {
	done := selfobs.Warn(k.cfg.logger, msg, nil)
	k.warnMu.Lock()
	k.warned = append(k.warned, done)
	k.warnMu.Unlock()
}

// awaitWarnings waits until the reports warn made are written, or until
// ctx is done.
func (k *ErrorKeeper) awaitWarnings(ctx context.Context) error {
	k.warnMu.Lock()
	warned := k.warned
	k.warnMu.Unlock()
	for _, done := range warned {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// TracerProviderOptions returns the two registrations an ErrorKeeper
// needs, as its provider's sampler and as one of its span processors, so
// that neither can be forgotten:
//
//	tp := sdktrace.NewTracerProvider(append(keep.TracerProviderOptions(),
//		sdktrace.WithResource(res))...)
//
// Register no other sampler after them: the last WithSampler wins.
func (k *ErrorKeeper) TracerProviderOptions() []sdktrace.TracerProviderOption {
	return []sdktrace.TracerProviderOption{sdktrace.WithSampler(k), sdktrace.WithSpanProcessor(k)}
}

// withKeptByHead returns a head's attributes with KeptByKey=head added, in
// a new slice when the head returned some: the head may reuse its own.
func withKeptByHead(attrs []attribute.KeyValue) []attribute.KeyValue {
	if len(attrs) == 0 {
		return headAttrs
	}
	out := make([]attribute.KeyValue, len(attrs), len(attrs)+1)
	copy(out, attrs)
	return append(out, headAttrs[0])
}

// OnStart implements sdktrace.SpanProcessor. It forwards every recording
// span to the next processor, so that processors which annotate spans at
// start see the rescued ones too.
func (k *ErrorKeeper) OnStart(parent context.Context, s sdktrace.ReadWriteSpan) {
	if !k.started.Load() {
		k.started.Store(true)
		if !k.asked.Load() {
			k.warnSampler.Do(func() {
				k.warn("sampler: the ErrorKeeper is a span processor of a provider whose sampler it is not: " +
					"it keeps nothing the provider's sampler drops; register it with TracerProviderOptions")
			})
		}
	}
	if k.stopped.Load() {
		return
	}
	k.next.OnStart(parent, s)
}

// OnEnd implements sdktrace.SpanProcessor. A sampled span goes to the next
// processor at once. A recorded-only span is held with its trace, or, when
// its trace was already decided, follows that decision. It never waits:
// when a memory limit is reached it decides the traces that make room, the
// oldest first, itself.
func (k *ErrorKeeper) OnEnd(s sdktrace.ReadOnlySpan) {
	// The SDK's record is read in place; any other span through its
	// methods, all of them only if it is held.
	known := mirror.KnownSpan(s)
	var sc trace.SpanContext
	if known != nil {
		sc = *known.SpanContext()
	} else {
		sc = s.SpanContext()
	}
	if sc.IsSampled() {
		switch {
		case k.stopped.Load():
		case k.cfg.dryRun:
			k.next.OnEnd(newMarkedSpan(s, dryRunHeadAttrs))
		default:
			k.next.OnEnd(s)
		}
		return
	}
	id := sc.TraceID()
	sh := k.shardFor(id)
	d := known
	if d == nil {
		var data mirror.Span
		d = dataOf(s, &data)
	}
	status := d.Status()
	h := heldSpans.get()
	h.fill(d, sc, status)
	size := h.size
	isRoot := !h.parent.IsValid() || h.parent.IsRemote()

	var buf [2]victim
	victims := buf[:0]

	sh.mu.Lock()
	if k.stopped.Load() {
		sh.mu.Unlock()
		heldSpans.put(h)
		k.stats.droppedShutdown.Add(1)
		return
	}
	var now time.Time // read once, when needed
	e := sh.traces[id]
	if e == nil {
		if o, ok := sh.decided[id]; ok {
			sh.mu.Unlock()
			heldSpans.put(h)
			k.late(s, o)
			return
		}
		now = k.cfg.clock.Now()
		e = newEntry(id, now)
		size += traceBaseBytes
		sh.traces[id] = e
		sh.add(e)
	}
	if e.buf == nil {
		e.buf = spanBufs.get()
		size += spanSlotBytes * int64(cap(*e.buf))
	}
	slots := cap(*e.buf)
	*e.buf = append(*e.buf, h)
	size += spanSlotBytes * int64(cap(*e.buf)-slots)
	if status.Code == codes.Error {
		e.failed = true
	}
	sh.grow(e, size)
	if e.state == statePending {
		if isRoot && !e.rootEnded {
			e.rootEnded = true
			if now.IsZero() {
				now = k.cfg.clock.Now()
			}
			e.due = now.Add(k.cfg.decisionDelay)
			sh.root.pushBack(e)
		}
		if len(*e.buf) >= k.cfg.maxSpansPerTrace {
			victims = append(victims, sh.detach(e))
			k.stats.evictedMaxSpans.Add(1)
		}
	}
	sh.mu.Unlock()

	// The limits bound the totals: the oldest traces of any shard make
	// room. Between the insertion above and the evictions here the totals
	// may exceed a limit by what other goroutines are adding at the same
	// moment.
	for k.held.traces.Load() > int64(k.cfg.maxTraces) {
		v, ok := k.evictOldest()
		if !ok {
			break
		}
		victims = append(victims, v)
		k.stats.evictedMaxTraces.Add(1)
	}
	for k.held.bytes.Load() > k.cfg.maxBytes {
		v, ok := k.evictOldest()
		if !ok {
			break
		}
		victims = append(victims, v)
		k.stats.evictedMaxBytes.Add(1)
	}
	if len(victims) > 0 {
		k.decide(victims)
	}
}

// late hands on, or lets go, a span whose trace was already decided.
func (k *ErrorKeeper) late(s sdktrace.ReadOnlySpan, o outcome) {
	if o.kept() {
		k.stats.lateKept.Add(1)
		k.stats.spansRescued.Add(1)
	} else {
		k.stats.lateReleased.Add(1)
		k.stats.spansReleased.Add(1)
	}
	if o.kept() || k.cfg.dryRun {
		k.next.OnEnd(newMarkedSpan(s, k.marks(o)))
	}
}

// marks are the attributes added to the spans of a trace decided o: the
// reason it was kept, or in dry run what would have been done.
func (k *ErrorKeeper) marks(o outcome) []attribute.KeyValue {
	if k.cfg.dryRun {
		return dryRunAttrs[o]
	}
	return keptByAttrs[o]
}

// decide evaluates detached traces, records their decisions and hands the
// spans of kept ones downstream. It runs without any lock of this package.
func (k *ErrorKeeper) decide(victims []victim) {
	k.hand.Add(spansOf(victims))
	for i := range victims {
		if k.cut() {
			k.hand.Add(-spansOf(victims[i:]))
			k.release(victims[i:])
			return
		}
		v := &victims[i]
		o := k.evaluate(v)
		if o.kept() && k.limiter != nil && !k.limiter.AllowN(k.cfg.clock.Now(), 1) {
			o = outcomeRateLimited
		}
		sh := k.shardFor(v.e.id)
		sh.mu.Lock()
		extra := sh.finish(v.e, o, !k.stopped.Load())
		sh.mu.Unlock()

		k.stats.decided[o].Add(1)
		k.emit(*v.spans, o)
		if extra != nil {
			k.hand.Add(int64(len(*extra)))
			k.emit(*extra, o)
			spanBufs.put(extra)
		}
		spanBufs.put(v.spans)
		entries.put(v.e)
		*v = victim{}
	}
}

// spansOf counts the spans of detached traces.
func spansOf(victims []victim) int64 {
	var n int64
	for i := range victims {
		if victims[i].spans != nil {
			n += int64(len(*victims[i].spans))
		}
	}
	return n
}

// release lets detached traces go without evaluating them, at Shutdown
// when its context is done, counts them dropped and returns the number of
// spans let go.
func (k *ErrorKeeper) release(victims []victim) uint64 {
	var n uint64
	for i := range victims {
		v := &victims[i]
		sh := k.shardFor(v.e.id)
		sh.mu.Lock()
		extra := sh.finish(v.e, outcomeReleased, false)
		sh.mu.Unlock()
		if v.spans != nil {
			n += uint64(len(*v.spans))
			k.recycle(*v.spans)
		}
		if extra != nil {
			n += uint64(len(*extra))
			k.recycle(*extra)
			spanBufs.put(extra)
		}
		spanBufs.put(v.spans)
		entries.put(v.e)
		*v = victim{}
	}
	k.stats.droppedShutdown.Add(n)
	return n
}

// emit hands the spans of a trace decided o downstream, or lets them go.
// In dry run every span is handed on, marked with the decision. The
// copies handed on belong to the downstream from then on; the others are
// recycled.
func (k *ErrorKeeper) emit(spans []*heldSpan, o outcome) {
	kept := o.kept()
	if !kept && !k.cfg.dryRun {
		if !k.take(int64(len(spans))) {
			// Past the cutoff: counted as dropped, as Shutdown said.
			k.hand.Add(-int64(len(spans)))
			k.stats.droppedShutdown.Add(uint64(len(spans)))
			k.recycle(spans)
			return
		}
		k.stats.spansReleased.Add(uint64(len(spans)))
		k.recycle(spans)
		return
	}
	marks := k.marks(o)
	for i, s := range spans {
		if !k.take(1) {
			rest := len(spans) - i
			k.hand.Add(-int64(rest))
			k.stats.droppedShutdown.Add(uint64(rest))
			k.recycle(spans[i:])
			return
		}
		if kept {
			k.stats.spansRescued.Add(1)
		} else {
			k.stats.spansReleased.Add(1)
		}
		k.next.OnEnd(newMarkedSpan(s, marks))
	}
}

// cutBit marks ErrorKeeper.hand once Shutdown's deadline has passed.
const cutBit = 1 << 62

// cut reports whether Shutdown's deadline has passed.
func (k *ErrorKeeper) cut() bool { return k.hand.Load()&cutBit != 0 }

// inHand returns the number of spans detached for a decision and not yet
// handed on.
func (k *ErrorKeeper) inHand() int64 { return k.hand.Load() &^ cutBit }

// take takes n spans out of hand to hand them on or release them, and
// reports whether it did: not once Shutdown's deadline has passed.
func (k *ErrorKeeper) take(n int64) bool {
	for {
		w := k.hand.Load()
		if w&cutBit != 0 {
			return false
		}
		if k.hand.CompareAndSwap(w, w-n) {
			return true
		}
	}
}

// cutOff marks Shutdown's deadline as passed and returns the number of
// spans then in hand, all of which are dropped.
func (k *ErrorKeeper) cutOff() int64 { return k.hand.Or(cutBit) &^ cutBit }

// recycle pools the copies of spans that nothing will read again. With a
// predicate they are left to the collector instead: the predicate was
// handed them and may have kept one.
func (k *ErrorKeeper) recycle(spans []*heldSpan) {
	if k.cfg.predicate != nil {
		return
	}
	for _, h := range spans {
		heldSpans.put(h)
	}
}

// evaluate applies the keep rules in order to a detached trace: error
// (noted by OnEnd as the spans were held, so the spans are not read again
// here), latency, predicate.
func (k *ErrorKeeper) evaluate(v *victim) outcome {
	if v.failed {
		return outcomeError
	}
	spans := *v.spans
	if k.cfg.latency > 0 && len(spans) > 0 {
		first, last := spans[0].StartTime(), spans[0].EndTime()
		for _, s := range spans[1:] {
			if t := s.StartTime(); t.Before(first) {
				first = t
			}
			if t := s.EndTime(); t.After(last) {
				last = t
			}
		}
		if last.Sub(first) >= k.cfg.latency {
			return outcomeLatency
		}
	}
	if k.cfg.predicate != nil {
		for _, s := range spans {
			if k.cfg.predicate(s) {
				return outcomePredicate
			}
		}
	}
	return outcomeReleased
}

// run is the background goroutine: on every tick it decides the traces
// whose decision delay or maximum wait has passed.
func (k *ErrorKeeper) run(timer clockwork.Timer) {
	defer close(k.done)
	var batch []victim
	for {
		select {
		case <-k.stop:
			timer.Stop()
			return
		case <-timer.Chan():
			batch = k.sweep(k.cfg.clock.Now(), batch[:0])
			timer.Reset(k.cfg.tick)
		}
	}
}

// sweep decides, shard by shard, the traces due at now.
func (k *ErrorKeeper) sweep(now time.Time, batch []victim) []victim {
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		for e := sh.root.head; e != nil && !e.due.After(now); e = sh.root.head {
			batch = append(batch, sh.detach(e))
		}
		for e := sh.age.head; e != nil && !e.firstSeen.Add(k.cfg.maxWait).After(now); e = sh.age.head {
			batch = append(batch, sh.detach(e))
			k.stats.expiredMaxWait.Add(1)
		}
		sh.mu.Unlock()
		k.decide(batch)
		batch = batch[:0]
	}
	return batch
}

// drain detaches every held trace of one shard.
func (k *ErrorKeeper) drain(sh *shard, batch []victim) []victim {
	sh.mu.Lock()
	for e := sh.age.head; e != nil; e = sh.age.head {
		batch = append(batch, sh.detach(e))
	}
	sh.mu.Unlock()
	return batch
}

// ForceFlush decides every held trace now, with the spans at hand, hands
// the kept ones downstream and then flushes the next processor.
//
// It returns by ctx's deadline, give or take the time to take the shard
// locks, even when the downstream is slow: the deciding runs on a
// goroutine of its own, and when ctx ends first ForceFlush returns an
// error that wraps ctx.Err() and says what was left. Traces not reached
// stay held for their usual decision; the spans of traces already kept go
// on being handed downstream by that goroutine, which Shutdown waits for.
func (k *ErrorKeeper) ForceFlush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sampler: force flush: %w", err)
	}
	done := make(chan struct{})
	k.workers.Add(1)
	go func() {
		defer k.workers.Done()
		defer close(done)
		k.decideAll(ctx)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		st := k.Stats()
		return fmt.Errorf("sampler: force flush: %w: %d traces (%d spans) still held, %d spans in hand being decided",
			ctx.Err(), st.TracesHeld, st.SpansHeld, k.inHand())
	}
	if err := await(ctx, k.next.ForceFlush); err != nil {
		return fmt.Errorf("sampler: force flush next processor: %w", err)
	}
	return nil
}

// decideAll decides the traces of every shard in turn, stopping before
// the next shard once ctx is done.
func (k *ErrorKeeper) decideAll(ctx context.Context) {
	var batch []victim
	for i := range k.shards {
		if ctx.Err() != nil {
			return
		}
		batch = k.drain(&k.shards[i], batch[:0])
		k.decide(batch)
	}
}

// releaseAll releases every held trace undecided and returns the number
// of spans let go.
func (k *ErrorKeeper) releaseAll() uint64 {
	var n uint64
	var batch []victim
	for i := range k.shards {
		batch = k.drain(&k.shards[i], batch[:0])
		n += k.release(batch)
	}
	return n
}

// await runs f on its own goroutine and returns its error, or ctx's when
// ctx ends first, so that a next processor that ignores its context does
// not hold the caller past the deadline.
func await(ctx context.Context, f func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- f(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		select {
		case err := <-errc:
			return err
		default:
			return ctx.Err()
		}
	}
}

// Shutdown stops the background goroutine, decides every held trace as
// ForceFlush does, shuts the next processor down, and waits, as long as
// ctx allows, for the logger to write the reports of wiring mistakes
// (which are written by a goroutine of their own, so that no span waits on
// the logger).
//
// It returns by ctx's deadline, give or take the time to release what is
// held, even when the downstream is slow. When ctx ends first, nothing
// more is handed downstream: the traces still held are released
// undecided, kept spans not yet handed on are dropped as the downstream
// returns, and both are counted (Stats.DroppedShutdown); the error wraps
// ctx.Err() and says how many. Spans ending afterwards are dropped and
// counted the same way. Only the first call does the work; later calls
// wait for the background goroutine and return nil.
func (k *ErrorKeeper) Shutdown(ctx context.Context) error {
	first := false
	var err error
	k.once.Do(func() {
		first = true
		err = k.shutdown(ctx)
	})
	if first {
		return err
	}
	select {
	case <-k.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sampler: shutdown: %w", ctx.Err())
	}
}

func (k *ErrorKeeper) shutdown(ctx context.Context) error {
	k.stopped.Store(true)
	close(k.stop)

	done := make(chan struct{})
	k.workers.Add(1)
	go func() {
		defer k.workers.Done()
		defer close(done)
		select {
		case <-k.done:
		case <-ctx.Done():
			return
		}
		k.decideAll(ctx)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}

	var errs []error
	if err := ctx.Err(); err != nil {
		inHand := k.cutOff()
		released := k.releaseAll()
		errs = append(errs, fmt.Errorf("sampler: shutdown: %w: %d held spans released undecided, %d spans in hand dropped as the downstream returns",
			err, released, inHand))
	}
	for i := range k.shards {
		k.shards[i].clear()
	}
	// Past the deadline the next processor gets the same done context; its
	// own report of that deadline would say nothing new.
	if err := await(ctx, k.next.Shutdown); err != nil && (ctx.Err() == nil || !errors.Is(err, ctx.Err())) {
		errs = append(errs, fmt.Errorf("sampler: shutdown next processor: %w", err))
	}
	k.metrics.Retire()
	if err := k.awaitWarnings(ctx); err != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("sampler: shutdown: waiting for the logger: %w", err))
	}
	return errors.Join(errs...)
}

// discard is the next processor when none is given.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }
