package exporter

import (
	"context"
	"sync"
)

// tracker numbers the batches entering the exporter and tells ForceFlush
// when every batch up to a point has been sent or dropped. Batches finish
// out of order (several workers), so it keeps the lowest unfinished
// number and the set of finished numbers above it, which is never larger
// than the number of batches in flight.
type tracker struct {
	mu      sync.Mutex
	next    uint64              // number of the next batch
	low     uint64              // every batch below low has finished
	ahead   map[uint64]struct{} // finished batches at or above low
	waiters []flushWaiter
}

type flushWaiter struct {
	upTo uint64 // done once low ≥ upTo
	ch   chan struct{}
}

// begin numbers a new batch.
func (t *tracker) begin() uint64 {
	t.mu.Lock()
	n := t.next
	t.next++
	t.mu.Unlock()
	return n
}

// end marks batch n finished.
func (t *tracker) end(n uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n != t.low {
		if t.ahead == nil {
			t.ahead = make(map[uint64]struct{})
		}
		t.ahead[n] = struct{}{}
		return
	}
	t.low++
	for {
		if _, ok := t.ahead[t.low]; !ok {
			break
		}
		delete(t.ahead, t.low)
		t.low++
	}
	if len(t.waiters) == 0 {
		return
	}
	kept := t.waiters[:0]
	for _, w := range t.waiters {
		if t.low >= w.upTo {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	clear(t.waiters[len(kept):])
	t.waiters = kept
}

// wait returns once every batch begun before the call has finished, or
// with ctx's error.
func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.low >= t.next {
		t.mu.Unlock()
		return nil
	}
	w := flushWaiter{upTo: t.next, ch: make(chan struct{})}
	t.waiters = append(t.waiters, w)
	t.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		for i, x := range t.waiters {
			if x.ch == w.ch {
				t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
				break
			}
		}
		t.mu.Unlock()
		return ctx.Err()
	}
}
