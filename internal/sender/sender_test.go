package sender

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"

	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
	"github.com/tracekeeper/tracekeeper/internal/retry"
	"github.com/tracekeeper/tracekeeper/internal/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client answers each attempt with the next of its script (the last one
// repeats); a nil error is an acceptance.
type client struct {
	mu      sync.Mutex
	answers []func(spans int) (transport.Response, error)
	sizes   []int // spans per attempt
}

func (c *client) Send(_ context.Context, body *transport.Body) (transport.Response, error) {
	b, _ := body.Plain()
	n, _ := otlpenc.CountSpans(b)
	c.mu.Lock()
	c.sizes = append(c.sizes, n)
	a := c.answers[min(len(c.sizes)-1, len(c.answers)-1)]
	c.mu.Unlock()
	return a(n)
}
func (c *client) Close() error { return nil }

func ok(int) (transport.Response, error) { return transport.Response{Code: "200"}, nil }
func fail(e *transport.Error) func(int) (transport.Response, error) {
	return func(int) (transport.Response, error) { return transport.Response{}, e }
}

// record keeps what the hooks were told.
type record struct {
	mu       sync.Mutex
	results  []Result
	retries  []time.Duration
	attempts int
}

func (r *record) Attempted(bool, time.Duration, transport.Response, error) {
	r.mu.Lock()
	r.attempts++
	r.mu.Unlock()
}
func (r *record) Retrying(_ int, d time.Duration, _ error) {
	r.mu.Lock()
	r.retries = append(r.retries, d)
	r.mu.Unlock()
}
func (r *record) Resuming(func() bool) int { return 0 }
func (r *record) Finished(res Result)      { r.mu.Lock(); r.results = append(r.results, res); r.mu.Unlock() }

func request(t *testing.T, n int) *transport.Body {
	t.Helper()
	reqs, _ := otlpenc.NewEncoder().Encode(otlptest.Spans(n), 0, nil)
	if len(reqs) != 1 {
		t.Fatal("want one request")
	}
	return &transport.Body{Parts: [][]byte{reqs[0].Bytes()}}
}

var policy = retry.Config{Enabled: true, InitialInterval: time.Second, MaxInterval: time.Second, MaxElapsedTime: time.Minute}

func deliver(t *testing.T, c *client, clk clockwork.Clock, ctx context.Context, n int) (*record, Last) {
	t.Helper()
	s := New(Config{Client: c, Retry: policy, Clock: clk})
	rec := &record{}
	last := s.Deliver(ctx, request(t, n), n, rec)
	total := 0
	for _, r := range rec.results {
		total += r.Spans
	}
	if total != n {
		t.Fatalf("results cover %d of %d spans: %+v", total, n, rec.results)
	}
	return rec, last
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		answers []func(int) (transport.Response, error)
		want    Outcome
		last    Last
	}{
		{"accepted", []func(int) (transport.Response, error){ok}, Exported, Last{Code: "200"}},
		{"partial", []func(int) (transport.Response, error){func(int) (transport.Response, error) {
			return transport.Response{Rejected: 2, Code: "200"}, nil
		}}, Rejected, Last{Code: "200"}},
		{"permanent", []func(int) (transport.Response, error){fail(&transport.Error{Kind: transport.Permanent, Code: "400", Err: errors.New("bad")})},
			Permanent, Last{Code: "400", ErrType: "400"}},
		{"retried then accepted", []func(int) (transport.Response, error){fail(&transport.Error{Kind: transport.Retryable, Code: "503", Err: errors.New("busy")}), ok},
			Exported, Last{Code: "200"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clockwork.NewFakeClock()
			c := &client{answers: tc.answers}
			stop := drive(clk, 2*time.Second)
			rec, last := deliver(t, c, clk, context.Background(), 4)
			stop()
			if len(rec.results) != 1 || rec.results[0].Outcome != tc.want || last != tc.last {
				t.Fatalf("results %+v last %+v", rec.results, last)
			}
		})
	}
}

func TestTooLargeSplitsWithoutWaiting(t *testing.T) {
	c := &client{answers: []func(int) (transport.Response, error){func(n int) (transport.Response, error) {
		if n > 2 {
			return transport.Response{}, &transport.Error{Kind: transport.TooLarge, Code: "413", Err: errors.New("too large")}
		}
		return transport.Response{Code: "200"}, nil
	}}}
	rec, _ := deliver(t, c, clockwork.NewFakeClock(), context.Background(), 8)
	exported := 0
	for _, r := range rec.results {
		if r.Outcome != Exported {
			t.Fatalf("%+v", rec.results)
		}
		exported += r.Exported
	}
	if exported != 8 || len(rec.retries) != 0 {
		t.Fatalf("exported %d with %d waits; attempts %v", exported, len(rec.retries), c.sizes)
	}
}

func TestPacedRefusalsWaitBeforeEachFurtherSplit(t *testing.T) {
	clk := clockwork.NewFakeClock()
	c := &client{answers: []func(int) (transport.Response, error){
		fail(&transport.Error{Kind: transport.TooLarge, Paced: true, Code: "RESOURCE_EXHAUSTED", Err: errors.New("quota")}),
	}}
	s := New(Config{Client: c, Retry: policy, Clock: clk})
	rec := &record{}
	done := make(chan struct{})
	go func() { defer close(done); s.Deliver(context.Background(), request(t, 8), 8, rec) }()
	// The first refusal splits at once; the second (a half) waits.
	if err := clk.BlockUntilContext(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	attempts := len(c.sizes)
	c.mu.Unlock()
	if attempts != 2 {
		t.Fatalf("%d attempts before the first wait, want 2", attempts)
	}
	stop := drive(clk, time.Second+time.Second/2)
	<-done
	stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.results {
		if r.Outcome != Exhausted && r.Outcome != TooLarge {
			t.Fatalf("%+v", rec.results)
		}
	}
	if len(c.sizes) > 1+60 {
		t.Fatalf("%d attempts in a one-minute budget of one-second waits", len(c.sizes))
	}
}

// drive advances clk by step whenever something waits on it, until the
// returned stop is called.
func drive(clk *clockwork.FakeClock, step time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for clk.BlockUntilContext(ctx, 1) == nil {
			clk.Advance(step)
		}
	}()
	return func() { cancel(); <-done }
}

func TestAbandonedWhenTheContextEnds(t *testing.T) {
	clk := clockwork.NewFakeClock()
	c := &client{answers: []func(int) (transport.Response, error){
		fail(&transport.Error{Kind: transport.Retryable, Err: errors.New("refused")}),
	}}
	ctx, cancel := context.WithCancel(context.Background())
	s := New(Config{Client: c, Retry: policy, Clock: clk})
	rec := &record{}
	done := make(chan struct{})
	var last Last
	go func() { defer close(done); last = s.Deliver(ctx, request(t, 3), 3, rec) }()
	if err := clk.BlockUntilContext(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if len(rec.results) != 1 || rec.results[0].Outcome != Abandoned || !errors.Is(rec.results[0].Err, ErrAbandoned) || last.ErrType != "shutdown" {
		t.Fatalf("%+v %+v", rec.results, last)
	}
}

func TestASuccessEndsOtherRetryWaits(t *testing.T) {
	clk := clockwork.NewFakeClock()
	var calls sync.Mutex
	first := true
	c := &client{answers: []func(int) (transport.Response, error){func(int) (transport.Response, error) {
		calls.Lock()
		defer calls.Unlock()
		if first {
			first = false
			return transport.Response{}, &transport.Error{Kind: transport.Retryable, Err: errors.New("down")}
		}
		return transport.Response{Code: "200"}, nil
	}}}
	s := New(Config{Client: c, Retry: policy, Clock: clk})
	rec := &record{}
	done := make(chan struct{})
	go func() { defer close(done); s.Deliver(context.Background(), request(t, 2), 2, rec) }()
	if err := clk.BlockUntilContext(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	// Another delivery succeeds: the waiting one retries without the
	// clock moving.
	s.Deliver(context.Background(), request(t, 1), 1, &record{})
	<-done
	if len(rec.results) != 1 || rec.results[0].Outcome != Exported {
		t.Fatalf("%+v", rec.results)
	}
}

func TestOneProbePerIntervalWhileLongBackoffsWait(t *testing.T) {
	clk := clockwork.NewFakeClock()
	var down atomic.Bool
	down.Store(true)
	c := &client{answers: []func(int) (transport.Response, error){func(int) (transport.Response, error) {
		if down.Load() {
			return transport.Response{}, &transport.Error{Kind: transport.Retryable, Code: "503", Err: errors.New("unavailable")}
		}
		return transport.Response{Code: "200"}, nil
	}}}
	long := retry.Config{Enabled: true, InitialInterval: 20 * time.Second, MaxInterval: 20 * time.Second, MaxElapsedTime: time.Hour}
	s := New(Config{Client: c, Retry: long, Clock: clk})
	const n = 3
	recs := make([]*record, n)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = &record{}
		wg.Add(1)
		go func() { defer wg.Done(); s.Deliver(context.Background(), request(t, 1), 1, recs[i]) }()
	}
	attempts := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.sizes)
	}
	block := func() {
		t.Helper()
		if err := clk.BlockUntilContext(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	block()
	if got := attempts(); got != n {
		t.Fatalf("%d attempts, want %d", got, n)
	}
	// The backend stays down: each interval, one of the waiting
	// deliveries tries early, not all of them.
	for i := 1; i <= 3; i++ {
		clk.Advance(ProbeEvery)
		block()
		if got := attempts(); got != n+i {
			t.Fatalf("after %d intervals: %d attempts, want %d", i, got, n+i)
		}
	}
	// Back: the next probe succeeds and ends every other wait, long
	// before any backoff would have.
	down.Store(false)
	clk.Advance(ProbeEvery)
	wg.Wait()
	for i, r := range recs {
		if len(r.results) != 1 || r.results[0].Outcome != Exported {
			t.Fatalf("delivery %d: %+v", i, r.results)
		}
	}
	if got := attempts(); got != 2*n+3 {
		t.Fatalf("%d attempts, want %d: one probe per interval, then one each", got, 2*n+3)
	}
}

// Each part of a split request says whether an attempt may have delivered
// it: its own, or one of the request it was split from, that succeeded or
// failed without an answer that it was not taken.
func TestReachedFollowsEachPart(t *testing.T) {
	tooLarge := fail(&transport.Error{Kind: transport.TooLarge, Code: "413", Err: errors.New("too large")})
	refused := fail(&transport.Error{Kind: transport.Retryable, Code: "503", Err: errors.New("down")})
	gateway := fail(&transport.Error{Kind: transport.Retryable, Code: "504", Err: errors.New("gateway timeout")})
	noAnswer := fail(&transport.Error{Kind: transport.Retryable, Err: context.DeadlineExceeded})
	type part struct {
		outcome Outcome
		reached bool
	}
	tests := []struct {
		name    string
		answers []func(int) (transport.Response, error) // one per attempt
		want    []part
	}{
		{"refused whole, one half delivered, the other refused",
			[]func(int) (transport.Response, error){tooLarge, ok, refused},
			[]part{{Exported, true}, {Exhausted, false}}},
		{"one half unanswered, the other refused",
			[]func(int) (transport.Response, error){tooLarge, noAnswer, refused},
			[]part{{Exhausted, true}, {Exhausted, false}}},
		{"the whole may have arrived before it was refused as too large",
			[]func(int) (transport.Response, error){gateway, tooLarge, ok, refused},
			[]part{{Exported, true}, {Exhausted, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &client{answers: tc.answers}
			clk := clockwork.NewFakeClock()
			// Retries only for the whole request's first answer: the
			// policy allows one wait, which drive ends within the budget.
			s := New(Config{Client: c, Retry: retry.Config{Enabled: true, InitialInterval: time.Second, MaxElapsedTime: 1600 * time.Millisecond}, Clock: clk})
			stop := drive(clk, 1500*time.Millisecond)
			rec := &record{}
			s.Deliver(context.Background(), request(t, 8), 8, rec)
			stop()
			var got []part
			for _, r := range rec.results {
				got = append(got, part{r.Outcome, r.Reached})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("parts %v, want %v; attempts of %v spans", got, tc.want, c.sizes)
			}
		})
	}
}

// resuming is a record whose Resuming stands for a wait for a slot that
// lasts block on the clock, and which says whether it was let grow.
type resuming struct {
	record
	clk   *clockwork.FakeClock
	block time.Duration
	grew  []bool
}

func (r *resuming) Resuming(grow func() bool) int {
	r.clk.Advance(r.block)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.grew = append(r.grew, grow != nil && grow())
	return 0
}

// The retry budget is the total time spent on a request: no attempt
// starts after it, even when the wait for a slot outlasts it, and an
// attempt's timeout ends with it.
func TestNoAttemptAfterTheBudget(t *testing.T) {
	down := fail(&transport.Error{Kind: transport.Retryable, Code: "503", Err: errors.New("down")})
	c := &client{answers: []func(int) (transport.Response, error){down}}
	clk := clockwork.NewFakeClock()
	s := New(Config{Client: c, Retry: retry.Config{Enabled: true, InitialInterval: time.Second, MaxElapsedTime: 10 * time.Second}, Clock: clk})
	stop := drive(clk, 2*time.Second)
	rec := &resuming{clk: clk, block: 20 * time.Second} // the slot comes after the budget
	s.Deliver(context.Background(), request(t, 4), 4, rec)
	stop()
	if rec.attempts != 1 || len(rec.results) != 1 || rec.results[0].Outcome != Exhausted {
		t.Fatalf("%d attempts, results %+v: want one attempt, then the spans exhausted", rec.attempts, rec.results)
	}
}

type deadlines struct {
	client
	left []time.Duration // what each attempt's ctx had left when it began
}

func (d *deadlines) Send(ctx context.Context, body *transport.Body) (transport.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		d.left = append(d.left, time.Until(dl))
	} else {
		d.left = append(d.left, -1)
	}
	return d.client.Send(ctx, body)
}

// Without a timeout of its own, an attempt ends with the budget; with
// one, it gets it whole.
func TestAttemptTimeoutEndsWithTheBudget(t *testing.T) {
	down := fail(&transport.Error{Kind: transport.Retryable, Code: "503", Err: errors.New("down")})
	c := &deadlines{client: client{answers: []func(int) (transport.Response, error){down}}}
	clk := clockwork.NewFakeClock()
	s := New(Config{Client: c, Clock: clk,
		Retry: retry.Config{Enabled: true, InitialInterval: time.Second, MaxInterval: time.Second, MaxElapsedTime: 3 * time.Second}})
	stop := drive(clk, 2*time.Second)
	s.Deliver(context.Background(), request(t, 4), 4, &record{})
	stop()
	if len(c.left) != 2 {
		t.Fatalf("attempts with %v left, want two", c.left)
	}
	for i, left := range c.left {
		// 3 s at first, then what the budget had left after a 2 s wait.
		if max := 3*time.Second - time.Duration(i)*2*time.Second; left <= 0 || left > max {
			t.Errorf("attempt %d had %v left, want at most %v", i, left, max)
		}
	}

	c = &deadlines{client: client{answers: []func(int) (transport.Response, error){down}}}
	s = New(Config{Client: c, Timeout: time.Hour, Clock: clk,
		Retry: retry.Config{Enabled: true, InitialInterval: time.Second, MaxInterval: time.Second, MaxElapsedTime: 3 * time.Second}})
	stop = drive(clk, 2*time.Second)
	s.Deliver(context.Background(), request(t, 4), 4, &record{})
	stop()
	for i, left := range c.left {
		if left < 59*time.Minute {
			t.Errorf("with a timeout of an hour, attempt %d had %v left", i, left)
		}
	}
}

// A request retried in the first half of its budget may take along what
// was queued; later it may not, so that spans it would take get at least
// half a budget.
func TestGrowsOnlyInTheFirstHalfOfTheBudget(t *testing.T) {
	down := fail(&transport.Error{Kind: transport.Retryable, Code: "503", Err: errors.New("down")})
	c := &client{answers: []func(int) (transport.Response, error){down}}
	clk := clockwork.NewFakeClock()
	s := New(Config{Client: c, Clock: clk,
		Retry: retry.Config{Enabled: true, InitialInterval: time.Second, MaxInterval: time.Second, MaxElapsedTime: 10 * time.Second}})
	stop := drive(clk, 2*time.Second)
	rec := &resuming{clk: clk}
	s.Deliver(context.Background(), request(t, 4), 4, rec)
	stop()
	// Waits end at 2, 4, 6, 8 and 10 s (where the budget ends the
	// delivery): young at the first two.
	if fmt.Sprint(rec.grew) != "[true true false false false]" {
		t.Fatalf("let grow %v, want [true true false false false]", rec.grew)
	}
}
