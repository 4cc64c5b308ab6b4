package ledger

import (
	"sync"
	"testing"
)

func TestTransitionsKeepTheBooksBalanced(t *testing.T) {
	var l Ledger
	l.SetBudget(1000)
	steps := []struct {
		name string
		do   func()
		want Books
	}{
		{"accept with nil elements and an oversized span", func() { l.Accept(12, 1, 2, []Req{{9, 900}}, true) },
			Books{Accepted: 12, Queued: 9, QueueBytes: 900, Dropped: drops(TooLarge, 1, Invalid, 2), Repaired: 2}},
		{"refuse", func() { l.Refuse(3, 300, QueueFull) },
			Books{Accepted: 12, Queued: 6, QueueBytes: 600, Dropped: drops(TooLarge, 1, Invalid, 2, QueueFull, 3), Repaired: 2}},
		{"fly", func() { l.Fly(6, 600) },
			Books{Accepted: 12, InFlight: 6, InFlightBytes: 600, Dropped: drops(TooLarge, 1, Invalid, 2, QueueFull, 3), Repaired: 2}},
		{"compressed", func() { l.Resize(-500) },
			Books{Accepted: 12, InFlight: 6, InFlightBytes: 100, Dropped: drops(TooLarge, 1, Invalid, 2, QueueFull, 3), Repaired: 2}},
		{"partial success", func() { l.Finish(6, 4, Rejected); l.Resize(-100) },
			Books{Accepted: 12, Exported: 4, Dropped: drops(TooLarge, 1, Invalid, 2, QueueFull, 3, Rejected, 2), Repaired: 2}},
		{"after shutdown", func() { l.AcceptDropped(5, Shutdown) },
			Books{Accepted: 17, Exported: 4, Dropped: drops(TooLarge, 1, Invalid, 2, QueueFull, 3, Rejected, 2, Shutdown, 5), Repaired: 2}},
		{"attempts", func() { l.Attempt(false); l.Attempt(true) },
			Books{Accepted: 17, Exported: 4, Dropped: drops(TooLarge, 1, Invalid, 2, QueueFull, 3, Rejected, 2, Shutdown, 5), Repaired: 2, Requests: 2, Retries: 1}},
	}
	for _, s := range steps {
		s.do()
		got := l.Snapshot()
		if got != s.want {
			t.Fatalf("%s: got %+v, want %+v", s.name, got, s.want)
		}
		if !got.Balanced() {
			t.Fatalf("%s: unbalanced %+v", s.name, got)
		}
	}
}

func TestAcceptNeverCountsMoreThanItWasGiven(t *testing.T) {
	var l Ledger
	l.SetBudget(100)
	l.Accept(3, 0, 0, []Req{{3, 10}}, true) // all queued
	l.Accept(0, 0, 0, nil, true)
	if b := l.Snapshot(); b.Accepted != 3 || b.Dropped[Invalid] != 0 || !b.Balanced() {
		t.Fatalf("%+v", b)
	}
}

func TestConcurrentSnapshotsAreBalanced(t *testing.T) {
	var l Ledger
	l.SetBudget(1 << 40)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				l.Accept(10, 1, 0, []Req{{2, 20}, {6, 60}}, true)
				l.Refuse(2, 20, QueueFull)
				l.Fly(6, 60)
				l.Finish(6, 5, RetriesExhausted)
				l.Resize(-60)
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b := l.Snapshot(); !b.Balanced() {
				t.Errorf("unbalanced snapshot %+v", b)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	b := l.Snapshot()
	if b.Accepted != 80000 || b.Exported != 40000 || b.Queued != 0 || b.InFlight != 0 || b.QueueBytes != 0 || b.InFlightBytes != 0 {
		t.Fatalf("%+v", b)
	}
}

func TestTheBudgetAdmitsLeadingRequestsOnly(t *testing.T) {
	var l Ledger
	l.SetBudget(100)
	// The second request does not fit; the third would, but must not
	// overtake it.
	if got := l.Accept(9, 0, 0, []Req{{3, 60}, {3, 50}, {3, 10}}, true); got != 1 {
		t.Fatalf("admitted %d, want 1", got)
	}
	l.Refuse(3, 0, QueueFull)
	l.Spool(3, 0)
	b := l.Snapshot()
	if b.Queued != 3 || b.QueueBytes != 60 || b.Dropped[QueueFull] != 3 || b.Spooled != 3 || !b.Balanced() {
		t.Fatalf("%+v", b)
	}
	room := l.Room()
	if l.Fits(50) {
		t.Fatal("50 more bytes do not fit")
	}
	l.Fly(3, 60)
	l.Resize(-40) // compressed
	select {
	case <-room:
	default:
		t.Fatal("releasing memory did not signal room")
	}
	if !l.Fits(80) || l.Fits(81) {
		t.Fatalf("%+v", l.Snapshot())
	}
}

func TestSpoolTransitions(t *testing.T) {
	var l Ledger
	l.SetBudget(1000)
	l.Recover(10, 4)
	l.Accept(5, 0, 0, []Req{{5, 50}}, false)
	l.Spool(5, 0)
	l.Unspool(10, 100)
	l.Finish(6, 6, QueueFull)
	l.Respool(4)
	l.DropSpooled(5, SpoolFull)
	l.Resize(-100)
	b := l.Snapshot()
	want := Books{Accepted: 15, Exported: 6, Spooled: 4, Recovered: 10, Resent: 4, Dropped: drops(SpoolFull, 5)}
	if b != want || !b.Balanced() {
		t.Fatalf("got %+v, want %+v", b, want)
	}
}

func drops(kv ...any) [NumReasons]int64 {
	var d [NumReasons]int64
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(Reason)] = int64(kv[i+1].(int))
	}
	return d
}

func TestTheReserveIsNotTheSpans(t *testing.T) {
	var l Ledger
	l.SetBudget(100)
	l.SetReserve(40)
	if got := l.Accept(6, 0, 0, []Req{{3, 50}, {3, 20}}, true); got != 1 {
		t.Fatalf("admitted %d with 60 bytes free, want 1", got)
	}
	if l.Fits(11) || !l.Fits(10) {
		t.Fatalf("fits: %+v", l.Snapshot())
	}
	room := l.Room()
	l.SetReserve(10)
	select {
	case <-room:
	default:
		t.Fatal("lowering the reserve did not signal room")
	}
	if !l.Fits(40) || l.Fits(41) {
		t.Fatalf("after lowering the reserve: %+v", l.Snapshot())
	}
	room = l.Room()
	l.SetReserve(30)
	select {
	case <-room:
		t.Fatal("raising the reserve signalled room")
	default:
	}
}
