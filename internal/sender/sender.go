// Package sender delivers encoded OTLP requests: one attempt after another
// through a transport, with the per-attempt timeout, backoff between
// retries, and requests split in two when the backend refuses them as too
// large, until each part ends in exactly one Outcome.
//
// The sender owns no books: it tells its caller what happened through
// Hooks, and the caller accounts for it.
package sender

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
	"github.com/tracekeeper/tracekeeper/internal/retry"
	"github.com/tracekeeper/tracekeeper/internal/transport"
)

// Outcome is how the delivery of a request, or of a part of it, ended.
type Outcome int

const (
	// Exported: the backend accepted every span.
	Exported Outcome = iota
	// Rejected: the backend accepted the request but rejected some spans
	// (OTLP partial success); Result.Exported says how many it kept.
	Rejected
	// TooLarge: a request holding one span was refused as too large.
	TooLarge
	// Permanent: the backend refused the request for good.
	Permanent
	// Exhausted: retryable failures outlasted the retry budget.
	Exhausted
	// Abandoned: the context ended first (a Shutdown deadline).
	Abandoned
)

// ErrAbandoned is the cause of Abandoned results.
var ErrAbandoned = errors.New("shutdown deadline reached before the spans were sent")

// Result is the end of one request or part of one.
type Result struct {
	// Body is the request (the part of it) this result is about, for a
	// writer of dropped requests, valid during the Finished call only; nil
	// for Rejected, whose rejected spans are not known.
	Body     *transport.Body
	Spans    int
	Exported int
	Outcome  Outcome
	Err      error
	// Reached says that an attempt may have delivered these spans: one
	// that sent them, alone or in the request they were split from,
	// succeeded, or failed without an answer saying that the request was
	// not taken (see transport.Unreceived).
	Reached bool
}

// Hooks receive what happens during a delivery. They are called on the
// delivering goroutine and must not block.
type Hooks interface {
	// Attempted is called after each attempt.
	Attempted(retry bool, rtt time.Duration, resp transport.Response, err error)
	// Retrying is called before waiting delay to retry.
	Retrying(spans int, delay time.Duration, err error)
	// Resuming is called after a retry wait, just before the attempt it
	// waited for; it may block. When grow is not nil and, called once
	// Resuming is done blocking, returns true, it may add to the request's
	// body, up to the maximum request size, and returns the spans it
	// added.
	Resuming(grow func() bool) int
	// Finished is called exactly once for each part of the request,
	// which together hold all its spans.
	Finished(Result)
}

// Config configures a Sender.
type Config struct {
	Client transport.Client
	Retry  retry.Config
	// Timeout bounds each attempt; zero means only the context does.
	Timeout time.Duration
	Clock   clockwork.Clock
}

// Sender delivers requests. It is safe for concurrent use: a success of
// one delivery ends the retry waits of the others, so that a backlog
// drains as soon as the backend is back.
type Sender struct {
	cfg       Config
	recovered recovery

	// nextProbe is when a delivery waiting out a long backoff may next
	// try early, on behalf of all those waiting (see wait).
	probeMu   sync.Mutex
	nextProbe time.Time
}

// ProbeEvery is how often, at most, one of the deliveries waiting out a
// backoff longer than twice as long tries early: after a long outage,
// when every request in flight waits tens of seconds for its next
// attempt, the first one to find the backend back ends the others' waits
// too (a success ends every wait), so delivery resumes within about
// ProbeEvery of the backend's return instead of at the next backoff's
// end. One attempt per ProbeEvery, whatever the number of waiting
// deliveries, is all the extra load a down backend gets.
const ProbeEvery = time.Second

// New returns a Sender.
func New(cfg Config) *Sender {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	return &Sender{cfg: cfg}
}

// Last describes the final attempt of a delivery, for the operation's
// metric.
type Last struct {
	// Code is the status of the answer as the semantic conventions spell
	// it, empty when there was none.
	Code string
	// ErrType is empty on success, else the error.type of the failure.
	ErrType string
}

// Deliver sends body, holding spans spans, until every part of it has an
// outcome, reported through h. It returns when done, describing the last
// attempt. The caller keeps ownership of body; the parts a split makes are
// the sender's.
func (s *Sender) Deliver(ctx context.Context, body *transport.Body, spans int, h Hooks) Last {
	d := delivery{s: s, ctx: ctx, h: h, bo: s.cfg.Retry.Start(s.cfg.Clock.Now(), nil)}
	d.deliver(body, spans, false, false)
	return d.last
}

// delivery is one Deliver call: a backoff shared by all the parts of the
// request, so a refusal that keeps coming whatever the size is paced like
// any retry.
type delivery struct {
	s        *Sender
	ctx      context.Context
	h        Hooks
	bo       *retry.Backoff
	last     Last
	attempts int
}

// deliver sends parts, holding spans spans, until they have an outcome.
// split says that they are a part of a split request; reached that an
// attempt to send the request they were split from may have delivered
// them (see Result.Reached).
func (d *delivery) deliver(parts *transport.Body, spans int, split, reached bool) {
	s := d.s
	// finish ends parts with what the attempts said so far.
	finish := func(exported int, o Outcome, err error) {
		body := parts
		if o == Rejected {
			body = nil
		}
		d.finish(body, spans, exported, o, err, reached)
	}
	for {
		if d.ctx.Err() != nil {
			finish(0, Abandoned, ErrAbandoned)
			return
		}
		resp, err := d.attempt(parts)
		if err == nil || !transport.Unreceived(err) {
			reached = true
		}
		if err == nil {
			s.recovered.signal()
			rejected := int(min(max(resp.Rejected, 0), int64(spans)))
			if rejected > 0 {
				msg := resp.Message
				if msg == "" {
					msg = "no message"
				}
				finish(spans-rejected, Rejected,
					fmt.Errorf("backend rejected %d of %d spans: %s", rejected, spans, msg))
				return
			}
			finish(spans, Exported, nil)
			return
		}
		if d.ctx.Err() != nil {
			finish(0, Abandoned, ErrAbandoned)
			return
		}
		te := transport.Classify(err)
		switch te.Kind {
		case transport.TooLarge:
			if te.Paced && split {
				// Smaller and still refused: this may be a quota, not a
				// size. Wait as before a retry, then split further.
				if _, ok := d.pause(finish, spans, te, err, false); !ok {
					return
				}
			}
			if spans > 1 {
				if a, b, ok := halves(parts, spans); ok {
					d.deliver(a.Body, a.spans, true, reached)
					a.Release()
					d.deliver(b.Body, b.spans, true, reached)
					b.Release()
					return
				}
			}
			finish(0, TooLarge, err)
			return
		case transport.Permanent:
			finish(0, Permanent, err)
			return
		}
		// A whole request waiting to retry may take along what was
		// queued meanwhile; a part of a split may not.
		added, ok := d.pause(finish, spans, te, err, !split)
		if !ok {
			return
		}
		spans += added
		if d.bo.Spent(s.cfg.Clock.Now()) {
			// The wait for a slot outlasted the budget: no attempt starts
			// after it.
			finish(0, Exhausted, fmt.Errorf("giving up: %w", err))
			return
		}
	}
}

// pause waits before the next attempt, and reports the spans the hooks
// added to the request when grow is set; false when the request ended
// instead (budget spent or context done), its outcome reported through
// finish.
func (d *delivery) pause(finish func(int, Outcome, error), spans int, te *transport.Error, err error, grow bool) (int, bool) {
	s := d.s
	delay, ok := d.bo.Next(s.cfg.Clock.Now(), te.Throttle)
	if !ok {
		finish(0, Exhausted, fmt.Errorf("giving up: %w", err))
		return 0, false
	}
	d.h.Retrying(spans, delay, err)
	// A backend that asked for a delay gets it; otherwise another
	// delivery's success ends the wait early.
	if !s.wait(d.ctx, delay, te.Throttle == 0) {
		finish(0, Abandoned, ErrAbandoned)
		return 0, false
	}
	var young func() bool
	if grow {
		// Spans taken along share the request's budget: only a request
		// in the first half of it takes any.
		young = func() bool { return d.bo.Young(s.cfg.Clock.Now()) }
	}
	return d.h.Resuming(young), true
}

func (d *delivery) attempt(parts *transport.Body) (transport.Response, error) {
	s := d.s
	ctx := d.ctx
	// Without a timeout of its own, an attempt ends with the request's
	// budget. With one, it gets it whole: a last attempt cut to what the
	// budget has left would time out with the request on the wire, which
	// may have arrived, rather than be answered.
	timeout := s.cfg.Timeout
	if left, ok := d.bo.Left(s.cfg.Clock.Now()); ok && timeout <= 0 {
		timeout = max(left, time.Millisecond)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := s.cfg.Clock.Now()
	resp, err := s.cfg.Client.Send(ctx, parts)
	d.h.Attempted(d.attempts > 0, s.cfg.Clock.Since(start), resp, err)
	d.attempts++
	if err != nil {
		te := transport.Classify(err)
		d.last = Last{Code: te.Code, ErrType: te.Type()}
	} else {
		d.last = Last{Code: resp.Code}
	}
	return resp, err
}

func (d *delivery) finish(body *transport.Body, spans, exported int, o Outcome, err error, reached bool) {
	if o == Abandoned {
		d.last.ErrType = "shutdown"
	}
	d.h.Finished(Result{Body: body, Spans: spans, Exported: exported, Outcome: o, Err: err, Reached: reached})
}

// half is one half of a split request.
type half struct {
	*transport.Body
	spans int
}

// halves splits body in two requests of about half its spans each.
func halves(body *transport.Body, spans int) (a, b half, ok bool) {
	plain, err := body.Plain()
	if err != nil {
		return a, b, false
	}
	pa, pb, err := otlpenc.Split(plain)
	if err != nil {
		return a, b, false
	}
	na, err := otlpenc.CountSpans(pa)
	if err != nil || na <= 0 || na >= spans {
		return a, b, false
	}
	return half{&transport.Body{Parts: [][]byte{pa}}, na}, half{&transport.Body{Parts: [][]byte{pb}}, spans - na}, true
}

// wait blocks for d on the clock, or, when early is set, until a delivery
// succeeds or, for a d longer than twice ProbeEvery, until this delivery
// takes the turn to probe (see ProbeEvery); false if ctx ended first.
func (s *Sender) wait(ctx context.Context, d time.Duration, early bool) bool {
	if !early {
		return s.sleep(ctx, d, nil)
	}
	recovered := s.recovered.wait()
	if d <= 2*ProbeEvery {
		return s.sleep(ctx, d, recovered)
	}
	end := s.cfg.Clock.Now().Add(d)
	for {
		step := min(ProbeEvery, end.Sub(s.cfg.Clock.Now()))
		if step <= 0 {
			return true
		}
		if !s.sleep(ctx, step, recovered) {
			return false
		}
		select {
		case <-recovered:
			return true
		default:
		}
		if s.probeTurn(s.cfg.Clock.Now()) {
			return true
		}
	}
}

// sleep blocks for d on the clock, or until recovered is closed; false if
// ctx ended first.
func (s *Sender) sleep(ctx context.Context, d time.Duration, recovered <-chan struct{}) bool {
	t := s.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-recovered:
		return true
	case <-ctx.Done():
		return false
	}
}

// probeTurn reports whether the caller, at now, takes the turn to try
// early; one caller per ProbeEvery does.
func (s *Sender) probeTurn(now time.Time) bool {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if now.Before(s.nextProbe) {
		return false
	}
	s.nextProbe = now.Add(ProbeEvery)
	return true
}

// recovery lets deliveries waiting to retry learn that one succeeded.
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
