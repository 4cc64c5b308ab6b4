package exporter

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tracekeeper/tracekeeper/internal/ledger"
	"github.com/tracekeeper/tracekeeper/internal/sender"
	"github.com/tracekeeper/tracekeeper/internal/transport"
)

// work is the loop of one worker: take batches, deliver them, until the
// queue is closed and empty.
func (e *Exporter) work() {
	defer e.workers.Done()
	var (
		batch []entry
		parts [][]byte
	)
	h := hooks{e}
	for {
		var (
			spans int
			size  int64
			err   error
		)
		batch, spans, size, err = e.queue.Take(context.Background(), batch[:0], 0, int64(e.cfg.maxRequestBytes))
		if err != nil {
			return // closed and drained
		}
		e.books.Fly(spans, size)
		// Encoded ExportTraceServiceRequests concatenate into one valid
		// request (resource_spans is a repeated field): the batches are
		// sent as the parts of one request, without copying.
		parts = parts[:0]
		for _, ent := range batch {
			parts = append(parts, ent.req.Bytes())
		}
		start := e.cfg.clock.Now()
		last := e.send.Deliver(e.hardCtx, parts, spans, h)
		e.metrics.recordOperation(e.cfg.clock.Since(start), last)
		clear(parts)
		for i := range batch {
			e.release(batch[i])
			batch[i] = entry{}
		}
	}
}

// release returns a finished entry's buffer and marks it done for
// ForceFlush.
func (e *Exporter) release(ent entry) {
	seq := ent.seq
	ent.req.Release()
	e.flushes.end(seq)
}

// hooks account for what the sender reports.
type hooks struct{ e *Exporter }

var _ sender.Hooks = hooks{}

func (h hooks) Attempted(retry bool, resp transport.Response, err error) {
	e := h.e
	e.books.Attempt(retry)
	if err == nil {
		if msg := resp.Message; msg != "" && resp.Rejected == 0 {
			e.report.Warn("backend message", msg)
		}
		if down, dropped, ok := e.outage.end(e.cfg.clock.Now(), e.books.Snapshot().DroppedTotal()); ok {
			e.report.Note(fmt.Sprintf("delivery resumed after %v; %d spans dropped meanwhile",
				down.Round(time.Millisecond), dropped))
		}
		return
	}
	if transport.Classify(err).Kind == transport.Retryable {
		e.outage.begin(e.cfg.clock.Now(), e.books.Snapshot().DroppedTotal())
	}
}

func (h hooks) Retrying(spans int, delay time.Duration, err error) {
	if h.e.hardCtx.Err() != nil {
		return
	}
	h.e.report.Warn("retrying", fmt.Sprintf("request of %d spans failed, retrying in %v: %v",
		spans, delay.Round(time.Millisecond), err))
}

func (h hooks) Finished(r sender.Result) {
	h.e.finished(r)
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
// dropped, with the request for the dropped-spans writer.
func (e *Exporter) finished(r sender.Result) {
	reason := outcomeReason[r.Outcome]
	e.books.Finish(r.Spans, r.Exported, reason)
	if dropped := r.Spans - r.Exported; dropped > 0 {
		e.report.Dropped(int(reason), int64(dropped), fmt.Errorf("exporter: %w", r.Err))
		e.report.WriteDropped(r.Parts...)
	}
}

// outage remembers when deliveries started failing, so that the fallback
// logger can say when, and at what cost, they resumed.
type outage struct {
	mu      sync.Mutex
	since   time.Time
	dropped int64 // spans dropped before the outage began
}

func (o *outage) begin(now time.Time, dropped int64) {
	o.mu.Lock()
	if o.since.IsZero() {
		o.since, o.dropped = now, dropped
	}
	o.mu.Unlock()
}

func (o *outage) end(now time.Time, dropped int64) (time.Duration, int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return 0, 0, false
	}
	d, n := now.Sub(o.since), dropped-o.dropped
	o.since = time.Time{}
	return d, n, true
}
