package exporter

import (
	"bytes"
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

// work is the loop of one worker: take batches, send them, account for the
// outcome, until the queue is closed and empty.
func (e *Exporter) work() {
	defer e.workers.Done()
	var (
		batch []entry
		parts [][]byte
	)
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
		// Encoded ExportTraceServiceRequests concatenate into one valid
		// request (resource_spans is a repeated field): the batches are
		// sent as the parts of one request, without copying.
		parts = parts[:0]
		for _, ent := range batch {
			parts = append(parts, ent.req.Bytes())
		}
		e.deliver(parts, spans)
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

// deliver sends the request made of parts (holding spans spans) until it
// is accepted, refused for good, out of retries, or abandoned at shutdown,
// and accounts for the outcome. A request refused as too large is split in
// two and each half delivered in turn.
func (e *Exporter) deliver(parts [][]byte, spans int) {
	ctx := e.hardCtx
	bo := e.retry.Start(e.cfg.clock.Now(), nil)
	for {
		if ctx.Err() != nil {
			e.finish(parts, spans, 0, ReasonShutdown, errShutdownDeadline)
			return
		}
		start := e.cfg.clock.Now()
		resp, err := e.client.Send(ctx, parts)
		e.metrics.recordAttempt(e.cfg.clock.Since(start), resp, err)
		e.stats.mu.Lock()
		e.stats.s.Requests++
		e.stats.mu.Unlock()

		if err == nil {
			e.recovered.signal()
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
				e.finish(parts, spans, spans, "", nil)
				if resp.Message != "" {
					e.report.warn("backend message", resp.Message)
				}
			}
			return
		}
		if ctx.Err() != nil {
			e.finish(parts, spans, 0, ReasonShutdown, errShutdownDeadline)
			return
		}
		te := transport.Classify(err)
		switch te.Kind {
		case transport.TooLarge:
			if spans > 1 {
				if a, b, serr := otlpenc.Split(bytes.Join(parts, nil)); serr == nil {
					if na, cerr := otlpenc.CountSpans(a); cerr == nil && na > 0 && na < spans {
						e.deliver([][]byte{a}, na)
						e.deliver([][]byte{b}, spans-na)
						return
					}
				}
			}
			e.finish(parts, spans, 0, ReasonTooLarge, fmt.Errorf("exporter: %w", err))
			return
		case transport.Permanent:
			e.finish(parts, spans, 0, ReasonPermanentError, fmt.Errorf("exporter: %w", err))
			return
		}
		delay, ok := bo.Next(e.cfg.clock.Now(), te.Throttle)
		if !ok {
			e.finish(parts, spans, 0, ReasonRetriesExhausted, fmt.Errorf("exporter: giving up: %w", err))
			return
		}
		e.stats.mu.Lock()
		e.stats.s.Retries++
		e.stats.mu.Unlock()
		e.report.warn("retrying", fmt.Sprintf("request of %d spans failed, retrying in %v: %v", spans, delay.Round(time.Millisecond), err))
		// A backend that asked for a delay gets it; otherwise another
		// worker's success ends the wait early, so that the queue drains as
		// soon as the backend is back.
		if !e.wait(ctx, delay, te.Throttle == 0) {
			e.finish(parts, spans, 0, ReasonShutdown, errShutdownDeadline)
			return
		}
	}
}

// wait blocks for d on the exporter's clock, or, when early is set, until
// a request succeeds; false if ctx ended first.
func (e *Exporter) wait(ctx context.Context, d time.Duration, early bool) bool {
	t := e.cfg.clock.NewTimer(d)
	defer t.Stop()
	var recovered <-chan struct{}
	if early {
		recovered = e.recovered.wait()
	}
	select {
	case <-t.Chan():
		return true
	case <-recovered:
		return true
	case <-ctx.Done():
		return false
	}
}

// recovery lets workers waiting to retry learn that a request succeeded.
type recovery struct {
	mu sync.Mutex
	ch chan struct{} // closed at the next success; nil when nobody waits
}

func (r *recovery) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

func (r *recovery) signal() {
	r.mu.Lock()
	if r.ch != nil {
		close(r.ch)
		r.ch = nil
	}
	r.mu.Unlock()
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
// request's parts for the dropped-spans writer.
func (e *Exporter) finish(parts [][]byte, spans, exported int, reason Reason, cause error) {
	dropped := int64(spans - exported)
	e.stats.mu.Lock()
	e.stats.s.InFlight -= int64(spans)
	e.stats.s.Exported += int64(exported)
	if dropped > 0 {
		*e.stats.s.Dropped.field(reason) += dropped
	}
	e.stats.mu.Unlock()
	if dropped > 0 {
		e.report.dropped(reason, dropped, cause, parts...)
	}
}
