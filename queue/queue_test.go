package queue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// watchParks makes q report on the returned channel every time a goroutine
// parks in Put or Take. It must be called before q is shared.
func watchParks[T any](q *Queue[T]) <-chan string {
	ch := make(chan string, 1024)
	q.onPark = func(op string) { ch <- op }
	return ch
}

// awaitPark waits until a goroutine has parked in op.
func awaitPark(t *testing.T, parks <-chan string, op string) {
	t.Helper()
	for got := range parks {
		if got == op {
			return
		}
	}
}

// checkAccounting compares the queue's counters with what the test expects.
func checkAccounting[T any](t *testing.T, q *Queue[T], entries, items int, bytes int64) {
	t.Helper()
	if got := q.Len(); got != entries {
		t.Errorf("Len() = %d, want %d", got, entries)
	}
	if got := q.Items(); got != items {
		t.Errorf("Items() = %d, want %d", got, items)
	}
	if got := q.Bytes(); got != bytes {
		t.Errorf("Bytes() = %d, want %d", got, bytes)
	}
}

func TestNewNeedsABudget(t *testing.T) {
	tests := []struct {
		name      string
		items     int
		bytes     int64
		wantPanic bool
	}{
		{"both", 10, 100, false},
		{"items only", 10, 0, false},
		{"bytes only", -1, 100, false},
		{"neither", 0, 0, true},
		{"negative", -5, -5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if got := recover() != nil; got != tt.wantPanic {
					t.Errorf("New(%d, %d) panicked = %v, want %v", tt.items, tt.bytes, got, tt.wantPanic)
				}
			}()
			q := New[int](tt.items, tt.bytes)
			items, bytes := q.Capacity()
			if items != max(tt.items, 0) || bytes != max(tt.bytes, 0) {
				t.Errorf("Capacity() = %d, %d", items, bytes)
			}
		})
	}
}

func TestTryPutBudgets(t *testing.T) {
	type put struct {
		items int
		bytes int64
		want  error
	}
	tests := []struct {
		name      string
		maxItems  int
		maxBytes  int64
		puts      []put
		wantLen   int
		wantItems int
		wantBytes int64
	}{
		{
			name:     "items budget",
			maxItems: 3,
			puts:     []put{{2, 0, nil}, {1, 0, nil}, {1, 0, ErrFull}},
			wantLen:  2, wantItems: 3,
		},
		{
			name:     "bytes budget",
			maxBytes: 100,
			puts:     []put{{1, 60, nil}, {1, 50, ErrFull}, {1, 40, nil}, {1, 1, ErrFull}},
			wantLen:  2, wantItems: 2, wantBytes: 100,
		},
		{
			name:     "both budgets",
			maxItems: 10, maxBytes: 100,
			puts:    []put{{5, 10, nil}, {6, 10, ErrFull}, {5, 91, ErrFull}, {5, 90, nil}, {1, 0, ErrFull}},
			wantLen: 2, wantItems: 10, wantBytes: 100,
		},
		{
			name:     "too many items alone",
			maxItems: 4, maxBytes: 100,
			puts:    []put{{5, 1, ErrTooLarge}, {4, 1, nil}},
			wantLen: 1, wantItems: 4, wantBytes: 1,
		},
		{
			name:     "too many bytes alone",
			maxItems: 4, maxBytes: 100,
			puts:    []put{{1, 101, ErrTooLarge}, {1, 100, nil}},
			wantLen: 1, wantItems: 1, wantBytes: 100,
		},
		{
			name:     "invalid costs",
			maxItems: 4, maxBytes: 100,
			puts:    []put{{0, 1, errInvalidCost}, {-1, 1, errInvalidCost}, {1, -1, errInvalidCost}, {1, 0, nil}},
			wantLen: 1, wantItems: 1,
		},
		{
			name:     "unlimited items never overflow",
			maxBytes: 100,
			puts:     []put{{math.MaxInt/2 + 1, 1, nil}, {math.MaxInt/2 + 1, 1, ErrFull}, {math.MaxInt / 2, 1, nil}, {1, 1, ErrFull}},
			wantLen:  2, wantItems: math.MaxInt, wantBytes: 2,
		},
		{
			name:     "unlimited bytes never overflow",
			maxItems: 4,
			puts:     []put{{1, math.MaxInt64/2 + 1, nil}, {1, math.MaxInt64/2 + 1, ErrFull}, {1, math.MaxInt64 / 2, nil}, {1, 1, ErrFull}},
			wantLen:  2, wantItems: 2, wantBytes: math.MaxInt64,
		},
		{
			name:     "zero bytes where only bytes bound the queue",
			maxBytes: 100,
			puts:     []put{{1, 0, errInvalidCost}, {1, 1, nil}},
			wantLen:  1, wantItems: 1, wantBytes: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New[int](tt.maxItems, tt.maxBytes)
			for i, p := range tt.puts {
				if err := q.TryPut(i, p.items, p.bytes); !errors.Is(err, p.want) || (p.want == nil && err != nil) {
					t.Errorf("put %d (%d items, %d bytes) = %v, want %v", i, p.items, p.bytes, err, p.want)
				}
			}
			checkAccounting(t, q, tt.wantLen, tt.wantItems, tt.wantBytes)
		})
	}
}

func TestErrTooLargeIsErrFull(t *testing.T) {
	if !errors.Is(ErrTooLarge, ErrFull) {
		t.Error("errors.Is(ErrTooLarge, ErrFull) = false")
	}
	if errors.Is(ErrFull, ErrTooLarge) {
		t.Error("errors.Is(ErrFull, ErrTooLarge) = true")
	}
	if err := New[int](1, 0).TryPut(0, 2, 0); err != ErrTooLarge {
		t.Errorf("TryPut = %v, want ErrTooLarge", err)
	}
}

func TestFIFOAcrossWrapAndGrowth(t *testing.T) {
	q := New[int](1000, 0)
	var want, got []int
	next := 0
	put := func(n int) {
		for range n {
			if err := q.TryPut(next, 1, 0); err != nil {
				t.Fatalf("TryPut(%d) = %v", next, err)
			}
			want = append(want, next)
			next++
		}
	}
	take := func(limit int) {
		out, items, _, err := q.TryTake(nil, limit, 0)
		if err != nil || items != len(out) {
			t.Fatalf("TryTake = %v, %d items, %v", out, items, err)
		}
		got = append(got, out...)
	}
	// Leave the head in the middle of the ring so that growth has to unwrap
	// it, then keep going.
	put(6)
	take(4)
	put(6)
	put(1)
	take(3)
	put(40)
	for q.Len() > 0 {
		take(7)
	}
	if !slices.Equal(got, want) {
		t.Errorf("taken %v, want %v", got, want)
	}
	checkAccounting(t, q, 0, 0, 0)
}

func TestRingGrowsNoFurtherThanItemBudget(t *testing.T) {
	q := New[int](5, 0)
	for i := range 5 {
		if err := q.TryPut(i, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(q.ring.buf); got != 5 {
		t.Errorf("ring size = %d, want 5", got)
	}
}

func TestTakeLimits(t *testing.T) {
	type cost struct {
		items int
		bytes int64
	}
	tests := []struct {
		name      string
		entries   []cost
		maxItems  int
		maxBytes  int64
		want      int // entries taken from the front
		wantItems int
		wantBytes int64
	}{
		{"no limits", []cost{{1, 10}, {2, 20}, {3, 30}}, 0, 0, 3, 6, 60},
		{"item limit", []cost{{1, 10}, {1, 10}, {1, 10}, {1, 10}}, 3, 0, 3, 3, 30},
		{"byte limit", []cost{{1, 10}, {1, 10}, {1, 10}}, 0, 25, 2, 2, 20},
		{"exact fit", []cost{{2, 10}, {2, 15}, {1, 1}}, 4, 25, 2, 4, 25},
		{"first always taken, items", []cost{{10, 1}, {1, 1}}, 4, 0, 1, 10, 1},
		{"first always taken, bytes", []cost{{1, 500}, {1, 1}}, 0, 100, 1, 1, 500},
		{"stops at first misfit, no skipping", []cost{{2, 1}, {5, 1}, {1, 1}}, 4, 0, 1, 2, 1},
		{"both limits, bytes bind", []cost{{1, 40}, {1, 40}, {1, 40}}, 10, 100, 2, 2, 80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New[int](100, 1000)
			var totalItems int
			var totalBytes int64
			for i, c := range tt.entries {
				if err := q.TryPut(i, c.items, c.bytes); err != nil {
					t.Fatal(err)
				}
				totalItems += c.items
				totalBytes += c.bytes
			}
			out, items, bytes, err := q.Take(context.Background(), make([]int, 0, 8), tt.maxItems, tt.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if want := []int{0, 1, 2, 3}[:tt.want]; !slices.Equal(out, want) {
				t.Errorf("took %v, want %v", out, want)
			}
			if items != tt.wantItems || bytes != tt.wantBytes {
				t.Errorf("took %d items, %d bytes, want %d, %d", items, bytes, tt.wantItems, tt.wantBytes)
			}
			checkAccounting(t, q, len(tt.entries)-tt.want, totalItems-items, totalBytes-bytes)
		})
	}
}

func TestTakeReusesDst(t *testing.T) {
	q := New[int](10, 0)
	dst := []int{7, 8, 9}
	_ = q.TryPut(1, 1, 0)
	out, _, _, err := q.TryTake(dst, 0, 0)
	if err != nil || !slices.Equal(out, []int{1}) || &out[0] != &dst[0] {
		t.Errorf("TryTake = %v, %v; want [1] in dst's array", out, err)
	}
}

// TestTakersGrowWithoutTheLock checks that a taker whose result must grow
// does so with the lock released, so that putters never wait for an
// allocation, and that what was put meanwhile is taken too.
func TestTakersGrowWithoutTheLock(t *testing.T) {
	for _, op := range []string{"TryTake", "Take", "Drain"} {
		t.Run(op, func(t *testing.T) {
			q := New[int](0, 1000)
			for i := range 20 {
				_ = q.TryPut(i, 1, 1)
			}
			grows := 0
			q.onGrow = func() {
				if !q.mu.TryLock() {
					t.Error("the lock is held while the result grows")
					return
				}
				q.mu.Unlock()
				if grows++; grows == 1 {
					for i := 20; i < 120; i++ {
						_ = q.TryPut(i, 1, 1)
					}
				}
			}
			var out []int
			switch op {
			case "TryTake":
				out, _, _, _ = q.TryTake(nil, 0, 0)
			case "Take":
				out, _, _, _ = q.Take(context.Background(), nil, 0, 0)
			case "Drain":
				out = q.Drain(nil)
			}
			if len(out) != 120 || out[119] != 119 || grows != 2 {
				t.Fatalf("took %d entries after %d grows, want all 120 after 2", len(out), grows)
			}
			checkAccounting(t, q, 0, 0, 0)
		})
	}
}

func TestTryTakeEmpty(t *testing.T) {
	q := New[int](10, 0)
	out, items, bytes, err := q.TryTake(nil, 0, 0)
	if len(out) != 0 || items != 0 || bytes != 0 || err != nil {
		t.Errorf("TryTake on empty open queue = %v, %d, %d, %v", out, items, bytes, err)
	}
	q.Close()
	if _, _, _, err := q.TryTake(nil, 0, 0); err != ErrClosed {
		t.Errorf("TryTake on empty closed queue = %v, want ErrClosed", err)
	}
}

func TestCloseDrainsThenReportsClosed(t *testing.T) {
	ctx := context.Background()
	q := New[string](10, 0)
	for _, v := range []string{"a", "b", "c"} {
		if err := q.TryPut(v, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	q.Close() // idempotent
	if err := q.TryPut("d", 1, 0); err != ErrClosed {
		t.Errorf("TryPut after Close = %v, want ErrClosed", err)
	}
	if err := q.Put(ctx, "d", 1, 0); err != ErrClosed {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	steps := []struct {
		want    []string
		wantErr error
	}{
		{[]string{"a", "b"}, nil},
		{[]string{"c"}, nil},
		{nil, ErrClosed},
		{nil, ErrClosed},
	}
	for i, s := range steps {
		out, _, _, err := q.Take(ctx, nil, 2, 0)
		if !slices.Equal(out, s.want) || err != s.wantErr {
			t.Errorf("Take %d = %v, %v; want %v, %v", i, out, err, s.want, s.wantErr)
		}
	}
	checkAccounting(t, q, 0, 0, 0)
}

func TestCloseReleasesWaiters(t *testing.T) {
	const n = 3
	full := New[int](2, 0)
	empty := New[int](2, 0)
	parks := make(chan string, 64)
	full.onPark = func(op string) { parks <- op }
	empty.onPark = full.onPark
	if err := full.TryPut(-1, 2, 0); err != nil {
		t.Fatal(err)
	}

	errs := make(chan error, 2*n)
	for i := range n {
		go func() { errs <- full.Put(context.Background(), i, 1, 0) }()
		go func() {
			_, _, _, err := empty.Take(context.Background(), nil, 0, 0)
			errs <- err
		}()
	}
	for range 2 * n {
		<-parks
	}
	full.Close()
	empty.Close()
	for range 2 * n {
		if err := <-errs; err != ErrClosed {
			t.Errorf("waiter returned %v, want ErrClosed", err)
		}
	}
	// What was queued before Close is still there to be drained.
	if got := full.Drain(nil); !slices.Equal(got, []int{-1}) {
		t.Errorf("Drain = %v, want [-1]", got)
	}
	checkAccounting(t, full, 0, 0, 0)
}

// TestCloseReachesEveryParkedTaker covers an entry and Close both landing
// before the parked takers run: the taker that gets the entry must pass the
// news of Close on to the other.
func TestCloseReachesEveryParkedTaker(t *testing.T) {
	q := New[int](10, 0)
	parked := make(chan struct{}, 2)
	release := make(chan struct{})
	q.onPark = func(string) {
		parked <- struct{}{}
		<-release // counted as parked, but not yet listening
	}
	type result struct {
		out []int
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			out, _, _, err := q.Take(context.Background(), nil, 0, 0)
			results <- result{out, err}
		}()
	}
	<-parked
	<-parked
	if err := q.TryPut(7, 1, 0); err != nil {
		t.Fatal(err)
	}
	q.Close()
	close(release)

	var got []int
	var closedErrs int
	for range 2 {
		r := <-results
		got = append(got, r.out...)
		if r.err == ErrClosed {
			closedErrs++
		}
	}
	if !slices.Equal(got, []int{7}) || closedErrs != 1 {
		t.Errorf("takers got %v and %d ErrClosed, want [7] and 1", got, closedErrs)
	}
}

func TestPutWaitsForRoom(t *testing.T) {
	ctx := context.Background()
	q := New[string](2, 0)
	parks := watchParks(q)
	_ = q.TryPut("a", 1, 0)
	_ = q.TryPut("b", 1, 0)

	done := make(chan error, 1)
	go func() { done <- q.Put(ctx, "c", 1, 0) }()
	awaitPark(t, parks, "put")
	if err := q.TryPut("x", 1, 0); err != ErrFull {
		t.Errorf("TryPut with a putter waiting = %v, want ErrFull", err)
	}
	if out, _, _, _ := q.Take(ctx, nil, 1, 0); !slices.Equal(out, []string{"a"}) {
		t.Errorf("Take = %v, want [a]", out)
	}
	if err := <-done; err != nil {
		t.Errorf("Put = %v, want nil", err)
	}
	if out, _, _, _ := q.Take(ctx, nil, 0, 0); !slices.Equal(out, []string{"b", "c"}) {
		t.Errorf("Take = %v, want [b c]", out)
	}
	checkAccounting(t, q, 0, 0, 0)
}

func TestPuttersAdmittedInArrivalOrder(t *testing.T) {
	ctx := context.Background()
	q := New[string](4, 0)
	parks := watchParks(q)
	for range 4 {
		_ = q.TryPut("old", 1, 0)
	}
	big := make(chan error, 1)
	small := make(chan error, 1)
	go func() { big <- q.Put(ctx, "big", 3, 0) }()
	awaitPark(t, parks, "put")
	go func() { small <- q.Put(ctx, "small", 1, 0) }()
	awaitPark(t, parks, "put")

	// One item of room: the small putter would fit, but it queued behind
	// the big one, and so does a newcomer.
	if out, _, _, _ := q.TryTake(nil, 1, 0); len(out) != 1 {
		t.Fatalf("TryTake = %v", out)
	}
	if err := q.TryPut("newcomer", 1, 0); err != ErrFull {
		t.Errorf("TryPut = %v, want ErrFull", err)
	}
	checkAccounting(t, q, 3, 3, 0)

	got, _, _, _ := q.Take(ctx, nil, 0, 0)
	if err := <-big; err != nil {
		t.Errorf("big Put = %v", err)
	}
	if err := <-small; err != nil {
		t.Errorf("small Put = %v", err)
	}
	if want := []string{"old", "old", "old"}; !slices.Equal(got, want) {
		t.Errorf("Take = %v, want %v", got, want)
	}
	if got := q.Drain(nil); !slices.Equal(got, []string{"big", "small"}) {
		t.Errorf("Drain = %v, want [big small]", got)
	}
}

func TestPutCancelled(t *testing.T) {
	t.Run("alone", func(t *testing.T) {
		q := New[int](1, 0)
		parks := watchParks(q)
		_ = q.TryPut(0, 1, 0)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- q.Put(ctx, 1, 1, 0) }()
		awaitPark(t, parks, "put")
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Put = %v, want context.Canceled", err)
		}
		checkAccounting(t, q, 1, 1, 0)
		// The queue is unharmed: room goes to new puts.
		_ = q.Drain(nil)
		if err := q.TryPut(2, 1, 0); err != nil {
			t.Errorf("TryPut after a cancelled Put = %v", err)
		}
	})
	t.Run("at the head, admitting the next", func(t *testing.T) {
		q := New[string](4, 0)
		parks := watchParks(q)
		for range 4 {
			_ = q.TryPut("old", 1, 0)
		}
		ctx, cancel := context.WithCancel(context.Background())
		big := make(chan error, 1)
		small := make(chan error, 1)
		go func() { big <- q.Put(ctx, "big", 4, 0) }()
		awaitPark(t, parks, "put")
		go func() { small <- q.Put(context.Background(), "small", 1, 0) }()
		awaitPark(t, parks, "put")
		_, _, _, _ = q.TryTake(nil, 1, 0)
		cancel()
		if err := <-big; err != context.Canceled {
			t.Errorf("big Put = %v, want context.Canceled", err)
		}
		if err := <-small; err != nil {
			t.Errorf("small Put = %v, want nil", err)
		}
		if got := q.Drain(nil); !slices.Equal(got, []string{"old", "old", "old", "small"}) {
			t.Errorf("Drain = %v", got)
		}
	})
}

func TestTakeWaitsForAnEntry(t *testing.T) {
	q := New[int](10, 0)
	parks := watchParks(q)
	type result struct {
		out []int
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, _, _, err := q.Take(context.Background(), nil, 0, 0)
		done <- result{out, err}
	}()
	awaitPark(t, parks, "take")
	if err := q.TryPut(42, 1, 0); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || !slices.Equal(r.out, []int{42}) {
		t.Errorf("Take = %v, %v; want [42]", r.out, r.err)
	}
}

func TestTakeCancelled(t *testing.T) {
	q := New[int](10, 0)
	parks := watchParks(q)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, _, err := q.Take(ctx, nil, 0, 0)
		done <- err
	}()
	awaitPark(t, parks, "take")
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Take = %v, want context.Canceled", err)
	}
	// A later put still reaches a later taker.
	_ = q.TryPut(1, 1, 0)
	if out, _, _, err := q.Take(context.Background(), nil, 0, 0); err != nil || !slices.Equal(out, []int{1}) {
		t.Errorf("Take = %v, %v", out, err)
	}
}

func TestDoneContextLeavesQueueAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		op   func(q *Queue[int]) error
	}{
		{"Put with room", func(q *Queue[int]) error { return q.Put(ctx, 9, 1, 0) }},
		{"Take with entries", func(q *Queue[int]) error {
			_, _, _, err := q.Take(ctx, nil, 0, 0)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New[int](10, 0)
			_ = q.TryPut(1, 1, 0)
			if err := tt.op(q); err != context.Canceled {
				t.Errorf("got %v, want context.Canceled", err)
			}
			checkAccounting(t, q, 1, 1, 0)
		})
	}
}

func TestRemovalReleasesReferences(t *testing.T) {
	tests := []struct {
		name   string
		remove func(q *Queue[*int]) int
	}{
		{"Take", func(q *Queue[*int]) int {
			out, _, _, _ := q.Take(context.Background(), nil, 2, 0)
			return len(out)
		}},
		{"TryTake", func(q *Queue[*int]) int {
			out, _, _, _ := q.TryTake(nil, 3, 0)
			return len(out)
		}},
		{"Drain", func(q *Queue[*int]) int { return len(q.Drain(nil)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New[*int](10, 1000)
			for i := range 5 {
				_ = q.TryPut(&i, 1, 10)
			}
			removed := tt.remove(q)
			for i, e := range q.ring.buf {
				live := (i-q.ring.head+len(q.ring.buf))%len(q.ring.buf) < q.ring.n
				if !live && e != (entry[*int]{}) {
					t.Errorf("slot %d still holds %+v after removal", i, e)
				}
			}
			checkAccounting(t, q, 5-removed, 5-removed, int64(10*(5-removed)))
		})
	}
}

func TestSteadyStateAllocations(t *testing.T) {
	ctx := context.Background()
	q := New[int](64, 1<<20)
	dst := make([]int, 0, 8)
	tests := []struct {
		name string
		f    func()
	}{
		{"TryPut+Take", func() {
			_ = q.TryPut(1, 1, 100)
			dst, _, _, _ = q.Take(ctx, dst, 0, 0)
		}},
		{"TryPut×8+TryTake", func() {
			for range 8 {
				_ = q.TryPut(1, 1, 100)
			}
			dst, _, _, _ = q.TryTake(dst, 8, 0)
		}},
		{"Put+Drain", func() {
			_ = q.Put(ctx, 1, 1, 100)
			dst = q.Drain(dst)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f() // let the ring grow
			if got := testing.AllocsPerRun(100, tt.f); got != 0 {
				t.Errorf("%v allocations per run, want 0", got)
			}
		})
	}
}

// cost gives every value in the stress test a deterministic cost.
func cost(v int) (int, int64) { return 1 + v%3, int64(1 + v%50) }

// TestManyProducersManyConsumers checks under -race that every accepted entry
// is delivered exactly once, in order per producer, and that the accounting
// returns to zero, while puts and takes are also being cancelled.
func TestManyProducersManyConsumers(t *testing.T) {
	const (
		producers = 4
		consumers = 3
		perProd   = 2000
	)
	q := New[int](64, 1500)
	ctx := context.Background()

	accepted := make([][]int, producers)
	var pwg sync.WaitGroup
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			for i := range perProd {
				v := p*perProd + i
				items, bytes := cost(v)
				var err error
				switch p {
				case 0, 1:
					err = q.Put(ctx, v, items, bytes)
				case 2:
					err = q.TryPut(v, items, bytes)
				case 3:
					// Deadlines of a few microseconds make cancellation race
					// with admission; either outcome is legal.
					pctx, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(20))*time.Microsecond)
					err = q.Put(pctx, v, items, bytes)
					cancel()
				}
				switch {
				case err == nil:
					accepted[p] = append(accepted[p], v)
				case errors.Is(err, ErrFull), errors.Is(err, context.DeadlineExceeded):
				default:
					t.Errorf("producer %d: put %d: %v", p, v, err)
					return
				}
			}
		}()
	}

	delivered := make([][]int, consumers)
	var cwg sync.WaitGroup
	for c := range consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 2))
			var buf []int
			for {
				tctx, cancel := ctx, context.CancelFunc(func() {})
				if c == 2 {
					tctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(20))*time.Microsecond)
				}
				out, items, bytes, err := q.Take(tctx, buf, rng.IntN(12), int64(rng.IntN(300)))
				cancel()
				switch {
				case errors.Is(err, ErrClosed):
					return
				case errors.Is(err, context.DeadlineExceeded):
					continue
				case err != nil:
					t.Errorf("consumer %d: %v", c, err)
					return
				}
				var wantItems int
				var wantBytes int64
				for _, v := range out {
					i, b := cost(v)
					wantItems += i
					wantBytes += b
				}
				if len(out) == 0 || items != wantItems || bytes != wantBytes {
					t.Errorf("consumer %d: took %v with %d items, %d bytes; want %d, %d", c, out, items, bytes, wantItems, wantBytes)
				}
				delivered[c] = append(delivered[c], out...)
				buf = out
			}
		}()
	}

	pwg.Wait()
	q.Close()
	cwg.Wait()

	// Each consumer sees a subsequence of the queue's order, so each
	// producer's values must reach it in increasing order.
	for c, got := range delivered {
		last := make(map[int]int)
		for _, v := range got {
			p := v / perProd
			if prev, ok := last[p]; ok && v <= prev {
				t.Errorf("consumer %d got %d after %d", c, v, prev)
			}
			last[p] = v
		}
	}
	t.Logf("accepted per producer: %d %d %d %d", len(accepted[0]), len(accepted[1]), len(accepted[2]), len(accepted[3]))
	want := slices.Concat(accepted...)
	got := slices.Concat(delivered...)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %d entries, accepted %d; the sets differ", len(got), len(want))
	}
	if len(accepted[0]) != perProd || len(accepted[1]) != perProd {
		t.Errorf("blocking producers got %d and %d entries in, want %d", len(accepted[0]), len(accepted[1]), perProd)
	}
	checkAccounting(t, q, 0, 0, 0)
}

// FuzzOperations runs a sequence of non-waiting operations against a plain
// slice model and compares every result and counter.
func FuzzOperations(f *testing.F) {
	f.Add([]byte{0, 1, 10, 0, 3, 90, 1, 2, 0, 0, 0, 5})
	f.Add([]byte{0, 3, 119, 0, 0, 0, 2, 0, 0, 7, 0, 0, 0, 1, 1})
	f.Add([]byte("put put take drain close put"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		const maxItems, maxBytes = 8, 100
		type ent struct {
			v     int
			items int
			bytes int64
		}
		q := New[int](maxItems, maxBytes)
		var model []ent
		var closed bool
		next := 0
		for len(ops) >= 3 {
			op, a, b := ops[0], int(ops[1]), int64(ops[2])
			ops = ops[3:]
			switch op % 8 {
			case 0, 1, 2: // TryPut
				e := ent{next, 1 + a%4, b % 120}
				next++
				var used int
				var usedBytes int64
				for _, m := range model {
					used += m.items
					usedBytes += m.bytes
				}
				var want error
				switch {
				case e.bytes > maxBytes:
					want = ErrTooLarge
				case closed:
					want = ErrClosed
				case used+e.items > maxItems || usedBytes+e.bytes > maxBytes:
					want = ErrFull
				}
				if err := q.TryPut(e.v, e.items, e.bytes); err != want {
					t.Fatalf("TryPut(%+v) = %v, want %v", e, err, want)
				}
				if want == nil {
					model = append(model, e)
				}
			case 3, 4, 5: // TryTake, and TryTakeWithin for 5
				limItems, limBytes := a%6, b%60
				within := op%8 == 5
				var want []int
				var wantItems int
				var wantBytes int64
				for len(model) > 0 {
					m := model[0]
					overItems := limItems > 0 && wantItems+m.items > limItems
					overBytes := limBytes > 0 && wantBytes+m.bytes > limBytes
					// The first entry is always taken, but by
					// TryTakeWithin only within a byte limit.
					if len(want) > 0 && (overItems || overBytes) || len(want) == 0 && within && overBytes {
						break
					}
					want = append(want, m.v)
					wantItems += m.items
					wantBytes += m.bytes
					model = model[1:]
				}
				var wantErr error
				if len(want) == 0 && len(model) == 0 && closed {
					wantErr = ErrClosed
				}
				take, name := q.TryTake, "TryTake"
				if within {
					take, name = q.TryTakeWithin, "TryTakeWithin"
				}
				out, items, bytes, err := take(nil, limItems, limBytes)
				if !slices.Equal(out, want) || items != wantItems || bytes != wantBytes || err != wantErr {
					t.Fatalf("%s(%d, %d) = %v, %d, %d, %v; want %v, %d, %d, %v",
						name, limItems, limBytes, out, items, bytes, err, want, wantItems, wantBytes, wantErr)
				}
			case 6: // Drain
				var want []int
				for _, m := range model {
					want = append(want, m.v)
				}
				model = nil
				if got := q.Drain(nil); !slices.Equal(got, want) {
					t.Fatalf("Drain = %v, want %v", got, want)
				}
			case 7:
				q.Close()
				closed = true
			}
			var items int
			var bytes int64
			for _, m := range model {
				items += m.items
				bytes += m.bytes
			}
			if q.Len() != len(model) || q.Items() != items || q.Bytes() != bytes {
				t.Fatalf("counters %d/%d/%d, model %d/%d/%d: %s",
					q.Len(), q.Items(), q.Bytes(), len(model), items, bytes, fmt.Sprint(model))
			}
		}
	})
}

func TestTryTakeWithinNeverGoesPastMaxBytes(t *testing.T) {
	q := New[string](10, 0)
	for _, e := range []struct {
		v     string
		bytes int64
	}{{"a", 300}, {"b", 300}, {"c", 500}} {
		if err := q.TryPut(e.v, 1, e.bytes); err != nil {
			t.Fatal(err)
		}
	}
	if out, _, _, err := q.TryTakeWithin(nil, 0, 200); len(out) != 0 || err != nil {
		t.Fatalf("took %v, %v with room for less than the first entry", out, err)
	}
	out, items, bytes, err := q.TryTakeWithin(nil, 0, 700)
	if err != nil || !slices.Equal(out, []string{"a", "b"}) || items != 2 || bytes != 600 {
		t.Fatalf("TryTakeWithin(700) = %v, %d, %d, %v; want a and b", out, items, bytes, err)
	}
	if q.Len() != 1 {
		t.Fatalf("%d left, want c", q.Len())
	}
	q.Close()
	if out, _, _, err := q.TryTakeWithin(nil, 0, 100); len(out) != 0 || err != nil {
		t.Fatalf("closed with c left: %v, %v; want nothing and no error", out, err)
	}
	_, _, _, _ = q.TryTake(nil, 0, 0)
	if _, _, _, err := q.TryTakeWithin(nil, 0, 100); err != ErrClosed {
		t.Fatalf("closed and empty: %v, want ErrClosed", err)
	}
}

// TestTryTakeWithinZeroIsUnlimited: a limit of zero or less is unlimited
// for TryTakeWithin as for TryTake, so that a drain loop calling it with
// no byte limit empties a closed queue and then sees ErrClosed.
func TestTryTakeWithinZeroIsUnlimited(t *testing.T) {
	for _, limit := range []int64{0, -1} {
		q := New[string](10, 0)
		for _, v := range []string{"a", "b", "c"} {
			if err := q.TryPut(v, 1, 100); err != nil {
				t.Fatal(err)
			}
		}
		out, items, bytes, err := q.TryTakeWithin(nil, 2, limit)
		if err != nil || !slices.Equal(out, []string{"a", "b"}) || items != 2 || bytes != 200 {
			t.Fatalf("TryTakeWithin(2, %d) = %v, %d, %d, %v; want a and b", limit, out, items, bytes, err)
		}
		q.Close()
		if out, _, _, err := q.TryTakeWithin(nil, 0, limit); err != nil || !slices.Equal(out, []string{"c"}) {
			t.Fatalf("closed, TryTakeWithin(0, %d) = %v, %v; want c", limit, out, err)
		}
		if _, _, _, err := q.TryTakeWithin(nil, 0, limit); err != ErrClosed {
			t.Fatalf("closed and empty: %v, want ErrClosed", err)
		}
	}
}

// TestPutWaitsForRoomInTheItemCount: in a queue bounded only by bytes, a
// Put whose items would carry the total past what an int counts waits,
// as for a full budget, and is admitted once entries are taken.
func TestPutWaitsForRoomInTheItemCount(t *testing.T) {
	ctx := context.Background()
	q := New[string](0, 100)
	parks := watchParks(q)
	big := math.MaxInt/2 + 1
	if err := q.TryPut("a", big, 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Put(ctx, "b", big, 1) }()
	select {
	case <-parks: // the only goroutine that parks
	case err := <-done:
		t.Fatalf("Put returned %v at once; counters %d items, %d bytes", err, q.Items(), q.Bytes())
	}
	checkAccounting(t, q, 1, big, 1)
	if out, _, _, _ := q.Take(ctx, nil, 0, 0); !slices.Equal(out, []string{"a"}) {
		t.Errorf("Take = %v, want [a]", out)
	}
	if err := <-done; err != nil {
		t.Errorf("Put = %v, want nil", err)
	}
	checkAccounting(t, q, 1, big, 1)
}
