package limiter

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Unix(1000, 0)

// round runs one round trip's worth of requests: it fills every slot, says
// that more work waits, then ends them all at now with rtt and signal s.
func round(t *testing.T, l *Limiter, now time.Time, rtt time.Duration, s Signal) {
	t.Helper()
	n := l.Limit()
	slots := make([]Slot, n)
	for i := range slots {
		var err error
		if slots[i], err = l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	l.Waiting(now, 1000)
	for _, slot := range slots {
		l.Observe(slot, now, rtt, s)
		l.Release(slot)
	}
}

func TestSlowStartTriplesPerRoundTrip(t *testing.T) {
	l := New(Config{Min: 1, Max: 10000, Initial: 4})
	now := t0
	want := 4
	for i := range 5 {
		round(t, l, now, 500*time.Millisecond, Success)
		now = now.Add(500 * time.Millisecond)
		if want *= 3; l.Limit() != want {
			t.Fatalf("after %d round trips: limit %d, want %d", i+1, l.Limit(), want)
		}
	}
}

func TestCeilingAndFloor(t *testing.T) {
	l := New(Config{Min: 2, Max: 20, Initial: 4})
	now := t0
	for range 10 {
		round(t, l, now, 100*time.Millisecond, Success)
		now = now.Add(100 * time.Millisecond)
	}
	if l.Limit() != 20 {
		t.Fatalf("limit %d, want the ceiling 20", l.Limit())
	}
	for range 100 {
		round(t, l, now, 100*time.Millisecond, Backpressure)
		now = now.Add(time.Second)
	}
	if l.Limit() != 2 {
		t.Fatalf("limit %d, want the floor 2", l.Limit())
	}
}

func TestBackpressureShrinksOncePerRoundTrip(t *testing.T) {
	l := New(Config{Min: 1, Max: 1000, Initial: 100})
	now := t0
	round(t, l, now, 200*time.Millisecond, Success) // sets the round trip
	before := l.Limit()
	// A burst of refusals from requests sent together.
	round(t, l, now.Add(time.Millisecond), 200*time.Millisecond, Backpressure)
	if got, want := l.Limit(), int(float64(before)*0.9); got != want {
		t.Fatalf("after one burst: limit %d, want %d (one decrease)", got, want)
	}
	round(t, l, now.Add(time.Second), 200*time.Millisecond, Backpressure)
	if l.Limit() >= int(float64(before)*0.9) {
		t.Fatalf("a refusal one round trip later must shrink again: %d", l.Limit())
	}
}

func TestRecoveryIsAdditiveAfterCongestion(t *testing.T) {
	l := New(Config{Min: 1, Max: 1000, Initial: 10})
	now := t0
	round(t, l, now, 100*time.Millisecond, Success)
	round(t, l, now.Add(time.Second), 100*time.Millisecond, Backpressure)
	after := l.Limit()
	drop := now.Add(time.Second)
	// It holds for ten round trips after the decrease…
	for i := range 9 {
		round(t, l, drop.Add(time.Duration(i+1)*100*time.Millisecond), 100*time.Millisecond, Success)
	}
	if l.Limit() != after {
		t.Fatalf("limit %d moved during the cooldown from %d", l.Limit(), after)
	}
	// …then grows by one per round trip.
	now = drop.Add(time.Second)
	for i := range 5 {
		now = now.Add(100 * time.Millisecond)
		round(t, l, now, 100*time.Millisecond, Success)
		if l.Limit() > after+i+1 {
			t.Fatalf("limit %d grew faster than one per round trip from %d", l.Limit(), after)
		}
	}
	if l.Limit() < after+4 {
		t.Fatalf("limit %d did not recover from %d", l.Limit(), after)
	}
}

func TestRisingLatencyShrinks(t *testing.T) {
	l := New(Config{Min: 1, Max: 1000, Initial: 50})
	now := t0
	for range 20 {
		round(t, l, now, 100*time.Millisecond, Success)
		now = now.Add(100 * time.Millisecond)
	}
	high := l.Limit()
	for range 10 {
		round(t, l, now, 400*time.Millisecond, Success)
		now = now.Add(400 * time.Millisecond)
	}
	if l.Limit() >= high {
		t.Fatalf("limit %d did not shrink as the round trip quadrupled (was %d)", l.Limit(), high)
	}
}

func TestUnusedLimitDoesNotGrow(t *testing.T) {
	l := New(Config{Min: 1, Max: 1000, Initial: 10})
	for i := range 50 {
		slot, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		l.Observe(slot, t0.Add(time.Duration(i)*time.Millisecond), time.Millisecond, Success)
		l.Release(slot)
	}
	if l.Limit() != 10 {
		t.Fatalf("limit %d grew while one slot of 10 was used", l.Limit())
	}
}

func TestRefusalsDoNotMeasureTheRoundTrip(t *testing.T) {
	l := New(Config{Min: 1, Max: 1000, Initial: 10})
	round(t, l, t0, 100*time.Millisecond, Success)
	round(t, l, t0.Add(time.Second), time.Millisecond, Backpressure)
	if l.RTT() != 100*time.Millisecond {
		t.Fatalf("rtt %v: a fast refusal moved the round trip", l.RTT())
	}
}

// A backend that serves four requests at once and refuses the rest: the
// limit settles there and refusals stay a few percent.
func TestSettlesAtABackendsCapacity(t *testing.T) {
	l := New(Config{Min: 1, Max: 1000, Initial: 16})
	now := t0
	served, refused := 0, 0
	for range 2000 {
		n := l.Limit()
		slots := make([]Slot, n)
		for i := range slots {
			slots[i], _ = l.Acquire(context.Background())
		}
		l.Waiting(now, 1000)
		for i, slot := range slots {
			if i < 4 {
				served++
				l.Observe(slot, now, 100*time.Millisecond, Success)
			} else {
				refused++
				l.Observe(slot, now, time.Millisecond, Backpressure)
			}
			l.Release(slot)
		}
		now = now.Add(100 * time.Millisecond)
		if served+refused > 1000 && served+refused < 1100 {
			served, refused = 0, 0 // steady state from here
		}
	}
	if share := float64(refused) / float64(served+refused); share > 0.05 || l.Limit() < 4 || l.Limit() > 5 {
		t.Fatalf("limit %d, refused %.1f%% in steady state", l.Limit(), 100*share)
	}
}

func TestNeutralOutcomesChangeNothing(t *testing.T) {
	l := New(Config{Min: 1, Max: 1000, Initial: 10})
	round(t, l, t0, time.Second, Neutral)
	if l.Limit() != 10 || l.RTT() != 0 {
		t.Fatalf("limit %d rtt %v", l.Limit(), l.RTT())
	}
}

func TestAcquireWaitsForASlot(t *testing.T) {
	l := New(Config{Min: 1, Max: 1, Initial: 1})
	slot, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Acquire(ctx); err == nil {
		t.Fatal("a full limiter granted a slot")
	}
	got := make(chan error)
	go func() { _, err := l.Acquire(context.Background()); got <- err }()
	l.Release(slot)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// fill takes every free slot.
func fill(t *testing.T, l *Limiter) []Slot {
	t.Helper()
	var slots []Slot
	for {
		slot, ok, _ := l.TryAcquire()
		if !ok {
			return slots
		}
		slots = append(slots, slot)
	}
}

func TestProbeDoublesWhileNothingAnswers(t *testing.T) {
	l := New(Config{Min: 1, Max: 100, Initial: 4})
	fill(t, l)
	now := t0
	if l.Waiting(now, 1000) {
		t.Fatal("the first probe grew the limit; it should only start the interval")
	}
	if l.Waiting(now.Add(ProbeInterval-time.Millisecond), 1000) || l.Limit() != 4 {
		t.Fatalf("grew before an interval passed: limit %d", l.Limit())
	}
	for _, want := range []int{8, 16, 32, 64, 100, 100} {
		before := l.Limit()
		now = now.Add(ProbeInterval)
		grew := l.Waiting(now, 1000)
		fill(t, l)
		if l.Limit() != want || grew != (want != before) {
			t.Fatalf("limit %d → %d (grew %v), want %d", before, l.Limit(), grew, want)
		}
	}
	if l.Limit() != 100 {
		t.Fatalf("limit %d, want the ceiling 100", l.Limit())
	}
}

func TestProbeWaitsWhileAnswersComeBack(t *testing.T) {
	l := New(Config{Min: 1, Max: 100, Initial: 4})
	slots := fill(t, l)
	now := t0
	l.Waiting(now, 1000)
	for i := range 3 {
		now = now.Add(ProbeInterval)
		// An answer of any kind, even a failure that says nothing about
		// load, means the backend is there: growth waits for successes.
		l.Observe(slots[i], now, 0, Neutral)
		if l.Waiting(now, 1000) || l.Limit() != 4 {
			t.Fatalf("probe %d grew the limit to %d although an answer came back", i, l.Limit())
		}
	}
}

func TestWaitingNeedsALimitInFullUse(t *testing.T) {
	l := New(Config{Min: 1, Max: 100, Initial: 4})
	slot, _, _ := l.TryAcquire()
	for i := range 5 {
		if l.Waiting(t0.Add(time.Duration(i)*ProbeInterval), 1000) {
			t.Fatalf("probe %d grew a limit with free slots", i)
		}
	}
	l.Release(slot)
	if l.Limit() != 4 {
		t.Fatalf("limit %d", l.Limit())
	}
}

func TestProbeEndsWithSlowStart(t *testing.T) {
	l := New(Config{Min: 1, Max: 100, Initial: 8})
	slots := fill(t, l)
	l.Observe(slots[0], t0, time.Millisecond, Backpressure)
	l.Release(slots[0])
	fill(t, l)
	limit := l.Limit()
	for i := range 5 {
		if l.Waiting(t0.Add(time.Duration(i+1)*ProbeInterval), 1000) {
			t.Fatal("probe grew the limit after congestion")
		}
	}
	if l.Limit() != limit {
		t.Fatalf("limit %d, want %d", l.Limit(), limit)
	}
}

func TestProbeWakesAWaiter(t *testing.T) {
	l := New(Config{Min: 1, Max: 100, Initial: 1})
	fill(t, l)
	_, ok, wake := l.TryAcquire()
	if ok {
		t.Fatal("slot granted beyond the limit")
	}
	l.Waiting(t0, 1000)
	if !l.Waiting(t0.Add(ProbeInterval), 1000) {
		t.Fatal("probe did not grow the limit")
	}
	select {
	case <-wake:
	default:
		t.Fatal("the waiter was not woken by the larger limit")
	}
	if _, ok, _ := l.TryAcquire(); !ok {
		t.Fatal("no slot after the limit grew")
	}
}

func TestFullLimitGrowsOnlyWithWorkWaiting(t *testing.T) {
	l := New(Config{Min: 1, Max: 1000, Initial: 4})
	now := t0
	for range 5 {
		// Every slot in use, but nothing more waits: the load fits.
		slots := fill(t, l)
		for _, slot := range slots {
			l.Observe(slot, now, 100*time.Millisecond, Success)
			l.Release(slot)
		}
		now = now.Add(100 * time.Millisecond)
	}
	if l.Limit() != 4 {
		t.Fatalf("limit %d grew with no work waiting", l.Limit())
	}
	round(t, l, now, 100*time.Millisecond, Success)
	if l.Limit() != 12 {
		t.Fatalf("limit %d after a round with work waiting, want 12", l.Limit())
	}
}

func TestProbeGrowsByWhatWaits(t *testing.T) {
	l := New(Config{Min: 1, Max: 1000, Initial: 16})
	fill(t, l)
	now := t0
	l.Waiting(now, 3)
	for _, tc := range []struct{ waiting, want int }{{3, 19}, {1, 20}, {100, 40}} {
		now = now.Add(ProbeInterval)
		l.Waiting(now, tc.waiting)
		fill(t, l)
		if l.Limit() != tc.want {
			t.Fatalf("%d requests waiting: limit %d, want %d (grow by what waits, at most double)", tc.waiting, l.Limit(), tc.want)
		}
	}
}

// TestFastRefusalsDoNotCrowdOutCapacity drives the limiter against a
// simulated backend that serves capacity requests at once, each for
// 100 ms, and refuses the rest within a millisecond, with always more
// work waiting. A refused attempt frees its slot at once, as a request
// waiting to retry does; the limiter must still keep the backend's
// capacity busy and refusals rare, from the start and in steady state.
func TestFastRefusalsDoNotCrowdOutCapacity(t *testing.T) {
	for _, capacity := range []int{1, 4, 16, 100} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			const (
				serve  = 100 * time.Millisecond
				refuse = time.Millisecond
				length = 60 * time.Second
			)
			l := New(Config{Min: 1, Max: 1000, Initial: 16})
			type attempt struct {
				slot     Slot
				end      time.Time
				accepted bool
			}
			var flying []attempt
			now, serving := t0, 0
			var served, refused, firstRefused int
			for now.Before(t0.Add(length)) {
				for {
					slot, ok, _ := l.TryAcquire()
					if !ok {
						l.Waiting(now, 1000)
						break
					}
					a := attempt{slot: slot, end: now.Add(refuse)}
					if serving < capacity {
						serving++
						a.accepted, a.end = true, now.Add(serve)
					}
					flying = append(flying, a)
				}
				// The next attempt to end.
				next := 0
				for i := range flying {
					if flying[i].end.Before(flying[next].end) {
						next = i
					}
				}
				a := flying[next]
				flying = slices.Delete(flying, next, next+1)
				now = a.end
				steady := now.Sub(t0) >= length/2
				if a.accepted {
					serving--
					l.Observe(a.slot, now, serve, Success)
					if steady {
						served++
					}
				} else {
					l.Observe(a.slot, now, refuse, Backpressure)
					switch {
					case steady:
						refused++
					case now.Sub(t0) < 2*time.Second:
						firstRefused++
					}
				}
				l.Release(a.slot)
			}
			most := float64(capacity) * (length / 2).Seconds() / serve.Seconds()
			share := float64(refused) / float64(served+refused)
			t.Logf("capacity %d: served %d of %.0f in steady state, refused %.1f%%; %d refused in the first 2 s; limit %d",
				capacity, served, most, 100*share, firstRefused, l.Limit())
			if float64(served) < 0.97*most {
				t.Errorf("served %d in steady state, less than 97%% of the %.0f the backend could serve", served, most)
			}
			if share > 0.05 {
				t.Errorf("refused %.1f%% of attempts in steady state", 100*share)
			}
			if firstRefused > 2*16+2*capacity { // two bursts of the initial limit, and some
				t.Errorf("%d attempts refused in the first 2 s", firstRefused)
			}
		})
	}
}

// TestOneOverTheCapacityStepsBackByOne has five requests in flight
// against a backend that holds four: two complete, and the attempt sent
// in their place is refused on arrival while the backend still counts one
// of them. Three others are in flight, but the backend held four: the
// limit steps back to four, not to the three it saw.
func TestOneOverTheCapacityStepsBackByOne(t *testing.T) {
	l := New(Config{Min: 1, Max: 100, Initial: 5})
	slots := fill(t, l)
	if len(slots) != 5 {
		t.Fatalf("%d slots", len(slots))
	}
	for _, s := range slots[:2] {
		l.Observe(s, t0, 100*time.Millisecond, Success)
		l.Release(s)
	}
	next, ok, _ := l.TryAcquire()
	if !ok {
		t.Fatal("no slot")
	}
	l.Observe(next, t0.Add(time.Millisecond), time.Millisecond, Backpressure)
	l.Release(next)
	if got := l.Limit(); got != 4 {
		t.Fatalf("limit %d after one refusal at five, want 4", got)
	}
}

// A timeout is congestion, never a refusal on arrival: before any request
// was accepted too, every round of timeouts multiplies the limit by 0.9
// instead of dropping it to the attempts still in flight. Backpressure in
// the same state is taken for a refusal on arrival.
func TestTimeoutsDecreaseMultiplicatively(t *testing.T) {
	l := New(Config{Min: 1, Max: 100, Initial: 16})
	now := t0
	for _, want := range []int{14, 12, 10, 9} {
		round(t, l, now, 10*time.Second, Timeout)
		now = now.Add(10 * time.Second)
		if l.Limit() != want {
			t.Fatalf("limit %d after a round of timeouts, want %d", l.Limit(), want)
		}
	}
	b := New(Config{Min: 1, Max: 100, Initial: 16})
	round(t, b, t0, 10*time.Second, Backpressure)
	if b.Limit() >= 14 {
		t.Fatalf("limit %d after a round of backpressure before any acceptance, want it held to what was in flight", b.Limit())
	}
}
