package ledger

import (
	"sync"
	"testing"
)

func TestTransitionsKeepTheBooksBalanced(t *testing.T) {
	var l Ledger
	steps := []struct {
		name string
		do   func()
		want Books
	}{
		{"accept with nil elements and an oversized span", func() { l.Accept(12, 9, 900, 1, 2) },
			Books{Accepted: 12, Queued: 9, QueueBytes: 900, Dropped: drops(TooLarge, 1, Invalid, 2), Repaired: 2}},
		{"refuse", func() { l.Refuse(3, 300, QueueFull) },
			Books{Accepted: 12, Queued: 6, QueueBytes: 600, Dropped: drops(TooLarge, 1, Invalid, 2, QueueFull, 3), Repaired: 2}},
		{"fly", func() { l.Fly(6, 600) },
			Books{Accepted: 12, InFlight: 6, Dropped: drops(TooLarge, 1, Invalid, 2, QueueFull, 3), Repaired: 2}},
		{"partial success", func() { l.Finish(6, 4, Rejected) },
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
	l.Accept(3, 3, 10, 0, 0) // all queued
	l.Accept(0, 0, 0, 0, 0)
	if b := l.Snapshot(); b.Accepted != 3 || b.Dropped[Invalid] != 0 || !b.Balanced() {
		t.Fatalf("%+v", b)
	}
}

func TestConcurrentSnapshotsAreBalanced(t *testing.T) {
	var l Ledger
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				l.Accept(10, 8, 80, 1, 0)
				l.Refuse(2, 20, QueueFull)
				l.Fly(6, 60)
				l.Finish(6, 5, RetriesExhausted)
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
	if b.Accepted != 80000 || b.Exported != 40000 || b.Queued != 0 || b.InFlight != 0 || b.QueueBytes != 0 {
		t.Fatalf("%+v", b)
	}
}

func drops(kv ...any) [NumReasons]int64 {
	var d [NumReasons]int64
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(Reason)] = int64(kv[i+1].(int))
	}
	return d
}
