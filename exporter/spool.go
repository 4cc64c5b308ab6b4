package exporter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tracekeeper/tracekeeper/internal/ledger"
	"github.com/tracekeeper/tracekeeper/internal/limiter"
	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
	"github.com/tracekeeper/tracekeeper/internal/sender"
	"github.com/tracekeeper/tracekeeper/internal/spool"
	"github.com/tracekeeper/tracekeeper/internal/transport"
	"github.com/tracekeeper/tracekeeper/queue"
)

// disk is the exporter's side of the spool: a bounded hand-off in front
// of the writer goroutine, so that ExportSpans never waits on the disk.
type disk struct {
	s       *spool.Spool
	newest  bool // take the backlog newest first
	handoff chan *otlpenc.Request
	budget  int64        // bytes the hand-off may hold
	held    atomic.Int64 // bytes it holds
	broken  atomic.Bool  // a write failed: memory only from now on
	corrupt atomic.Int64
	wake    chan struct{} // the dispatcher's: something to send
	done    chan struct{} // the writer has stopped
	// returned counts the records read back that could not be sent and
	// went back to the backlog: once Shutdown began, one such record
	// ends the draining of the backlog, which stays on disk.
	returned atomic.Int64
	// lostInShutdown counts the spans that could not be kept on disk for
	// the next start, once Shutdown began, because the directory or a
	// segment vanished: its error counts them.
	lostInShutdown atomic.Int64

	// mu orders hand-offs before the close of handoff: an ExportSpans
	// racing with Shutdown must not send on a closed channel.
	mu     sync.RWMutex
	closed bool

	// The backlog is not read while paused: a record that went back
	// because the backend refused it is not sent again at once, which
	// without retries would be a loop of requests as fast as the backend
	// answers. The pause doubles from the retry policy's initial
	// interval up to its maximum with every record that goes back, and
	// ends at the first request the backend accepts.
	pauseMu    sync.Mutex
	pauseFor   time.Duration
	pauseUntil atomic.Int64 // unix nanoseconds; 0 when not paused
}

// Pauses of the backlog when the retry policy sets no interval.
const (
	defaultSpoolPause    = time.Second
	defaultMaxSpoolPause = 30 * time.Second
)

// pause pauses the backlog after a record went back to it at now, unless
// it is paused already.
func (e *Exporter) pause(now time.Time) {
	d := e.disk
	first, most := e.cfg.retry.InitialInterval, e.cfg.retry.MaxInterval
	if first <= 0 {
		first = defaultSpoolPause
	}
	if most <= 0 {
		most = max(first, defaultMaxSpoolPause)
	}
	d.pauseMu.Lock()
	defer d.pauseMu.Unlock()
	if d.pauseUntil.Load() > now.UnixNano() {
		// Taken with others before the pause began: the round of
		// records that failed together pauses once.
		return
	}
	d.pauseFor = min(max(first, 2*d.pauseFor), most)
	d.pauseUntil.Store(now.Add(d.pauseFor).UnixNano())
}

// resume ends the pause of the backlog, a request having been delivered,
// and reports whether the backlog was paused.
func (d *disk) resume() bool {
	if d.pauseUntil.Load() == 0 {
		return false
	}
	d.pauseMu.Lock()
	defer d.pauseMu.Unlock()
	d.pauseFor = 0
	d.pauseUntil.Store(0)
	return true
}

// paused returns how long the backlog stays paused after now, or 0.
func (d *disk) paused(now time.Time) time.Duration {
	if until := d.pauseUntil.Load(); until > now.UnixNano() {
		return time.Duration(until - now.UnixNano())
	}
	return 0
}

// openSpool opens the configured spool and accounts what it recovered. A
// spool that cannot be opened is a configuration problem reported once;
// the exporter then runs with memory only.
func (e *Exporter) openSpool() {
	s, rec, err := spool.Open(spool.Config{Dir: e.cfg.spoolDir, MaxBytes: e.cfg.spoolMaxBytes})
	if err != nil {
		e.report.Log(zapcore.ErrorLevel, "tracekeeper exporter: disk spool unavailable; spans that do not fit in memory will be dropped",
			zap.Error(err))
		return
	}
	d := &disk{
		s:       s,
		newest:  e.cfg.spoolOrder == FreshFirst,
		handoff: make(chan *otlpenc.Request, 1024),
		budget:  handoffBudget(e.cfg),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	d.corrupt.Store(int64(rec.Corrupt))
	e.books.Recover(rec.Spans, rec.Resent)
	if rec.Records > 0 || rec.Corrupt > 0 {
		e.report.Note(fmt.Sprintf("disk spool: %d spans recovered from %s (%d possibly sent before), %d torn or corrupt records, segment tails or segments skipped (%d bytes)",
			rec.Spans, e.cfg.spoolDir, rec.Resent, rec.Corrupt, rec.CorruptBytes))
	}
	for _, err := range rec.Skipped {
		e.report.Warn("disk spool segment skipped", fmt.Sprintf("%v; the segment is left as it is", err))
	}
	e.disk = d
	go e.writeSpool()
}

// handoffBudget is the memory kept for spans waiting for the disk: a
// quarter of the budget, and at least one request.
func handoffBudget(c config) int64 {
	return max(int64(c.memoryBudget)/4, int64(c.maxRequestBytes))
}

// toSpool hands a request that memory could not take to the spool's
// writer; false when the spool cannot take it (broken, or its hand-off
// full), the request then still the caller's.
func (e *Exporter) toSpool(r *otlpenc.Request) bool {
	d := e.disk
	if d == nil || d.broken.Load() {
		return false
	}
	spans, size := r.Spans(), memory(r)
	if d.held.Add(size) > d.budget {
		d.held.Add(-size)
		return false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		d.held.Add(-size)
		return false
	}
	// Counted before the hand-off: once sent, r is the writer's.
	e.books.Spool(spans, 0)
	select {
	case d.handoff <- r:
	default:
		d.held.Add(-size)
		e.books.DropSpooled(spans, ledger.QueueFull)
		e.dropped(r, ledger.QueueFull, errMemoryFull)
	}
	return true
}

// writeSpool is the spool's writer goroutine.
func (e *Exporter) writeSpool() {
	d := e.disk
	defer close(d.done)
	var tick <-chan time.Time
	if e.cfg.spoolSync > 0 {
		t := e.cfg.clock.NewTicker(e.cfg.spoolSync)
		defer t.Stop()
		tick = t.Chan()
	}
	for {
		select {
		case r, ok := <-d.handoff:
			if !ok {
				// Shutdown: every sender has stopped; what was handed
				// over is written, then the spool closed.
				if err := d.s.Close(); err != nil && !e.lost(err) {
					e.report.Warn("disk spool close failed", err.Error())
				}
				return
			}
			e.writeRecord(r)
			if e.cfg.spoolSync == 0 {
				e.syncSpool()
			}
		case <-tick:
			e.syncSpool()
		}
	}
}

// writeRecord appends r to the spool and releases it. Its spans are
// already counted spooled; a failed write drops them.
func (e *Exporter) writeRecord(r *otlpenc.Request) {
	d := e.disk
	spans, size := r.Spans(), memory(r)
	err := d.s.Append(r.Bytes(), spans)
	d.held.Add(-size)
	if err == nil {
		r.Release()
		d.signal()
		return
	}
	e.lost(err)
	e.notKept(spans, err)
	reason := ledger.SpoolFull
	if !errors.Is(err, spool.ErrFull) {
		reason = ledger.SpoolError
		if d.broken.CompareAndSwap(false, true) {
			e.report.Warn("disk spool failed", fmt.Sprintf("going on with memory only: %v", err))
		}
	}
	e.books.DropSpooled(spans, reason)
	e.dropped(r, reason, fmt.Errorf("exporter: %w", err))
}

func (e *Exporter) syncSpool() {
	if err := e.disk.s.Sync(); err != nil && !e.lost(err) {
		e.report.Warn("disk spool sync failed", err.Error())
	}
}

// lost accounts the spans the spool lost with a vanished directory or
// segment, when err reports some (see spool.LostError), and turns the
// spool off: what its directory holds now is not what it wrote. It
// reports whether err was such a loss.
func (e *Exporter) lost(err error) bool {
	var le *spool.LostError
	if !errors.As(err, &le) {
		return false
	}
	// Off first, so that once the loss is counted nothing more goes to
	// the spool.
	if e.disk.broken.CompareAndSwap(false, true) {
		e.report.Warn("disk spool failed", fmt.Sprintf("going on with memory only: %v", err))
	}
	e.spoolLost(le.Spans, fmt.Errorf("exporter: %w", err))
	return true
}

// spoolLost drops spooled spans whose only copy vanished with the spool's
// directory or segment.
func (e *Exporter) spoolLost(spans int, cause error) {
	e.books.DropSpooled(spans, ledger.SpoolError)
	e.report.Dropped(int(ledger.SpoolError), int64(spans), cause)
	e.notKept(spans, spool.ErrVanished)
}

// notKept counts, in Shutdown's error, spans that could not be kept on
// disk for the next start, once Shutdown began, because the directory or
// a segment vanished (err).
func (e *Exporter) notKept(spans int, err error) {
	if e.stopping.Load() && errors.Is(err, spool.ErrVanished) {
		e.disk.lostInShutdown.Add(int64(spans))
	}
}

func (d *disk) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// backlog reports whether new spans must join the spool to keep the
// oldest-first order.
func (e *Exporter) backlog() bool {
	d := e.disk
	if d == nil || d.newest || d.broken.Load() {
		return false
	}
	return d.held.Load() > 0 || d.s.Backlog()
}

// spoolWaiting reports whether spans wait on disk, or on their way to it.
func (e *Exporter) spoolWaiting() bool {
	d := e.disk
	return d != nil && !d.broken.Load() && (d.held.Load() > 0 || d.s.Backlog())
}

// spoolBytes is the disk the spool uses.
func (e *Exporter) spoolBytes() int64 {
	return e.disk.s.DiskUsed()
}

// dispatchSpool is dispatch with a spool: memory first (it holds what is
// older than the backlog, or, fresh first, what is newer), then the
// spool's backlog, until the queue is closed and empty and either the
// backlog is sent or the Shutdown deadline has passed.
func (e *Exporter) dispatchSpool() {
	defer e.workers.Done()
	d := e.disk
	returnedAtClose := int64(-1) // d.returned when the queue was first seen closed
	for {
		e.requests <- struct{}{}
		slot := e.acquire()
		for {
			wake := e.books.Room()
			batch, spans, size, err := e.queue.TryTake(nil, 0, int64(e.cfg.maxRequestBytes))
			if err == nil && len(batch) > 0 && e.gaveUp.Load() {
				e.endUntried(batch, sender.Exhausted, errGaveUp) // to disk
				continue
			}
			if err == nil && len(batch) > 0 {
				e.books.Fly(spans, size)
				e.workers.Add(1)
				go e.deliver(slot, batch, spans, size)
				break
			}
			closed := errors.Is(err, queue.ErrClosed)
			if closed && returnedAtClose < 0 {
				returnedAtClose = d.returned.Load()
			}
			// Once Shutdown began, a record of the backlog that could not
			// be sent says the backend is unavailable: what is on disk
			// stays there for the next start instead of being sent again
			// and again until the deadline, which may never come.
			gaveUp := closed && (d.returned.Load() > returnedAtClose || e.gaveUp.Load())
			pause := d.paused(e.cfg.clock.Now())
			// A pause says the same: the last record read back went back.
			gaveUp = gaveUp || closed && pause > 0
			if !gaveUp && pause == 0 && e.hardCtx.Err() == nil && e.books.Fits(int64(e.cfg.maxRequestBytes)) {
				rec, payload, ok, rerr := d.s.Next(d.newest)
				if rerr != nil {
					d.corrupt.Add(1)
					e.books.Unspool(rec.Spans, 0)
					e.books.Finish(rec.Spans, 0, ledger.SpoolError)
					e.report.Dropped(int(ledger.SpoolError), int64(rec.Spans), fmt.Errorf("exporter: %w", rerr))
					continue
				}
				if ok {
					e.books.Unspool(rec.Spans, int64(cap(payload)))
					e.workers.Add(1)
					go e.deliverSpooled(slot, rec, payload)
					break
				}
			}
			// Once the queue is closed, the backlog is still sent until
			// the Shutdown deadline; then it stays on disk.
			if closed && (gaveUp || e.hardCtx.Err() != nil || !d.s.Backlog()) {
				e.limit.Release(slot)
				<-e.requests
				return
			}
			// Nothing to send: wait without the slot, which a request
			// resuming after a retry wait may need.
			e.limit.Release(slot)
			var resume <-chan time.Time
			if pause > 0 && d.s.Backlog() {
				resume = e.cfg.clock.After(pause)
			}
			select {
			case <-d.wake:
			case <-wake:
			case <-e.queueReady:
			case <-resume:
			case <-e.hardCtx.Done():
			}
			slot = e.acquire()
		}
	}
}

// deliverSpooled sends a record read back from the spool.
func (e *Exporter) deliverSpooled(slot limiter.Slot, rec spool.Record, payload []byte) {
	defer e.workers.Done()
	defer func() { <-e.requests }()
	held := int64(cap(payload))
	body := &transport.Body{Parts: [][]byte{payload}}
	if c, ok := e.client.(compressor); ok {
		if done, err := c.Compress(body); err == nil && done {
			body.Parts = nil
			e.books.Resize(body.Held() - held)
			held = body.Held()
		}
	}
	h := hooks{e: e, slot: slot, holding: true, spooled: true, whole: rec.Spans}
	start := e.cfg.clock.Now()
	last := e.send.Deliver(e.hardCtx, body, rec.Spans, &h)
	e.metrics.recordOperation(e.cfg.clock.Since(start), last)
	body.Release()
	e.books.Resize(-held)
	h.release()
	switch {
	case h.kept == rec.Spans && e.disk.s.Return(rec, h.sent):
		// Nothing of it delivered: back whole, counted Resent at the next
		// start only if it may have reached the backend, and sent again
		// after a pause.
		e.pause(e.cfg.clock.Now())
		e.disk.returned.Add(1)
		e.disk.signal()
	case h.kept == rec.Spans:
		// Its segment vanished while it was sent: this was its only copy.
		e.spoolLost(h.kept, fmt.Errorf("exporter: could not keep them on disk: %w", spool.ErrVanished))
	case h.kept > 0:
		// Split, and delivered (or dropped) in part: only what is left
		// goes back, never the whole record, which would send the rest
		// again.
		e.putBack(rec, h.parts, h.kept, h.sent)
	default:
		e.disk.s.Finish(rec)
		e.disk.resume()
	}
}

// putBack puts the parts of a split record that were not delivered,
// holding spans spans, back on disk in place of the record (see
// spool.Replace); sent says that they may have reached the backend. Spans
// it cannot keep are dropped with the spool's reason, as keep does.
func (e *Exporter) putBack(rec spool.Record, parts [][]byte, spans int, sent bool) {
	d := e.disk
	payload := parts[0]
	if len(parts) > 1 {
		// Encoded requests concatenate into one.
		payload = slices.Concat(parts...)
	}
	kept, err := d.s.Replace(rec, payload, spans, sent)
	if kept {
		d.returned.Add(1)
		d.signal()
		if err != nil {
			e.report.Warn("disk spool sync failed", err.Error())
		}
		return
	}
	reason := ledger.SpoolError
	switch {
	case errors.Is(err, spool.ErrFull):
		reason = ledger.SpoolFull
	case e.lost(err):
		// The directory vanished: lost accounted what went with it.
	case errors.Is(err, spool.ErrVanished), errors.Is(err, spool.ErrClosed):
		// The record's segment vanished, which the call that found it
		// reported; or the spool was closed.
	default:
		if d.broken.CompareAndSwap(false, true) {
			e.report.Warn("disk spool failed", fmt.Sprintf("going on with memory only: %v", err))
		}
	}
	e.books.DropSpooled(spans, reason)
	e.report.Dropped(int(reason), int64(spans), fmt.Errorf("exporter: could not keep them on disk: %w", err))
	e.notKept(spans, err)
}

// errNoSpool says that spans could not be kept because no spool takes
// them: there is none, or it failed before.
var errNoSpool = errors.New("exporter: no working spool")

// keep writes in-memory spans that could not be sent to the spool; sent
// says they may have reached the backend, so that the next start counts
// them as Resent. It returns errNoSpool when no spool takes them, and the
// spool's error, its drop reason, when writing them failed; a failed write
// (other than a full spool) turns the spool off, as the writer does.
func (e *Exporter) keep(body *transport.Body, spans int, sent bool) (ledger.Reason, error) {
	d := e.disk
	if d == nil || d.broken.Load() || body == nil {
		return 0, errNoSpool
	}
	plain, err := body.Plain()
	if err != nil {
		return ledger.SpoolError, err
	}
	write := d.s.Append
	if sent {
		write = d.s.AppendSent
	}
	switch err = write(plain, spans); {
	case err == nil:
		return 0, nil
	case errors.Is(err, spool.ErrFull):
		return ledger.SpoolFull, err
	}
	e.lost(err)
	e.notKept(spans, err)
	if d.broken.CompareAndSwap(false, true) {
		e.report.Warn("disk spool failed", fmt.Sprintf("going on with memory only: %v", err))
	}
	return ledger.SpoolError, err
}

// spoolCloseSlack bounds how long, past the Shutdown deadline, the spool's
// writer may take to write and sync what it was handed and release the
// directory.
const spoolCloseSlack = time.Second

// closeSpool stops the writer, which writes what it was handed, syncs and
// closes the spool; it waits for that until ctx is done and then for at
// most spoolCloseSlack more. It must be called once every sender has
// stopped.
func (e *Exporter) closeSpool(ctx context.Context) {
	d := e.disk
	if d == nil {
		return
	}
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.handoff)
	}
	d.mu.Unlock()
	select {
	case <-d.done:
		return
	case <-ctx.Done():
	}
	t := time.NewTimer(spoolCloseSlack)
	defer t.Stop()
	select {
	case <-d.done:
	case <-t.C:
		e.report.Warn("disk spool close", "the spool's writer was still busy after the Shutdown deadline; what it held may be lost")
	}
}

// spoolStats fills the spool's figures in s.
func (e *Exporter) spoolStats(s *Stats) {
	d := e.disk
	if d == nil {
		return
	}
	records, spans, disk := d.s.Usage()
	s.SpoolRecords, s.SpoolSpans, s.SpoolBytes = int64(records), int64(spans), disk
	s.SpoolBudget = e.cfg.spoolMaxBytes
	s.SpoolCorrupt = d.corrupt.Load()
}
