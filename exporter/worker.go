package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
	"github.com/tracekeeper/tracekeeper/internal/transport"
)

// errShutdownDeadline is the cause recorded for spans abandoned when the
// Shutdown context ends.
var errShutdownDeadline = errors.New("exporter: shutdown deadline reached before the spans were sent")

// bodyPool holds the buffers in which queued batches are joined into one
// request.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// work is the loop of one worker: take batches, send them, account for the
// outcome, until the queue is closed and empty.
func (e *Exporter) work() {
	defer e.workers.Done()
	var batch []entry
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
		e.toFlight(spans, size)
		e.sendBatch(batch, spans)
		for i := range batch {
			e.release(batch[i])
			batch[i] = entry{}
		}
	}
}

// sendBatch joins the batch into one request and delivers it.
func (e *Exporter) sendBatch(batch []entry, spans int) {
	if len(batch) == 1 {
		e.deliver(batch[0].req.Bytes(), spans)
		return
	}
	// Encoded ExportTraceServiceRequests concatenate into one valid
	// request: resource_spans is a repeated field.
	bp := bodyPool.Get().(*[]byte)
	body := (*bp)[:0]
	for _, ent := range batch {
		body = append(body, ent.req.Bytes()...)
	}
	e.deliver(body, spans)
	*bp = body[:0]
	bodyPool.Put(bp)
}

// release returns a finished entry's buffer and marks it done for
// ForceFlush.
func (e *Exporter) release(ent entry) {
	seq := ent.seq
	ent.req.Release()
	e.flushes.end(seq)
}

// deliver sends body (holding spans spans) until it is accepted, refused
// for good, out of retries, or abandoned at shutdown, and accounts for the
// outcome. A request refused as too large is split in two and each half
// delivered in turn.
func (e *Exporter) deliver(body []byte, spans int) {
	ctx := e.hardCtx
	bo := e.retry.Start(e.cfg.clock.Now(), nil)
	for {
		if ctx.Err() != nil {
			e.finish(body, spans, 0, ReasonShutdown, errShutdownDeadline)
			return
		}
		start := e.cfg.clock.Now()
		resp, err := e.client.Send(ctx, body)
		e.metrics.recordAttempt(e.cfg.clock.Since(start), resp, err)
		e.stats.mu.Lock()
		e.stats.s.Requests++
		e.stats.mu.Unlock()

		if err == nil {
			rejected := int(min(max(resp.Rejected, 0), int64(spans)))
			if rejected > 0 {
				msg := resp.Message
				if msg == "" {
					msg = "no message"
				}
				// Which spans were rejected is unknown: none is written out.
				e.finish(nil, spans, spans-rejected, ReasonRejected,
					fmt.Errorf("exporter: backend rejected %d of %d spans: %s", rejected, spans, msg))
			} else {
				e.finish(body, spans, spans, "", nil)
				if resp.Message != "" {
					e.report.warn("backend message", resp.Message)
				}
			}
			return
		}
		if ctx.Err() != nil {
			e.finish(body, spans, 0, ReasonShutdown, errShutdownDeadline)
			return
		}
		te := transport.Classify(err)
		switch te.Kind {
		case transport.TooLarge:
			if spans > 1 {
				if a, b, serr := otlpenc.Split(body); serr == nil {
					na, _ := otlpenc.CountSpans(a)
					e.deliver(a, na)
					e.deliver(b, spans-na)
					return
				}
			}
			e.finish(body, spans, 0, ReasonTooLarge, fmt.Errorf("exporter: %w", err))
			return
		case transport.Permanent:
			e.finish(body, spans, 0, ReasonPermanentError, fmt.Errorf("exporter: %w", err))
			return
		}
		delay, ok := bo.Next(e.cfg.clock.Now(), te.Throttle)
		if !ok {
			e.finish(body, spans, 0, ReasonRetriesExhausted, fmt.Errorf("exporter: giving up: %w", err))
			return
		}
		e.stats.mu.Lock()
		e.stats.s.Retries++
		e.stats.mu.Unlock()
		e.report.warn("retrying", fmt.Sprintf("request of %d spans failed, retrying in %v: %v", spans, delay.Round(time.Millisecond), err))
		if !e.wait(ctx, delay) {
			e.finish(body, spans, 0, ReasonShutdown, errShutdownDeadline)
			return
		}
	}
}

// wait blocks for d on the exporter's clock; false if ctx ended first.
func (e *Exporter) wait(ctx context.Context, d time.Duration) bool {
	t := e.cfg.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}

// toFlight moves spans taken by a worker from the queued to the in-flight
// state.
func (e *Exporter) toFlight(spans int, size int64) {
	e.stats.mu.Lock()
	e.stats.s.Queued -= int64(spans)
	e.stats.s.QueueBytes -= size
	e.stats.s.InFlight += int64(spans)
	e.stats.mu.Unlock()
}

// finish accounts the outcome of in-flight spans: exported of them were
// accepted, the rest are dropped for reason. Drops are reported, with the
// request body for the dropped-spans writer.
func (e *Exporter) finish(body []byte, spans, exported int, reason Reason, cause error) {
	dropped := int64(spans - exported)
	e.stats.mu.Lock()
	e.stats.s.InFlight -= int64(spans)
	e.stats.s.Exported += int64(exported)
	if dropped > 0 {
		*e.stats.s.Dropped.field(reason) += dropped
	}
	e.stats.mu.Unlock()
	if dropped > 0 {
		e.report.dropped(reason, dropped, cause, body)
	}
}
