package retry

import (
	"testing"
	"time"
)

func TestNextGrowsAndCaps(t *testing.T) {
	cfg := Config{Enabled: true, InitialInterval: time.Second, MaxInterval: 4 * time.Second, MaxElapsedTime: time.Hour}
	start := time.Unix(1000, 0)
	// rnd = 0.5 puts the jittered delay exactly on the nominal interval.
	b := cfg.Start(start, func() float64 { return 0.5 })
	want := []time.Duration{
		time.Second,
		1500 * time.Millisecond,
		2250 * time.Millisecond,
		3375 * time.Millisecond,
		4 * time.Second,
		4 * time.Second,
	}
	now := start
	for i, w := range want {
		d, ok := b.Next(now, 0)
		if !ok || d != w {
			t.Fatalf("attempt %d: got (%v, %v), want (%v, true)", i, d, ok, w)
		}
		now = now.Add(d)
	}
}

func TestNextJitterBounds(t *testing.T) {
	cfg := Config{Enabled: true, InitialInterval: 2 * time.Second, MaxInterval: 2 * time.Second}
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{
		{0, time.Second},
		{0.999999, 3*time.Second - 2*time.Microsecond},
	} {
		b := cfg.Start(time.Time{}, func() float64 { return tc.r })
		d, ok := b.Next(time.Time{}, 0)
		if !ok || d < tc.want-time.Microsecond || d > tc.want+time.Microsecond {
			t.Errorf("r=%v: got (%v, %v), want about %v", tc.r, d, ok, tc.want)
		}
	}
}

func TestNextHonoursThrottle(t *testing.T) {
	cfg := Config{Enabled: true, InitialInterval: time.Second, MaxInterval: time.Second, MaxElapsedTime: time.Minute}
	b := cfg.Start(time.Time{}, func() float64 { return 0.5 })
	if d, ok := b.Next(time.Time{}, 7*time.Second); !ok || d != 7*time.Second {
		t.Fatalf("longer throttle: got (%v, %v), want (7s, true)", d, ok)
	}
	if d, ok := b.Next(time.Time{}, time.Millisecond); !ok || d != time.Second {
		t.Fatalf("shorter throttle: got (%v, %v), want (1s, true)", d, ok)
	}
}

func TestNextBudget(t *testing.T) {
	cfg := Config{Enabled: true, InitialInterval: 10 * time.Second, MaxInterval: 10 * time.Second, MaxElapsedTime: 25 * time.Second}
	start := time.Unix(0, 0)
	b := cfg.Start(start, func() float64 { return 0.5 })
	now := start
	var n int
	for {
		d, ok := b.Next(now, 0)
		if !ok {
			break
		}
		n++
		now = now.Add(d)
	}
	if n != 2 {
		t.Fatalf("got %d retries within a 25s budget of 10s steps, want 2", n)
	}
	// A throttle that overshoots the budget ends the sequence.
	b = cfg.Start(start, nil)
	if _, ok := b.Next(start, time.Minute); ok {
		t.Fatal("throttle beyond the budget should stop retrying")
	}
}

func TestDisabled(t *testing.T) {
	var cfg Config
	if _, ok := cfg.Start(time.Now(), nil).Next(time.Now(), 0); ok {
		t.Fatal("zero Config must not retry")
	}
}
