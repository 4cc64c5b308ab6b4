package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tracekeeper/tracekeeper/internal/fallback"
	"github.com/tracekeeper/tracekeeper/internal/ledger"
	"github.com/tracekeeper/tracekeeper/internal/limiter"
	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
	"github.com/tracekeeper/tracekeeper/internal/retry"
	"github.com/tracekeeper/tracekeeper/internal/sender"
	"github.com/tracekeeper/tracekeeper/internal/spool"
	"github.com/tracekeeper/tracekeeper/internal/transport"
	"github.com/tracekeeper/tracekeeper/queue"
)

// ErrShutdown is returned by ExportSpans after Shutdown.
var ErrShutdown = errors.New("exporter: shut down")

// userAgent identifies the exporter to backends.
const userAgent = "tracekeeper-exporter/0.1"

// shutdownSlack bounds how long Shutdown may take past its deadline: the
// time for the workers to abandon what they hold and close the books.
const shutdownSlack = 100 * time.Millisecond

// dropWriterBudget bounds the dropped requests waiting for the
// dropped-spans writer.
const dropWriterBudget = 4 << 20

// Exporter is a non-blocking OTLP span exporter for
// sdktrace.WithBatcher.
//
// ExportSpans encodes the spans, puts them on a bounded queue and returns
// without waiting on the network. A dispatcher takes from the queue,
// combines queued batches into requests of up to the maximum request size,
// and sends them concurrently, as many as an adaptive limit allows, with
// retries. When the memory budget is full the spans go to the disk spool
// (WithSpool) or are dropped and counted; the caller never waits unless
// WithBlockOnFull asks it to.
//
// Every span given to ExportSpans is accounted for: Stats reports how many
// were exported, dropped (by reason), queued and in flight, and the same
// figures are published as metrics. Drops and failures are reported to the
// fallback logger from a goroutine of its own: neither ExportSpans nor the
// senders nor Shutdown ever wait on the logger or the dropped-spans writer.
//
// An Exporter is safe for concurrent use. Its methods never panic (those
// of a nil or zero Exporter, which New did not make, do nothing and return
// an error saying so), and New never fails: an invalid configuration is logged at once and makes every
// ExportSpans return the error, counting the spans as dropped with reason
// config.
type Exporter struct {
	cfg    config
	cfgErr error

	books   ledger.Ledger
	flushes tracker
	queue   *queue.Queue[entry]
	client  transport.Client
	send    *sender.Sender
	limit   *limiter.Limiter
	report  *fallback.Reporter
	metrics *selfMetrics
	outage  outage
	disk    *disk // nil without a spool
	// queueReady is signalled when a batch is queued, for the
	// dispatchers, which wait for work without a slot.
	queueReady chan struct{}
	// requests holds a token for each request taken from the queue or
	// the spool until it ends, retry waits included. The limit bounds
	// the attempts in flight; this bounds the requests, so that a
	// backend refusing every attempt at once cannot have every queued
	// batch leave to wait for a retry, each on a goroutine of its own.
	requests chan struct{}
	// reserveMax bounds what reserve sets aside; reserved is what it
	// last set.
	reserveMax int64
	reserved   atomic.Int64
	// encoding is the encoder kept for the next call: the
	// BatchSpanProcessor calls from one goroutine, and a sync.Pool alone
	// loses its encoder, with the arena and caches it has grown, at every
	// other garbage collection, and whenever the caller moves to another
	// P. Concurrent calls take theirs from encPool.
	encoding atomic.Pointer[encoding]
	encPool  sync.Pool // *encoding

	stopping atomic.Bool
	// gaveUp: during Shutdown, a request exhausted its retries; what is
	// still queued is not tried (see dispatch).
	gaveUp   atomic.Bool
	stopOnce sync.Once
	// hardCtx is cancelled when the first Shutdown's deadline passes:
	// in-flight requests and retry waits are abandoned.
	hardCtx    context.Context
	hardCancel context.CancelFunc
	workers    sync.WaitGroup
	settled    chan struct{} // closed when the books are final
	done       chan struct{} // closed when Shutdown has finished
	result     error         // Shutdown's outcome, set before settled closes
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// newClient builds the transport for a valid configuration.
func newClient(cfg config) (transport.Client, error) {
	target, u, err := cfg.resolveEndpoint()
	if err != nil {
		return nil, err
	}
	if cfg.protocol == ProtocolGRPC {
		if target == "" {
			target = u.Host
		}
		return transport.NewGRPC(transport.GRPCConfig{
			Target:            target,
			Insecure:          cfg.insecure,
			TLS:               cfg.tlsConfig,
			Headers:           cfg.headers,
			Gzip:              cfg.compression == GzipCompression,
			UserAgent:         userAgent,
			Credentials:       cfg.grpcCreds,
			ServiceConfig:     cfg.serviceConfig,
			MinConnectTimeout: cfg.reconnectionPeriod,
			DialOptions:       cfg.dialOptions,
			Conn:              cfg.grpcConn,
		})
	}
	return transport.NewHTTP(transport.HTTPConfig{
		URL:              u.String(),
		Headers:          cfg.headers,
		Gzip:             cfg.compression == GzipCompression,
		TLS:              cfg.tlsConfig,
		MaxConns:         max(cfg.workers, cfg.maxConcurrency),
		UserAgent:        userAgent,
		JSON:             cfg.protocol == ProtocolHTTPJSON,
		MaxResponseBytes: cfg.maxResponseBytes,
		Proxy:            cfg.proxy,
		Client:           cfg.httpClient,
	}), nil
}

// encoding is what ExportSpans borrows from the pool for one call: the
// encoder and the slices it fills, all reused.
type encoding struct {
	enc   *otlpenc.Encoder
	reqs  []*otlpenc.Request
	sizes []ledger.Req
}

// entry is one encoded batch waiting in the queue.
type entry struct {
	req *otlpenc.Request
	seq uint64
}

// New returns an exporter configured by opts, started and ready. It never
// fails; see Exporter for what happens to an invalid configuration.
func New(opts ...Option) *Exporter {
	cfg := newConfig(opts)
	e := &Exporter{
		cfg:     cfg,
		settled: make(chan struct{}),
		done:    make(chan struct{}),
	}
	e.encPool.New = func() any { return &encoding{enc: otlpenc.NewEncoder()} }
	e.hardCtx, e.hardCancel = context.WithCancel(context.Background())
	names := make([]string, ledger.NumReasons)
	for r := range names {
		names[r] = string(reasonOf[r])
	}
	e.report = fallback.New(fallback.Config{
		Log:          cfg.logger,
		Clock:        cfg.clock,
		Interval:     max(cfg.logInterval, time.Millisecond),
		Component:    "tracekeeper exporter",
		Reasons:      names,
		Writer:       cfg.dropWriter,
		Convert:      otlpenc.AppendJSON,
		WriterBudget: dropWriterBudget,
	})

	// Written by the reporter's goroutine: New never waits on the logger.
	if cfg.envErrs != nil {
		e.report.Log(zapcore.WarnLevel, "tracekeeper exporter: ignoring malformed environment variables", zap.Error(cfg.envErrs))
	}
	if names := cfg.ignoredOptions(); names != nil {
		e.report.Log(zapcore.WarnLevel, "tracekeeper exporter: ignoring options that do not apply to the protocol",
			zap.String("protocol", string(cfg.protocol)), zap.Strings("options", names))
	}
	err := cfg.validate()
	if err == nil {
		e.client, err = newClient(cfg)
	}
	if err != nil {
		e.cfgErr = err
		e.report.Log(zapcore.ErrorLevel, "tracekeeper exporter: invalid configuration; every span will be dropped", zap.Error(err))
	}
	if e.cfgErr == nil {
		budget := int64(cfg.memoryBudget)
		if cfg.spoolDir != "" {
			e.openSpool()
		}
		if e.disk != nil {
			// A quarter of the budget holds what waits for the disk.
			budget -= e.disk.budget
		}
		// A request in flight holds more than its body: its
		// connection's buffers, the HTTP request and response. A part
		// of the budget, as many times requestOverhead as the limit
		// lets requests fly and at most an eighth, is set aside for
		// that (see reserve), and bounds the concurrency; a budget
		// barely larger than one request keeps room for that request
		// first.
		if cfg.compression == GzipCompression && cfg.protocol != ProtocolGRPC {
			// The compressors' state, about a megabyte each, one per core.
			budget -= min(transport.CompressorsMemory(), max(0, budget-int64(cfg.maxRequestBytes)))
		}
		lo, initial, hi := cfg.concurrency()
		room := max(1, budget/8/requestOverhead)
		slots := min(int64(hi), room)
		hi = int(slots)
		// A fixed pool's requests keep their worker through their
		// retries; adaptive requests wait to retry without a slot, as
		// many as the room for requests in flight.
		requests := hi
		if cfg.workers <= 0 {
			requests = int(min(room, int64(maxRequests)))
		}
		lo, initial = min(lo, hi), min(initial, hi)
		e.books.SetBudget(budget)
		e.reserveMax = max(0, budget-int64(cfg.maxRequestBytes))
		e.queue = queue.New[entry](cfg.queueSpans, budget)
		e.queueReady = make(chan struct{}, 1)
		e.limit = limiter.New(limiter.Config{Min: lo, Initial: initial, Max: hi})
		e.reserve()
		e.requests = make(chan struct{}, requests)
		e.send = sender.New(sender.Config{
			Client: e.client,
			Retry: retry.Config{
				Enabled:         cfg.retry.Enabled,
				InitialInterval: cfg.retry.InitialInterval,
				MaxInterval:     cfg.retry.MaxInterval,
				MaxElapsedTime:  cfg.retry.MaxElapsedTime,
			},
			Timeout: cfg.timeout,
			Clock:   cfg.clock,
		})
	}
	// The metrics exist before any delivery starts: one from the spool
	// can start at once.
	e.metrics = newSelfMetrics(cfg, e)
	if e.cfgErr == nil {
		e.workers.Add(1)
		if e.disk != nil {
			go e.dispatchSpool()
		} else {
			go e.dispatch()
		}
	}
	return e
}

// ExportSpans encodes spans and queues them for sending. It returns once
// they are queued or dropped, without waiting on the network.
//
// It returns nil when the spans were queued, and also when they were dropped
// because the queue was full: those drops are counted (Stats, metrics) and
// reported by the fallback logger, and returning them as an error would
// only make the BatchSpanProcessor report them again through the global
// error handler. It returns the configuration error when the configuration
// is invalid, and ErrShutdown after Shutdown. Nil elements are counted as
// dropped with reason invalid.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if !e.made() {
		return errNotMade
	}
	n := len(spans)
	if n == 0 {
		return nil
	}
	if e.cfgErr != nil {
		e.books.AcceptDropped(n, ledger.Config)
		e.report.Dropped(int(ledger.Config), int64(n), e.cfgErr)
		return e.cfgErr
	}
	if e.stopping.Load() {
		e.books.AcceptDropped(n, ledger.Shutdown)
		e.report.Dropped(int(ledger.Shutdown), int64(n), ErrShutdown)
		return ErrShutdown
	}

	es := e.encoding.Swap(nil)
	if es == nil {
		es = e.encPool.Get().(*encoding)
	}
	reqs, res := es.enc.Encode(spans, e.cfg.maxRequestBytes, es.reqs[:0])
	defer func() {
		clear(reqs)
		es.reqs = reqs[:0]
		if !e.encoding.CompareAndSwap(nil, es) {
			e.encPool.Put(es)
		}
	}()

	if e.cfg.blockOnFull > 0 {
		e.waitForRoom(ctx, reqs)
	}
	// Account the whole call in one step, so that no snapshot sees spans
	// accepted but in no state yet. The requests that do not fit the
	// memory budget are dropped at once.
	sizes := es.sizes[:0]
	for _, r := range reqs {
		sizes = append(sizes, ledger.Req{Spans: r.Spans(), Bytes: memory(r)})
	}
	es.sizes = sizes
	admitted := e.books.Accept(n, res.TooLarge, res.Repaired, sizes, !e.backlog())
	if res.TooLarge > 0 {
		e.report.Dropped(int(ledger.TooLarge), int64(res.TooLarge),
			fmt.Errorf("exporter: span larger than the maximum request size of %d bytes", e.cfg.maxRequestBytes))
	}
	queued := 0
	for _, r := range reqs {
		queued += r.Spans()
	}
	if invalid := n - queued - res.TooLarge; invalid > 0 {
		e.report.Dropped(int(ledger.Invalid), int64(invalid), errors.New("exporter: nil span in the batch"))
	}
	if res.Repaired > 0 {
		e.report.Warn("invalid UTF-8 repaired", fmt.Sprintf("%d string values with invalid UTF-8 repaired", res.Repaired))
	}
	for _, r := range reqs[admitted:] {
		if !e.toSpool(r) {
			e.refuse(r, errMemoryFull)
		}
	}

	var err error
	for i, r := range reqs[:admitted] {
		if err = e.enqueue(ctx, r); err != nil {
			// Once the queue refuses a batch, the rest of this call's
			// batches would fare no better and must not overtake it.
			for _, rest := range reqs[i+1 : admitted] {
				e.refuse(rest, err)
			}
			break
		}
	}
	// Spans dropped for want of memory are demand too.
	e.demand()
	if e.queueReady != nil && admitted > 0 {
		select {
		case e.queueReady <- struct{}{}:
		default:
		}
	}
	if errors.Is(err, queue.ErrClosed) {
		return ErrShutdown
	}
	return nil
}

// demand tells the concurrency limit when a whole request's worth of
// spans waits for a slot, in memory or on disk (see limiter.Waiting).
func (e *Exporter) demand() {
	max := int64(e.cfg.maxRequestBytes)
	n := e.queue.Bytes() / max
	if e.spoolWaiting() {
		n += 1 + e.spoolBytes()/max
	}
	if n > 0 && e.limit.Waiting(e.cfg.clock.Now(), int(n)) {
		e.reserve()
	}
}

// reserve sets aside in the budget what the requests the limit lets fly
// hold besides their bodies. It follows the limit, so that a limit that
// settled low leaves the rest to the queue; when the limit grows past
// what is free, admissions wait for the queue to drain.
func (e *Exporter) reserve() {
	r := min(int64(e.limit.Limit())*requestOverhead, e.reserveMax)
	if r != e.reserved.Load() {
		e.reserved.Store(r)
		e.books.SetReserve(r)
	}
}

// requestOverhead is the memory a request in flight holds besides its
// body, as measured over loopback HTTP/1.1: a connection's read and write
// buffers (4 KiB each), the cloned headers, the request, response and
// transport state, rounded up.
const requestOverhead = 16 << 10

// maxRequests bounds the requests out of the queue at once, in flight or
// waiting to retry, whatever the budget: each is a goroutine.
const maxRequests = 1024

// errMemoryFull is the cause of spans dropped because the memory budget
// was full.
var errMemoryFull = errors.New("exporter: memory budget full (the backend is slower than the load; see WithMemoryBudget)")

// waitForRoom waits, up to the WithBlockOnFull wait, until the memory
// budget has room for reqs.
func (e *Exporter) waitForRoom(ctx context.Context, reqs []*otlpenc.Request) {
	var need int64
	for _, r := range reqs {
		need += memory(r)
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.blockOnFull)
	defer cancel()
	for {
		room := e.books.Room()
		if e.books.Fits(need) {
			return
		}
		select {
		case <-room:
		case <-ctx.Done():
			return
		}
	}
}

// dropped reports a request dropped before it was queued, and releases it.
func (e *Exporter) dropped(r *otlpenc.Request, reason ledger.Reason, cause error) {
	e.report.Dropped(int(reason), int64(r.Spans()), cause)
	e.report.WriteDropped(r.Bytes())
	r.Release()
}

// enqueue puts r, already counted as queued, on the queue; if the queue
// refuses it, r is counted dropped and the queue's error returned.
func (e *Exporter) enqueue(ctx context.Context, r *otlpenc.Request) error {
	ent := entry{req: r, seq: e.flushes.begin()}
	items, size := r.Spans(), memory(r)
	var err error
	if e.cfg.blockOnFull > 0 {
		bctx, cancel := context.WithTimeout(ctx, e.cfg.blockOnFull)
		err = e.queue.Put(bctx, ent, items, size)
		cancel()
	} else {
		err = e.queue.TryPut(ent, items, size)
	}
	if err != nil {
		e.flushes.end(ent.seq)
		e.refuse(r, err)
	}
	return err
}

// memory is what a queued batch costs against the queue's byte budget: the
// buffer it holds, which may be larger than its encoding.
func memory(r *otlpenc.Request) int64 { return int64(cap(r.Bytes())) }

// refuse moves a batch the queue did not take from queued to dropped.
//
// The request's memory is released only if it was admitted to it: a
// request refused for want of memory never held any.
func (e *Exporter) refuse(r *otlpenc.Request, cause error) {
	reason := ledger.QueueFull
	if errors.Is(cause, queue.ErrClosed) {
		reason = ledger.Shutdown
	}
	bytes := memory(r)
	if errors.Is(cause, errMemoryFull) {
		bytes = 0
	}
	e.books.Refuse(r.Spans(), bytes, reason)
	e.dropped(r, reason, cause)
}

// ConfigError returns the configuration error New found, every problem
// joined, or nil. New never fails, so that it can be written inline in
// sdktrace.WithBatcher: with an invalid configuration it logs this error
// and every ExportSpans returns it, its spans dropped with reason config.
// Code that builds exporters from a configuration file can check it at
// once instead.
func (e *Exporter) ConfigError() error {
	if !e.made() {
		return errNotMade
	}
	return e.cfgErr
}

// errNotMade is what the methods of an Exporter New did not make return.
var errNotMade = errors.New("exporter: the Exporter was not made by New")

// made reports whether e was made by New: the methods of a nil or zero
// Exporter do nothing, and return errNotMade where they return an error.
func (e *Exporter) made() bool { return e != nil && e.report != nil }

// Stats returns a consistent snapshot of the exporter's accounting.
func (e *Exporter) Stats() Stats {
	if !e.made() {
		return Stats{}
	}
	// The spool's figures first: spans read back from disk leave Spooled
	// before they leave the spool, so that read after them, Spooled is no
	// more than the spool holds, even when this goroutine is preempted
	// between the two reads.
	var sp Stats
	e.spoolStats(&sp)
	s := statsOf(e.books.Snapshot())
	s.SpoolRecords, s.SpoolSpans, s.SpoolBytes = sp.SpoolRecords, sp.SpoolSpans, sp.SpoolBytes
	s.SpoolBudget, s.SpoolCorrupt = sp.SpoolBudget, sp.SpoolCorrupt
	s.QueueCapacity = int64(e.cfg.queueSpans)
	s.MemoryBudget = int64(e.cfg.memoryBudget)
	s.Unwritten = e.report.Unwritten()
	if e.limit != nil {
		s.ConcurrencyLimit = int64(e.limit.Limit())
		s.RoundTrip = e.limit.RTT()
	}
	return s
}

// ForceFlush waits until every span accepted before the call has been sent
// or dropped, or until ctx is done.
//
// TracerProvider.ForceFlush flushes the BatchSpanProcessor into ExportSpans
// and returns without waiting on the network; to know the spans reached
// the backend, flush both:
//
//	_ = tp.ForceFlush(ctx) // BatchSpanProcessor → exporter queue
//	_ = exp.ForceFlush(ctx) // exporter queue → backend
func (e *Exporter) ForceFlush(ctx context.Context) error {
	if !e.made() {
		return errNotMade
	}
	if err := e.flushes.wait(ctx); err != nil {
		return fmt.Errorf("exporter: force flush: %w", err)
	}
	return nil
}

// Shutdown stops accepting spans and sends what is queued in the time ctx
// allows. When the first Shutdown's deadline passes, what is left (queued,
// in flight or waiting for a retry) is abandoned and counted dropped with
// reason shutdown.
//
// Every call returns by its ctx's deadline, plus at most 100ms for the
// books to close after abandoning (and, with a spool, at most one second
// more for the spool to write what it was handed and release its
// directory). When spans were abandoned, every call waiting at that moment
// returns an error that counts them, and so it does for the spans the
// spool was to keep when it finds its directory gone meanwhile. A call
// whose ctx ends while the first is still sending returns its ctx's error
// without abandoning anything; a call made after Shutdown finished returns
// nil.
//
// Without a deadline, against a backend that stays down, it lasts about
// one retry budget and an attempt's timeout: see RetryConfig.MaxElapsedTime.
//
// Once the books are settled it waits for the fallback logger's last
// report and the dropped-spans writer as long as ctx allows, and, when ctx
// has no deadline, at most one second: a stalled logger or writer never
// holds Shutdown, and the dropped requests the writer has not taken by then
// are counted in Stats.Unwritten.
//
// TracerProvider.Shutdown calls it through the BatchSpanProcessor, with the
// same ctx.
func (e *Exporter) Shutdown(ctx context.Context) error {
	if !e.made() {
		return errNotMade
	}
	first := false
	e.stopOnce.Do(func() {
		first = true
		e.stopping.Store(true)
		go e.stop(ctx)
	})
	// A call made once the books are settled has nothing of its own to
	// lose, and settled books win over a ctx that is also done.
	select {
	case <-e.settled:
		if !first {
			return nil
		}
		return e.finishShutdown(ctx)
	default:
	}
	select {
	case <-e.settled:
		return e.finishShutdown(ctx)
	case <-ctx.Done():
	}
	if !first {
		return fmt.Errorf("exporter: shutdown still sending: %w", ctx.Err())
	}
	// stop saw the same ctx end and is abandoning what is left; with a
	// spool, it also lets the spool's writer finish what it was handed.
	slack := shutdownSlack
	if e.disk != nil {
		slack += spoolCloseSlack
	}
	t := time.NewTimer(slack)
	defer t.Stop()
	select {
	case <-e.settled:
		return e.result
	case <-t.C:
		return fmt.Errorf("exporter: shutdown deadline reached, abandoning what is left: %w", ctx.Err())
	}
}

// finishShutdown waits, as long as ctx allows, for the fallback logger to
// write its last report, then returns Shutdown's outcome.
func (e *Exporter) finishShutdown(ctx context.Context) error {
	select {
	case <-e.done:
	case <-ctx.Done():
	}
	return e.result
}

// stop drains the queue, waits for the workers, abandoning what is left
// when ctx ends, then closes the books and releases everything.
func (e *Exporter) stop(ctx context.Context) {
	if e.queue != nil {
		e.queue.Close()
		if e.queueReady != nil {
			select {
			case e.queueReady <- struct{}{}:
			default:
			}
		}
		finished := make(chan struct{})
		go func() {
			e.workers.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-ctx.Done():
			e.hardCancel()
			// Whatever the workers did not take is abandoned here; what
			// they hold, by them as their sends abort.
			e.endUntried(e.queue.Drain(nil), sender.Abandoned, sender.ErrAbandoned)
			<-finished
		}
		_ = e.client.Close()
		e.closeSpool(ctx)
	}
	e.hardCancel()
	if kept := e.books.Snapshot().Spooled; kept > 0 {
		e.report.Note(fmt.Sprintf("disk spool: %d spans kept in %s for the next start", kept, e.cfg.spoolDir))
	}
	if n := e.books.Snapshot().Dropped[ledger.Deadline]; n > 0 {
		cause := ctx.Err()
		if cause == nil {
			cause = context.DeadlineExceeded
		}
		e.result = fmt.Errorf("exporter: shutdown deadline reached: %d spans dropped: %w", n, cause)
	}
	if d := e.disk; d != nil {
		if n := d.lostInShutdown.Load(); n > 0 {
			e.result = errors.Join(e.result, fmt.Errorf("exporter: shutdown: %d spans could not be kept on disk for the next start: %w", n, spool.ErrVanished))
		}
	}
	close(e.settled)
	e.metrics.retire()
	// The last report waits for nothing but the logger and the writer:
	// as long as ctx allows, and without a deadline at most reportGrace.
	rctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		rctx, cancel = context.WithCancel(ctx)
		t := e.cfg.clock.AfterFunc(reportGrace, cancel)
		defer func() { t.Stop(); cancel() }()
	}
	_ = e.report.Close(rctx)
	close(e.done)
}

// reportGrace bounds the wait of a Shutdown without a deadline for the
// fallback logger and the dropped-spans writer.
const reportGrace = time.Second
