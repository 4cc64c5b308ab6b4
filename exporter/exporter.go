package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
	"github.com/tracekeeper/tracekeeper/internal/retry"
	"github.com/tracekeeper/tracekeeper/internal/transport"
	"github.com/tracekeeper/tracekeeper/queue"
)

// ErrShutdown is returned by ExportSpans after Shutdown.
var ErrShutdown = errors.New("exporter: shut down")

// userAgent identifies the exporter to backends.
const userAgent = "tracekeeper-exporter/0.1"

// Exporter is a non-blocking OTLP span exporter for
// sdktrace.WithBatcher.
//
// ExportSpans encodes the spans, puts them on a bounded queue and returns
// without waiting on the network. A pool of workers takes from the queue,
// combines queued batches into requests of up to the maximum request size,
// and sends them concurrently with retries. When the queue is full the
// spans are dropped and counted; the caller never waits unless
// WithBlockOnFull asks it to.
//
// Every span given to ExportSpans is accounted for: Stats reports how many
// were exported, dropped (by reason), queued and in flight, and the same
// figures are published as metrics. Drops and failures are reported to the
// fallback logger.
//
// An Exporter is safe for concurrent use. Its methods never panic, and New
// never fails: an invalid configuration is logged at once and makes every
// ExportSpans return the error, counting the spans as dropped with reason
// config.
type Exporter struct {
	cfg    config
	cfgErr error

	client  transport.Client
	queue   *queue.Queue[entry]
	retry   retry.Config
	encPool sync.Pool // *encoding

	stats     counters
	flushes   tracker
	recovered recovery
	report    *reporter
	metrics   *selfMetrics

	stopping atomic.Bool
	stopOnce sync.Once
	// hardCtx is cancelled when a Shutdown deadline passes: in-flight
	// requests and retry waits are abandoned.
	hardCtx    context.Context
	hardCancel context.CancelFunc
	workers    sync.WaitGroup
	done       chan struct{} // closed when Shutdown has finished
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// newClient builds the transport for a valid configuration.
func newClient(cfg config) (transport.Client, error) {
	u, err := cfg.targetURL()
	if err != nil {
		return nil, err
	}
	if cfg.protocol == ProtocolGRPC {
		return transport.NewGRPC(transport.GRPCConfig{
			Target:    u.Host,
			Insecure:  cfg.insecure,
			TLS:       cfg.tlsConfig,
			Headers:   cfg.headers,
			Gzip:      cfg.compression == GzipCompression,
			Timeout:   cfg.timeout,
			UserAgent: userAgent,
		})
	}
	return transport.NewHTTP(transport.HTTPConfig{
		URL:       u.String(),
		Headers:   cfg.headers,
		Gzip:      cfg.compression == GzipCompression,
		TLS:       cfg.tlsConfig,
		Timeout:   cfg.timeout,
		MaxConns:  cfg.workers,
		UserAgent: userAgent,
	}), nil
}

// encoding is what ExportSpans borrows from the pool for one call: the
// encoder and the slice it returns the requests in, both reused.
type encoding struct {
	enc  *otlpenc.Encoder
	reqs []*otlpenc.Request
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
		cfg:  cfg,
		done: make(chan struct{}),
		retry: retry.Config{
			Enabled:         cfg.retry.Enabled,
			InitialInterval: cfg.retry.InitialInterval,
			MaxInterval:     cfg.retry.MaxInterval,
			MaxElapsedTime:  cfg.retry.MaxElapsedTime,
		},
	}
	e.encPool.New = func() any { return &encoding{enc: otlpenc.NewEncoder()} }
	e.hardCtx, e.hardCancel = context.WithCancel(context.Background())
	e.report = newReporter(cfg.logger, cfg.clock, cfg.logInterval, cfg.dropWriter)

	if cfg.envErrs != nil {
		cfg.logger.Warn("tracekeeper exporter: ignoring malformed environment variables", zap.Error(cfg.envErrs))
	}
	err := cfg.validate()
	if err == nil {
		e.client, err = newClient(cfg)
	}
	if err != nil {
		e.cfgErr = err
		cfg.logger.Error("tracekeeper exporter: invalid configuration; every span will be dropped", zap.Error(err))
	}
	if e.cfgErr == nil {
		e.queue = queue.New[entry](cfg.queueSpans, int64(cfg.queueBytes))
		e.stats.s.QueueCapacity = int64(cfg.queueSpans)
		e.stats.s.QueueCapacityBytes = int64(cfg.queueBytes)
		for range cfg.workers {
			e.workers.Add(1)
			go e.work()
		}
	}
	e.metrics = newSelfMetrics(cfg, e)
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
// is invalid, and ErrShutdown after Shutdown.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	n := int64(len(spans))
	if n == 0 {
		return nil
	}
	if e.cfgErr != nil {
		e.acceptDropped(n, ReasonConfig, e.cfgErr)
		return e.cfgErr
	}
	if e.stopping.Load() {
		e.acceptDropped(n, ReasonShutdown, ErrShutdown)
		return ErrShutdown
	}

	es := e.encPool.Get().(*encoding)
	reqs, res := es.enc.Encode(spans, e.cfg.maxRequestBytes, es.reqs[:0])
	defer func() {
		clear(reqs)
		es.reqs = reqs[:0]
		e.encPool.Put(es)
	}()

	// Account the whole call in one step, so that no snapshot sees spans
	// accepted but in no state yet; batches the queue refuses move on to
	// dropped.
	var queued, queuedBytes int64
	for _, r := range reqs {
		queued += int64(r.Spans())
		queuedBytes += memory(r)
	}
	e.stats.mu.Lock()
	e.stats.s.Accepted += n
	e.stats.s.Repaired += int64(res.Repaired)
	e.stats.s.Dropped.TooLarge += int64(res.TooLarge)
	e.stats.s.Queued += queued
	e.stats.s.QueueBytes += queuedBytes
	e.stats.mu.Unlock()
	if res.TooLarge > 0 {
		e.report.dropped(ReasonTooLarge, int64(res.TooLarge),
			fmt.Errorf("exporter: span larger than the maximum request size of %d bytes", e.cfg.maxRequestBytes))
	}
	if res.Repaired > 0 {
		e.report.warn("invalid UTF-8 repaired", fmt.Sprintf("%d string values with invalid UTF-8 repaired", res.Repaired))
	}

	var err error
	for i, r := range reqs {
		if err = e.enqueue(ctx, r); err != nil {
			// Once the queue refuses a batch, the rest of this call's
			// batches would fare no better and must not overtake it.
			for _, rest := range reqs[i+1:] {
				e.refuse(rest, err)
			}
			break
		}
	}
	if errors.Is(err, queue.ErrClosed) {
		return ErrShutdown
	}
	return nil
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
func (e *Exporter) refuse(r *otlpenc.Request, cause error) {
	reason := ReasonQueueFull
	if errors.Is(cause, queue.ErrClosed) {
		reason = ReasonShutdown
	}
	spans := int64(r.Spans())
	e.stats.mu.Lock()
	e.stats.s.Queued -= spans
	e.stats.s.QueueBytes -= memory(r)
	*e.stats.s.Dropped.field(reason) += spans
	e.stats.mu.Unlock()
	e.report.dropped(reason, spans, cause, r.Bytes())
	r.Release()
}

// acceptDropped accounts n spans that are dropped on arrival.
func (e *Exporter) acceptDropped(n int64, reason Reason, cause error) {
	e.stats.mu.Lock()
	e.stats.s.Accepted += n
	*e.stats.s.Dropped.field(reason) += n
	e.stats.mu.Unlock()
	e.report.dropped(reason, n, cause)
}

// Stats returns a consistent snapshot of the exporter's accounting.
func (e *Exporter) Stats() Stats {
	return e.stats.snapshot()
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
	if err := e.flushes.wait(ctx); err != nil {
		return fmt.Errorf("exporter: force flush: %w", err)
	}
	return nil
}

// Shutdown stops accepting spans, sends what is queued in the time ctx
// allows, then abandons what is left (queued, in flight or waiting for a
// retry), counting it dropped with reason shutdown. It returns an error
// when spans were dropped that way. It is safe to call more than once; later
// calls wait for the first to finish or for their own ctx.
//
// TracerProvider.Shutdown calls it through the BatchSpanProcessor, with the
// same ctx.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.stopOnce.Do(func() {
		e.stopping.Store(true)
		go e.stop()
	})
	// A finished Shutdown wins over a ctx that is also done: select would
	// otherwise choose at random and report drops that never happened.
	select {
	case <-e.done:
		return nil
	default:
	}
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		e.hardCancel()
		<-e.done
		return fmt.Errorf("exporter: shutdown did not finish sending: %d spans dropped: %w",
			e.stats.snapshot().Dropped.Shutdown, ctx.Err())
	}
}

// stop drains the queue, waits for the workers, then releases everything.
func (e *Exporter) stop() {
	if e.queue != nil {
		e.queue.Close()
		finished := make(chan struct{})
		go func() {
			e.workers.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-e.hardCtx.Done():
			// Whatever the workers did not take is dropped here; what
			// they hold is dropped by them as their sends abort.
			for _, ent := range e.queue.Drain(nil) {
				spans := ent.req.Spans()
				e.toFlight(spans, memory(ent.req))
				e.finish([][]byte{ent.req.Bytes()}, spans, 0, ReasonShutdown, errShutdownDeadline)
				e.release(ent)
			}
			<-finished
		}
		_ = e.client.Close()
	}
	e.hardCancel()
	e.report.close()
	e.metrics.close()
	close(e.done)
}
