// Package retry computes the delays between attempts to send a request:
// exponential backoff with jitter, a server-provided throttle honoured, and a
// total budget of elapsed time.
//
// The package does not sleep or read the clock: callers pass the current
// time in, so the policy is tested without waiting.
package retry

import (
	"math/rand/v2"
	"time"
)

// Config is a retry policy. The zero value disables retries.
type Config struct {
	// Enabled turns retries on.
	Enabled bool
	// InitialInterval is the delay before the first retry.
	InitialInterval time.Duration
	// MaxInterval caps the delay between two attempts (before jitter).
	MaxInterval time.Duration
	// MaxElapsedTime is the total time budget from the first attempt after
	// which no further attempt is made. Zero means no budget other than the
	// caller's context.
	MaxElapsedTime time.Duration
}

const (
	multiplier = 1.5
	jitter     = 0.5 // the delay is drawn uniformly from [d*(1-jitter), d*(1+jitter)]
)

// Backoff tracks the attempts made for one request.
type Backoff struct {
	cfg      Config
	start    time.Time
	interval time.Duration
	rand     func() float64
}

// Start begins a backoff sequence for a request first attempted at now.
// rnd returns values in [0, 1); nil means math/rand/v2's Float64.
func (c Config) Start(now time.Time, rnd func() float64) *Backoff {
	if rnd == nil {
		rnd = rand.Float64
	}
	return &Backoff{cfg: c, start: now, interval: c.InitialInterval, rand: rnd}
}

// Next reports how long to wait before the next attempt, given the current
// time and the delay the server asked for (zero if none). It returns false
// when retries are disabled or the next attempt would start after the
// elapsed-time budget.
//
// A server-provided throttle replaces the computed delay when it is longer,
// as the OTLP specification asks for Retry-After and RetryInfo.
func (b *Backoff) Next(now time.Time, throttle time.Duration) (time.Duration, bool) {
	if !b.cfg.Enabled {
		return 0, false
	}
	d := b.interval
	if d <= 0 {
		d = 0
	} else {
		delta := float64(d) * jitter
		d = time.Duration(float64(d) - delta + b.rand()*2*delta)
	}
	if throttle > d {
		d = throttle
	}
	if b.cfg.MaxElapsedTime > 0 && now.Add(d).Sub(b.start) > b.cfg.MaxElapsedTime {
		return 0, false
	}
	next := time.Duration(float64(b.interval) * multiplier)
	if b.cfg.MaxInterval > 0 && next > b.cfg.MaxInterval {
		next = b.cfg.MaxInterval
	}
	b.interval = next
	return d, true
}

// Left returns the time left in the elapsed-time budget at now, and false
// when there is no budget.
func (b *Backoff) Left(now time.Time) (time.Duration, bool) {
	if b.cfg.MaxElapsedTime <= 0 {
		return 0, false
	}
	return b.cfg.MaxElapsedTime - now.Sub(b.start), true
}

// Spent reports whether the elapsed-time budget is used up at now.
func (b *Backoff) Spent(now time.Time) bool {
	left, ok := b.Left(now)
	return ok && left <= 0
}

// Young reports whether at now the request is in the first half of its
// budget, or has none: spans that join it then get at least half a
// budget of retries.
func (b *Backoff) Young(now time.Time) bool {
	left, ok := b.Left(now)
	return !ok || left >= b.cfg.MaxElapsedTime/2
}
