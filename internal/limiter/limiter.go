// Package limiter decides how many requests may be in flight to a
// backend, adapting to what the backend sustains.
//
// The algorithm is additive-increase, multiplicative-decrease on round-trip
// time and backpressure, in the spirit of TCP congestion control and
// Vector's Adaptive Request Concurrency:
//
//   - Slow start: while nothing has signalled congestion, every request
//     that completes with a flat round trip while the limit was in full
//     use, with a whole request's worth of work waiting, raises the limit
//     by two, which triples it per round trip. A far
//     backend reaches the concurrency its latency needs within a few
//     round trips instead of one step per round trip.
//   - Probing a far backend: in slow start, a limit in full use, with
//     work waiting, for ProbeInterval while no request has come back at
//     all grows by as many requests as wait, at most doubling, so that a
//     backend a second away gets the concurrency its latency needs before
//     its first answer could say so. Any answer, refusals and errors
//     included, stops the probing until the limit is in full use again
//     with nothing coming back; the memory budget in front of the limiter
//     bounds what the probing can put in flight.
//   - Congestion avoidance: after a decrease, the limit holds for ten
//     round trips and at least 32 requests accepted while it was in full
//     use, then grows by one per round trip's worth of completions, so
//     that against a backend that refuses past a fixed capacity it stays
//     at that capacity most of the time.
//   - A congestion signal (backpressure: HTTP 429, 503, gRPC
//     RESOURCE_EXHAUSTED, UNAVAILABLE with an answer; a timeout, which is
//     never taken for a refusal on arrival; or a
//     round trip rising well above its long-term mean) multiplies the
//     limit by 0.9, at most once per round trip and only for an attempt
//     sent after the previous decrease, so that one burst of refusals
//     from requests sent together counts once.
//   - A refusal on arrival, one that comes back in under a quarter of the
//     accepted requests' round trip (or before any was accepted), says
//     how much the backend holds instead: the other attempts still in
//     flight. The limit drops to that count, but not below half of what
//     it was before the decrease; the first such refusal with all other
//     slots in flight, or all but one, steps it back by one. A refusal
//     frees its slot at once: without this, against a backend that
//     serves N requests at once and refuses the rest, the slots above N
//     would turn into a stream of refusals for as many round trips as the
//     multiplicative decrease takes to come down to N. With nothing else
//     in flight, a refusal says nothing of the capacity and the decrease
//     is multiplicative.
//
// The limit stays within [Min, Max]. Other failures (connection refused,
// permanent errors) neither raise nor lower it: they say nothing about
// how much concurrency the backend can take.
package limiter

import (
	"context"
	"math"
	"sync"
	"time"
)

// Signal classifies the end of one request for the limiter.
type Signal int

const (
	// Success: the backend answered and accepted.
	Success Signal = iota
	// Backpressure: the backend is overloaded (throttled, unavailable).
	Backpressure
	// Neutral: an outcome that says nothing about load.
	Neutral
	// Timeout: the attempt timed out. Congestion, like Backpressure, but
	// never a refusal on arrival, however fast: the decrease is
	// multiplicative.
	Timeout
)

// Config bounds a Limiter.
type Config struct {
	// Min and Max bound the limit; Initial is where it starts.
	Min, Max, Initial int
}

// Limiter is a concurrency limit with its slots. It is safe for concurrent
// use; time is passed in so that tests need no clock.
type Limiter struct {
	cfg Config

	mu       sync.Mutex
	limit    float64
	inFlight int
	// next numbers the slots as they are taken; cutSeq is the last one
	// taken before the latest decrease, and cutFrom the limit before it.
	next    uint64
	cutSeq  uint64
	cutFrom float64
	// completions counts accepted requests since the latest decrease.
	completions int
	// saturations counts the moments the limit was in full use with a
	// request's worth of work waiting (Waiting); a request
	// in flight at such a moment may raise the limit when it completes.
	saturations uint64
	slowStart   bool
	rttShort    float64 // EWMA of recent round trips, seconds
	rttLong     float64 // EWMA over a longer horizon: the baseline
	lastDrop    time.Time
	// answered is set by every answer and cleared by Waiting: a probe
	// interval with no answer is one in which nothing was learnt.
	answered  bool
	lastProbe time.Time
	wake      chan struct{} // closed when a slot frees
}

const (
	alphaShort = 0.25
	alphaLong  = 0.02
	// tolerance is how far the recent round trip may rise above the
	// baseline before it counts as congestion: ×1.5 and 5 ms.
	tolerance      = 1.5
	toleranceFloor = 5 * time.Millisecond
	decrease       = 0.9
	// slowStartGrowth is what each request that completes in full use
	// adds to the limit in slow start: the limit triples per round trip,
	// so that a backend a second away gets the 400 requests in flight that
	// 200,000 spans/s need within three round trips of the start.
	slowStartGrowth = 2
	// ProbeInterval is how long a limit in full use must go without any
	// answer before slow start doubles it (see Waiting).
	ProbeInterval = 100 * time.Millisecond
	// cooldown is how many round trips the limit holds after a decrease
	// before growing again.
	cooldown = 10
	// cooldownCompletions is how many accepted requests, at least, the
	// hold after a decrease lasts, so that with a capacity of one or two
	// the refusals stay a few percent of the requests.
	cooldownCompletions = 32
	// fastRefusal: a refusal faster than this fraction of the accepted
	// requests' round trip was refused on arrival (see held).
	fastRefusal = 0.25
)

// New returns a Limiter.
func New(cfg Config) *Limiter {
	cfg.Min = max(cfg.Min, 1)
	cfg.Max = max(cfg.Max, cfg.Min)
	cfg.Initial = min(max(cfg.Initial, cfg.Min), cfg.Max)
	return &Limiter{cfg: cfg, limit: float64(cfg.Initial), slowStart: true}
}

// Slot is a place in flight, from Acquire to Release.
type Slot struct{ saturations, seq uint64 }

// Acquire waits for a free slot, or until ctx is done.
func (l *Limiter) Acquire(ctx context.Context) (Slot, error) {
	for {
		slot, ok, wake := l.TryAcquire()
		if ok {
			return slot, nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Slot{}, ctx.Err()
		}
	}
}

// TryAcquire takes a free slot if there is one; otherwise it returns a
// channel that is closed when one may have freed or the limit changed.
func (l *Limiter) TryAcquire() (slot Slot, ok bool, wake <-chan struct{}) {
	var fresh chan struct{}
	for {
		l.mu.Lock()
		if l.inFlight < int(l.limit) {
			l.next++
			slot := Slot{l.saturations, l.next}
			l.inFlight++
			l.mu.Unlock()
			return slot, true, nil
		}
		if l.wake == nil && fresh != nil {
			l.wake = fresh
		}
		if w := l.wake; w != nil {
			l.mu.Unlock()
			return Slot{}, false, w
		}
		// Nobody waits yet: make the channel without the lock, which
		// ExportSpans takes too (Waiting), and look again.
		l.mu.Unlock()
		fresh = make(chan struct{})
	}
}

// Waiting tells the limiter, at now, that work enough for requests whole
// requests (at least one) waits for a slot. Only then is a limit in full use short of what the
// load needs: requests in flight at such a moment raise the limit in slow
// start when they complete, and a limit the load keeps full while a
// request's worth waits grows to carry it, not to send every small batch
// on its own.
//
// In slow start, when no request has come back since the previous call at
// least ProbeInterval ago, Waiting also raises the limit by requests, at
// most doubling it (and up to Max), and reports true: a backend that has
// not answered yet has said nothing about the concurrency it takes, and
// waiting for its first answer would leave a far one with the initial
// limit for a whole round trip. Growing by what waits, not more, keeps
// every new slot a whole request to carry.
func (l *Limiter) Waiting(now time.Time, requests int) bool {
	l.mu.Lock()
	grew := l.waiting(now, requests)
	var w chan struct{}
	if grew {
		w = l.wakeLocked()
	}
	l.mu.Unlock()
	wake(w)
	return grew
}

// waiting is Waiting with l.mu held; it reports whether the limit grew.
func (l *Limiter) waiting(now time.Time, requests int) bool {
	if l.inFlight < int(l.limit) {
		l.lastProbe = time.Time{}
		return false
	}
	l.saturations++
	if !l.slowStart {
		return false
	}
	if l.answered || l.lastProbe.IsZero() {
		l.answered = false
		l.lastProbe = now
		return false
	}
	if now.Sub(l.lastProbe) < ProbeInterval {
		return false
	}
	l.lastProbe = now
	grown := min(l.limit+min(l.limit, float64(max(requests, 1))), float64(l.cfg.Max))
	if grown == l.limit {
		return false
	}
	l.limit = grown
	return true
}

// Observe adapts the limit to how one attempt of the request in slot
// ended at now, and how long its round trip took (zero without an
// answer). A request may make several attempts.
func (l *Limiter) Observe(slot Slot, now time.Time, rtt time.Duration, s Signal) {
	l.mu.Lock()
	l.observe(slot, now, rtt, s)
	w := l.wakeLocked()
	l.mu.Unlock()
	wake(w)
}

// Release frees a slot taken by Acquire.
func (l *Limiter) Release(Slot) {
	l.mu.Lock()
	l.inFlight--
	w := l.wakeLocked()
	l.mu.Unlock()
	wake(w)
}

// wakeLocked detaches the channel that waiters hold, for the caller to
// close once l.mu is released (wake); the next is made by the next caller
// that must wait. Nothing is allocated or woken with the lock held.
func (l *Limiter) wakeLocked() chan struct{} {
	w := l.wake
	l.wake = nil
	return w
}

// wake closes a channel detached by wakeLocked, if there was one.
func wake(w chan struct{}) {
	if w != nil {
		close(w)
	}
}

func (l *Limiter) observe(slot Slot, now time.Time, rtt time.Duration, s Signal) {
	limited := l.saturations > slot.saturations
	l.answered = true
	// Only accepted requests measure the round trip: a refusal comes back
	// faster than real work and would hide a backend's latency.
	if rtt > 0 && s == Success {
		r := rtt.Seconds()
		if l.rttLong == 0 {
			l.rttShort, l.rttLong = r, r
		} else {
			l.rttShort += alphaShort * (r - l.rttShort)
			l.rttLong += alphaLong * (r - l.rttLong)
		}
	}
	switch s {
	case Neutral:
		return
	case Success:
		if l.rising() {
			l.shrink(slot, now)
			return
		}
		if !limited {
			return
		}
		if l.slowStart {
			l.limit += slowStartGrowth
		} else {
			// After congestion, the limit that caused it is approached
			// again only once it has held for a while, so that refusals
			// stay a few percent of the requests.
			l.completions++
			if l.completions >= cooldownCompletions && now.Sub(l.lastDrop) >= cooldown*l.window() {
				l.limit += 1 / l.limit
			}
		}
		l.limit = min(l.limit, float64(l.cfg.Max))
	case Timeout:
		l.shrink(slot, now)
	case Backpressure:
		if l.refusedOnArrival(rtt) {
			l.held(slot, now)
		} else {
			l.shrink(slot, now)
		}
	}
}

// refusedOnArrival reports whether a refusal came back in a fraction of
// the accepted requests' round trip, or before any was accepted: the
// backend turned it away without working on it, as one at its capacity
// does.
func (l *Limiter) refusedOnArrival(rtt time.Duration) bool {
	return rtt > 0 && (l.rttLong == 0 || rtt.Seconds() < l.rttLong*fastRefusal)
}

// held lowers the limit to what a backend that refuses on arrival
// holds: the other attempts in flight when the refusal comes back. That
// count, not a fraction of the limit, is its capacity, but the refusals
// of the attempts sent since the latest decrease take the limit down by
// at most half of what it was before it. A first refusal with all the
// other slots, or all but one, in flight is one attempt over: the limit
// steps back by one.
// With no other attempt in flight the backend refuses all it gets, which
// says nothing of its capacity: the limit decreases multiplicatively.
func (l *Limiter) held(slot Slot, now time.Time) {
	others := l.inFlight - 1
	if others <= 0 {
		l.shrink(slot, now)
		return
	}
	l.slowStart = false
	if slot.seq > l.cutSeq {
		l.cut(now)
		if whole := math.Floor(l.limit); float64(others) >= whole-2 {
			// One attempt over the capacity: the limit the backend took
			// before the growth that overshot. A request it was just
			// finishing may still count there, so one fewer in flight
			// here says the same.
			l.limit = math.Max(float64(l.cfg.Min), math.Max(float64(others), whole-1))
			return
		}
	}
	floor := math.Max(float64(others), math.Floor(l.cutFrom/2))
	l.limit = math.Max(float64(l.cfg.Min), math.Min(l.limit, floor))
}

// cut marks a decrease at now: the attempts sent so far count for it, the
// limit before it is remembered, and the hold after it starts.
func (l *Limiter) cut(now time.Time) {
	l.lastDrop, l.cutSeq, l.cutFrom = now, l.next, l.limit
	l.completions = 0
}

// rising reports whether recent round trips are well above the baseline.
func (l *Limiter) rising() bool {
	if l.rttLong == 0 {
		return false
	}
	return l.rttShort > l.rttLong*tolerance+toleranceFloor.Seconds()
}

// window is one round trip, the long-term mean.
func (l *Limiter) window() time.Duration {
	return time.Duration(l.rttLong * float64(time.Second))
}

// shrink lowers the limit, at most once per round trip, and only for an
// attempt in a slot taken after the previous decrease.
func (l *Limiter) shrink(slot Slot, now time.Time) {
	l.slowStart = false
	if slot.seq <= l.cutSeq || !l.lastDrop.IsZero() && now.Sub(l.lastDrop) < l.window() {
		return
	}
	l.cut(now)
	l.limit = math.Max(float64(l.cfg.Min), math.Floor(l.limit*decrease))
	// The baseline follows a backend that got slower for good, so that
	// the limit does not keep shrinking against it.
	l.rttLong = (l.rttLong + l.rttShort) / 2
}

// Limit returns the current limit.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// RTT returns the recent round-trip time.
func (l *Limiter) RTT() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.rttShort * float64(time.Second))
}

// InFlight returns the slots in use.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight
}
