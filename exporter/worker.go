package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracekeeper/tracekeeper/internal/ledger"
	"github.com/tracekeeper/tracekeeper/internal/limiter"
	"github.com/tracekeeper/tracekeeper/internal/sender"
	"github.com/tracekeeper/tracekeeper/internal/transport"
)

// dispatch takes batches from the queue as the concurrency limit allows
// and delivers each request on a goroutine of its own, until the queue is
// closed and empty.
func (e *Exporter) dispatch() {
	defer e.workers.Done()
	for {
		e.requests <- struct{}{}
		slot := e.acquire()
		for {
			batch, spans, size, err := e.queue.TryTake(nil, 0, int64(e.cfg.maxRequestBytes))
			if err != nil {
				e.limit.Release(slot)
				<-e.requests
				return // closed and drained
			}
			if len(batch) > 0 && e.gaveUp.Load() {
				e.endUntried(batch, sender.Exhausted, errGaveUp)
				continue
			}
			if len(batch) > 0 {
				e.books.Fly(spans, size)
				e.workers.Add(1)
				go e.deliver(slot, batch, spans, size)
				break
			}
			// Nothing queued: wait without the slot, which a request
			// resuming after a retry wait may need.
			e.limit.Release(slot)
			<-e.queueReady
			slot = e.acquire()
		}
	}
}

// errGaveUp is the cause of the spans that end untried once a request
// has spent its whole retry budget during Shutdown: the backend has been
// down for that long, and trying what is queued, one budget after another
// within the concurrency limit, would hold a Shutdown without a deadline
// for as many budgets.
var errGaveUp = errors.New("backend unavailable during Shutdown: a request exhausted its retries, so what was still queued was not tried")

// endUntried ends queued batches that will not be sent with outcome o and
// cause err, as a delivery would: dropped, or kept on disk with a spool
// (see finished).
func (e *Exporter) endUntried(batch []entry, o sender.Outcome, err error) {
	for _, ent := range batch {
		spans, mem := ent.req.Spans(), memory(ent.req)
		e.books.Fly(spans, mem)
		e.finished(sender.Result{Body: &transport.Body{Parts: [][]byte{ent.req.Bytes()}}, Spans: spans,
			Outcome: o, Err: err}, false)
		e.books.Resize(-mem)
		e.release(ent)
	}
}

// acquire waits for a slot of the concurrency limit.
func (e *Exporter) acquire() limiter.Slot {
	slot, _ := e.limit.Acquire(context.Background())
	return slot
}

// deliver sends one request made of batch, then releases its memory and
// its slot.
func (e *Exporter) deliver(slot limiter.Slot, batch []entry, spans int, held int64) {
	defer e.workers.Done()
	defer func() { <-e.requests }()
	// Encoded ExportTraceServiceRequests concatenate into one valid
	// request (resource_spans is a repeated field): the batches are sent
	// as the parts of one request, without copying.
	parts := make([][]byte, len(batch))
	for i, ent := range batch {
		parts[i] = ent.req.Bytes()
	}
	body := &transport.Body{Parts: parts}
	plain := held
	if c, ok := e.client.(compressor); ok {
		// Hold what is sent: once compressed, the encoded batches go back
		// to their pool and only the compressed form waits in flight.
		if done, err := c.Compress(body); err == nil && done {
			// Drop every reference to the encoded batches too: a
			// released request still points at its buffer, which
			// would stay live for as long as this request is in
			// flight.
			for i := range batch {
				batch[i].req.Release()
				batch[i].req = nil
			}
			clear(parts)
			body.Parts = nil
			e.books.Resize(body.Held() - held)
			held = body.Held()
		}
	}
	h := hooks{e: e, slot: slot, holding: true, body: body, batch: batch, size: held, plain: plain}
	start := e.cfg.clock.Now()
	last := e.send.Deliver(e.hardCtx, body, spans, &h)
	e.metrics.recordOperation(e.cfg.clock.Since(start), last)
	// With what it took along while it waited to retry.
	batch, held = h.batch, h.size
	body.Release()
	e.books.Resize(-held)
	h.release()
	for _, ent := range batch {
		if ent.req != nil {
			ent.req.Release()
		}
		e.flushes.end(ent.seq)
	}
}

// compressor is a client that can compress a request once for all its
// attempts.
type compressor interface {
	Compress(*transport.Body) (bool, error)
}

// release returns a finished entry's buffer and marks it done for
// ForceFlush.
func (e *Exporter) release(ent entry) {
	seq := ent.seq
	ent.req.Release()
	e.flushes.end(seq)
}

// hooks account for what the sender reports about one request, and tell
// the limiter how each attempt went.
type hooks struct {
	e    *Exporter
	slot limiter.Slot
	// holding: the request holds its slot. It gives it back while it
	// waits to retry and takes one again, within the limit, before the
	// next attempt: the limit bounds the attempts in flight, and a
	// request refused for backpressure does not keep a slot idle for its
	// whole backoff. What it holds in memory stays counted meanwhile.
	holding bool
	// spooled: the request was read back from the spool, a record of
	// whole spans, which keeps what cannot be sent; kept counts its spans
	// so kept, sent says that an attempt may have delivered some of them
	// (see sender.Result.Reached), and parts holds the encoded parts they
	// are in when the record was split and only some of its parts are to
	// be kept: only those go back to disk. They are held in memory until
	// the delivery ends, at most the record's size.
	spooled bool
	whole   int
	kept    int
	sent    bool
	parts   [][]byte
	// body, batch, size and plain are the request, the queued batches it
	// is made of (their buffers released once compressed), the memory it
	// holds and its uncompressed size, which grow when it takes along what
	// was queued while it waited to retry; body is nil for a request read
	// back from the spool.
	body  *transport.Body
	batch []entry
	size  int64
	plain int64
}

var _ sender.Hooks = (*hooks)(nil)

func (h *hooks) Attempted(retry bool, rtt time.Duration, resp transport.Response, err error) {
	e := h.e
	e.books.Attempt(retry)
	e.limit.Observe(h.slot, e.cfg.clock.Now(), rtt, signal(err))
	e.reserve()
	if err == nil {
		if msg := resp.Message; msg != "" && resp.Rejected == 0 {
			e.report.Warn("backend message", msg)
		}
		if down, dropped, ok := e.outage.end(e.cfg.clock.Now(), e.droppedTotal); ok {
			e.report.Note(fmt.Sprintf("delivery resumed after %v; %d spans dropped meanwhile",
				down.Round(time.Millisecond), dropped))
		}
		if d := e.disk; d != nil && d.resume() {
			d.signal() // the backlog waits no more
		}
		return
	}
	if transport.Classify(err).Kind == transport.Retryable {
		e.outage.begin(e.cfg.clock.Now(), e.droppedTotal)
	}
}

func (h *hooks) Resuming(grow func() bool) int {
	if !h.holding {
		// A Shutdown deadline ends the wait; the attempt that follows
		// then fails at once and the request is abandoned, without a
		// slot.
		slot, err := h.e.limit.Acquire(h.e.hardCtx)
		if err != nil {
			return 0
		}
		h.slot, h.holding = slot, true
	}
	if grow == nil || h.body == nil || !grow() {
		return 0
	}
	return h.grow()
}

// grow adds to the request what was queued while it waited to retry, up
// to the maximum request size, and returns the spans added: a request
// refused while the queue was short (a backend at its capacity refuses
// the small first batches too) would otherwise keep its place in the
// backend's capacity for a fraction of what a request can carry.
//
// A compressed request is compressed again with what it takes along, so
// that it stays one gzip stream, and holds what it took compressed, like
// the rest of it.
func (h *hooks) grow() int {
	e := h.e
	room := int64(e.cfg.maxRequestBytes) - h.plain
	if room <= 0 {
		return 0
	}
	more, spans, size, err := e.queue.TryTakeWithin(nil, 0, room)
	if err != nil || len(more) == 0 {
		return 0
	}
	e.books.Fly(spans, size)
	h.size += size
	h.plain += size
	if !h.body.Compressed() {
		for _, ent := range more {
			h.body.Parts = append(h.body.Parts, ent.req.Bytes())
		}
		h.batch = append(h.batch, more...)
		return spans
	}
	parts := make([][]byte, len(more))
	for i, ent := range more {
		parts[i] = ent.req.Bytes()
	}
	before := h.body.Held()
	err = h.body.Extend(parts)
	clear(parts)
	for i := range more {
		more[i].req.Release()
		more[i].req = nil
	}
	h.batch = append(h.batch, more...)
	if err != nil {
		// What was taken is lost with its buffers: counted, never sent.
		h.size -= size
		h.plain -= size
		e.books.Resize(-size)
		e.books.Finish(spans, 0, ledger.PermanentError)
		e.report.Dropped(int(ledger.PermanentError), int64(spans), fmt.Errorf("exporter: %w", err))
		return 0
	}
	d := h.body.Held() - before - size
	e.books.Resize(d)
	h.size += d
	return spans
}

// release gives the request's slot back, if it holds one.
func (h *hooks) release() {
	if h.holding {
		h.e.limit.Release(h.slot)
		h.holding = false
	}
}

func (h *hooks) Retrying(spans int, delay time.Duration, err error) {
	h.release()
	if h.e.hardCtx.Err() != nil {
		return
	}
	h.e.report.Warn("retrying", fmt.Sprintf("request of %d spans failed, retrying in %v: %v",
		spans, delay.Round(time.Millisecond), err))
}

func (h *hooks) Finished(r sender.Result) {
	if r.Outcome == sender.Exhausted && h.e.stopping.Load() && h.e.cfg.retry.Enabled && h.e.cfg.retry.MaxElapsedTime > 0 {
		h.e.gaveUp.Store(true)
	}
	if !h.e.finished(r, h.spooled) || !h.spooled {
		return
	}
	if r.Spans < h.whole {
		// A part of the split record: it alone may go back to disk.
		plain, err := r.Body.Plain()
		if err != nil {
			h.e.books.DropSpooled(r.Spans, ledger.SpoolError)
			h.e.report.Dropped(int(ledger.SpoolError), int64(r.Spans), fmt.Errorf("exporter: could not keep them on disk: %w", err))
			return
		}
		h.parts = append(h.parts, plain)
	}
	h.kept += r.Spans
	h.sent = h.sent || r.Reached
}

// outcomeReason is the ledger's reason for each way a delivery can fail.
var outcomeReason = [...]ledger.Reason{
	sender.Rejected:  ledger.Rejected,
	sender.TooLarge:  ledger.TooLarge,
	sender.Permanent: ledger.PermanentError,
	sender.Exhausted: ledger.RetriesExhausted,
	sender.Abandoned: ledger.Deadline,
}

// finished accounts the end of in-flight spans and reports what was
// dropped, with the request for the dropped-spans writer. With a spool,
// spans that could not be sent because the backend stayed unavailable
// (retries exhausted) or the Shutdown deadline came are kept on disk
// instead: a record read from it stays there (spooled), others are
// written to it. It reports whether they were kept.
func (e *Exporter) finished(r sender.Result, spooled bool) (kept bool) {
	reason, cause := outcomeReason[r.Outcome], fmt.Errorf("exporter: %w", r.Err)
	if e.disk != nil && (r.Outcome == sender.Abandoned || r.Outcome == sender.Exhausted) {
		if spooled {
			e.books.Respool(r.Spans)
			return true
		}
		switch why, err := e.keep(r.Body, r.Spans, r.Reached); {
		case err == nil:
			e.books.Respool(r.Spans)
			return true
		case !errors.Is(err, errNoSpool):
			// The spool was there and could not take them: that is why
			// they are lost.
			reason, cause = why, fmt.Errorf("exporter: could not keep them on disk: %w (after: %w)", err, r.Err)
		}
	}
	e.books.Finish(r.Spans, r.Exported, reason)
	if dropped := r.Spans - r.Exported; dropped > 0 {
		e.report.Dropped(int(reason), int64(dropped), cause)
		if r.Body != nil && e.report.Writes() {
			if plain, err := r.Body.Plain(); err == nil {
				e.report.WriteDropped(plain)
			}
		}
	}
	return false
}

// signal tells the limiter what an attempt's outcome says about the
// backend's load.
func signal(err error) limiter.Signal {
	if err == nil {
		return limiter.Success
	}
	te := transport.Classify(err)
	switch te.Code {
	case "429", "502", "503", "504", "RESOURCE_EXHAUSTED":
		return limiter.Backpressure
	case "DEADLINE_EXCEEDED":
		return limiter.Timeout
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return limiter.Timeout
	}
	return limiter.Neutral
}

// droppedTotal is the number of spans dropped so far.
func (e *Exporter) droppedTotal() int64 { return e.books.Snapshot().DroppedTotal() }

// outage remembers when deliveries started failing, so that the fallback
// logger can say when, and at what cost, they resumed. Outside an outage
// it costs one atomic load per attempt.
type outage struct {
	active  atomic.Bool
	mu      sync.Mutex
	since   time.Time
	dropped int64 // spans dropped before the outage began
}

func (o *outage) begin(now time.Time, dropped func() int64) {
	if o.active.Load() {
		return
	}
	o.mu.Lock()
	if o.since.IsZero() {
		o.since, o.dropped = now, dropped()
		o.active.Store(true)
	}
	o.mu.Unlock()
}

func (o *outage) end(now time.Time, dropped func() int64) (time.Duration, int64, bool) {
	if !o.active.Load() {
		return 0, 0, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return 0, 0, false
	}
	d, n := now.Sub(o.since), dropped()-o.dropped
	o.since = time.Time{}
	o.active.Store(false)
	return d, n, true
}
