package queue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

var (
	// ErrFull is returned by TryPut when the entry does not fit in the room
	// that is left, and when putters blocked in Put are already waiting for
	// room.
	ErrFull = errors.New("queue: full")

	// ErrClosed is returned by TryPut and Put after Close, and by Take and
	// TryTake once the queue is closed and empty.
	ErrClosed = errors.New("queue: closed")

	// ErrTooLarge is returned by TryPut and Put for an entry whose cost
	// alone exceeds a budget of the queue. Such an entry could never be
	// accepted, so Put refuses it at once instead of waiting.
	// errors.Is(ErrTooLarge, ErrFull) reports true: a caller that only tells
	// "full" from "closed" counts it as a refusal like any other.
	ErrTooLarge error = tooLargeError{}

	errInvalidCost = errors.New("queue: invalid entry cost")
)

type tooLargeError struct{}

func (tooLargeError) Error() string        { return "queue: entry larger than capacity" }
func (tooLargeError) Is(target error) bool { return target == ErrFull }

// A Queue is a bounded first-in, first-out queue of entries of type T.
//
// Every entry has a cost in items and a cost in bytes, given when it is put.
// The queue has a budget for each, set by New, and holds entries only while
// the sums of their costs stay within both budgets; a budget of zero or less
// is unlimited, which means up to the largest total its counter holds
// (math.MaxInt items, math.MaxInt64 bytes): an entry that would carry a sum
// past that does not fit, as if the budget were full, so that Items and
// Bytes never overflow. An entry costs at least one item and never a
// negative number of bytes; in a queue bounded only by bytes it also costs
// at least one byte, so that the number of entries stays bounded. Breaking
// these rules is reported as an error, not a panic.
//
// There are two ways to put an entry. TryPut never waits: it returns ErrFull
// when the entry does not fit right now. Put waits for room until its context
// is done. Blocked putters are admitted in the order they arrived, and while
// any of them waits, TryPut refuses new entries, so that a large entry at the
// head is not overtaken forever by small ones. An entry that alone exceeds a
// budget is refused by both with ErrTooLarge.
//
// Take removes entries from the front, waiting for at least one. It goes on
// removing while the totals of what it has taken stay within the limits the
// caller passes, and stops at the first entry that would overstep them; the
// first entry is always taken, even if it alone oversteps the limits, so a
// consumer always makes progress. TryTake does the same without waiting.
//
// Close makes every later TryPut and Put fail with ErrClosed and releases
// putters that are still waiting with ErrClosed. Entries already in the queue
// stay there: Take and TryTake keep returning them and report ErrClosed only
// once the queue is empty. Drain removes all of them at once.
//
// When a context passed to Put or Take is already done, the call returns
// ctx.Err() unchanged and the queue is not touched, even if it could have
// proceeded without waiting. A nil error from Put always means the entry was
// queued, and a nil error from Take always means entries were removed.
//
// The zero value is not ready for use; create queues with New. A Queue must
// not be copied after first use. All methods are safe for simultaneous use
// by any number of goroutines.
type Queue[T any] struct {
	maxItems int   // ≤ 0: unlimited
	maxBytes int64 // ≤ 0: unlimited

	// wake carries at most one pending wake-up for parked takers. Every
	// change that leaves entries in the queue, or closes it, while takers
	// are parked sends one, and a taker that receives it always re-examines
	// the queue and passes it on if parked takers remain and there is
	// something for them (entries, or the news of Close), so no wake-up is
	// lost. A stale token only causes a spurious wake-up.
	wake chan struct{}

	waiters waiterPool[T]

	mu     sync.Mutex
	ring   ring[T]
	items  int
	bytes  int64
	closed bool
	takers int         // takers parked, or about to park, on wake
	putq   waitList[T] // putters blocked in Put, in arrival order

	// onPark, when set by a test, is called by a goroutine just before it
	// parks in Put ("put") or Take ("take").
	onPark func(op string)
	// onGrow, when set by a test, is called by a taker that grows its
	// result, with q.mu unlocked.
	onGrow func()
}

// New returns an empty queue that holds entries while their total cost stays
// within maxItems items and maxBytes bytes. A budget of zero or less is
// unlimited, but not both: New panics if neither budget is positive, because
// an unbounded queue is not something this package offers.
func New[T any](maxItems int, maxBytes int64) *Queue[T] {
	if maxItems <= 0 && maxBytes <= 0 {
		panic("queue: New needs a positive item or byte budget")
	}
	q := &Queue[T]{
		maxItems: max(maxItems, 0),
		maxBytes: max(maxBytes, 0),
		wake:     make(chan struct{}, 1),
	}
	q.ring.limit = q.maxItems // an entry costs at least one item
	return q
}

// Capacity returns the budgets the queue was created with. A budget that is
// unlimited is reported as 0.
func (q *Queue[T]) Capacity() (items int, bytes int64) {
	return q.maxItems, q.maxBytes
}

// Len returns the number of entries in the queue.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ring.n
}

// Items returns the total item cost of the entries in the queue.
func (q *Queue[T]) Items() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.items
}

// Bytes returns the total byte cost of the entries in the queue.
func (q *Queue[T]) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// TryPut adds v, which costs items items and bytes bytes, to the back of the
// queue without waiting. It returns ErrFull when v does not fit in the room
// that is left or when blocked putters are waiting, ErrTooLarge when v alone
// exceeds a budget, and ErrClosed after Close.
func (q *Queue[T]) TryPut(v T, items int, bytes int64) error {
	if err := q.checkCost(items, bytes); err != nil {
		return err
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.putq.head != nil || !q.fits(items, bytes) {
		q.mu.Unlock()
		return ErrFull
	}
	q.push(v, items, bytes)
	wake := q.takers > 0
	q.mu.Unlock()
	if wake {
		q.wakeTaker()
	}
	return nil
}

// Put adds v, which costs items items and bytes bytes, to the back of the
// queue, waiting for room until ctx is done. It returns ctx.Err() unchanged
// when ctx is done first, ErrTooLarge at once when v alone exceeds a budget,
// and ErrClosed when the queue is closed before v is accepted. Putters that
// wait are admitted in the order they called Put.
//
// If ctx becomes done at the moment room appears, Put may still succeed; a
// nil error always means v is in the queue.
func (q *Queue[T]) Put(ctx context.Context, v T, items int, bytes int64) error {
	if err := q.checkCost(items, bytes); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.putq.head == nil && q.fits(items, bytes) {
		q.push(v, items, bytes)
		wake := q.takers > 0
		q.mu.Unlock()
		if wake {
			q.wakeTaker()
		}
		return nil
	}
	w := q.waiters.get()
	w.v, w.items, w.bytes = v, items, bytes
	q.putq.pushBack(w)
	q.mu.Unlock()
	if q.onPark != nil {
		q.onPark("put")
	}

	var state waitState
	select {
	case <-w.ready:
		// The state was set under the lock before the token was sent.
		state = w.state
	case <-ctx.Done():
		q.mu.Lock()
		state = w.state
		if state == waiting {
			q.putq.remove(w)
			// w may have held up the putters behind it.
			wake := q.admit()
			q.mu.Unlock()
			if wake {
				q.wakeTaker()
			}
			q.waiters.put(w)
			return ctx.Err()
		}
		q.mu.Unlock()
		<-w.ready // sent under the lock together with the state change
	}
	q.waiters.put(w)
	if state == closed {
		return ErrClosed
	}
	return nil
}

// Take removes entries from the front of the queue, appends them to dst[:0]
// and returns the result with the total item and byte cost of what it took.
// It waits until at least one entry is present, the queue is closed and
// empty (ErrClosed), or ctx is done (ctx.Err() unchanged).
//
// Take keeps removing entries while the totals stay within maxItems and
// maxBytes, and stops at the first entry that would overstep either; a limit
// of zero or less is unlimited. The first entry is always taken, even if it
// alone oversteps the limits.
//
// Taken entries are no longer referenced by the queue. Passing the previous
// result back as dst keeps Take free of allocations; when dst must grow,
// it grows with the queue unlocked, so that putters never wait for it.
func (q *Queue[T]) Take(ctx context.Context, dst []T, maxItems int, maxBytes int64) (out []T, items int, bytes int64, err error) {
	out = dst[:0]
	if err := ctx.Err(); err != nil {
		return out, 0, 0, err
	}
	q.mu.Lock()
	for {
		if q.ring.n > 0 {
			n, ok := 0, false
			if out, n, ok = q.roomFor(out, maxItems, maxBytes); !ok {
				continue
			}
			out, items, bytes = q.take(out, n)
			wake := q.admit()
			q.mu.Unlock()
			if wake {
				q.wakeTaker()
			}
			return out, items, bytes, nil
		}
		if q.closed {
			// Pass the news of Close on to the next parked taker.
			wake := q.takers > 0
			q.mu.Unlock()
			if wake {
				q.wakeTaker()
			}
			return out, 0, 0, ErrClosed
		}
		q.takers++
		q.mu.Unlock()
		if q.onPark != nil {
			q.onPark("take")
		}
		if done := ctx.Done(); done == nil {
			<-q.wake
		} else {
			select {
			case <-q.wake:
			case <-done:
				// Leaving without receiving from wake consumes no
				// wake-up, so none is lost for the takers that stay.
				q.mu.Lock()
				q.takers--
				q.mu.Unlock()
				return out, 0, 0, ctx.Err()
			}
		}
		q.mu.Lock()
		q.takers--
	}
}

// TryTake is like Take but never waits: when the queue is empty it returns
// dst[:0] with a nil error, or ErrClosed if the queue is also closed.
func (q *Queue[T]) TryTake(dst []T, maxItems int, maxBytes int64) (out []T, items int, bytes int64, err error) {
	return q.tryTake(dst, maxItems, maxBytes, false)
}

// tryTake is TryTake; within, it takes nothing when the first entry alone
// is larger than a positive maxBytes.
func (q *Queue[T]) tryTake(dst []T, maxItems int, maxBytes int64, within bool) (out []T, items int, bytes int64, err error) {
	out = dst[:0]
	var n int
	q.mu.Lock()
	for {
		if q.ring.n == 0 || within && maxBytes > 0 && q.ring.front().bytes > maxBytes {
			closed := q.closed && q.ring.n == 0
			q.mu.Unlock()
			if closed {
				return out, 0, 0, ErrClosed
			}
			return out, 0, 0, nil
		}
		var ok bool
		if out, n, ok = q.roomFor(out, maxItems, maxBytes); ok {
			break
		}
	}
	out, items, bytes = q.take(out, n)
	wake := q.admit()
	q.mu.Unlock()
	if wake {
		q.wakeTaker()
	}
	return out, items, bytes, nil
}

// TryTakeWithin is TryTake that never goes past maxBytes: it takes
// nothing, with a nil error, when the first entry alone is larger. As for
// TryTake, a limit of zero or less is unlimited: TryTakeWithin then takes
// what TryTake would, and ErrClosed once the queue is closed and empty.
func (q *Queue[T]) TryTakeWithin(dst []T, maxItems int, maxBytes int64) (out []T, items int, bytes int64, err error) {
	return q.tryTake(dst, maxItems, maxBytes, true)
}

// Drain removes every entry in the queue, appends them to dst[:0] and
// returns the result. It never waits and does not close the queue. If
// putters are blocked in Put on an open queue, the room Drain frees admits
// them, so their entries are in the queue when Drain returns; call Close
// first to make Drain final.
func (q *Queue[T]) Drain(dst []T) []T {
	out := dst[:0]
	var n int
	q.mu.Lock()
	for {
		if q.ring.n == 0 {
			q.mu.Unlock()
			return out
		}
		var ok bool
		if out, n, ok = q.roomFor(out, 0, 0); ok {
			break
		}
	}
	out, _, _ = q.take(out, n)
	wake := q.admit()
	q.mu.Unlock()
	if wake {
		q.wakeTaker()
	}
	return out
}

// Close stops the queue from accepting entries: later calls to TryPut and
// Put, and calls to Put still waiting for room, return ErrClosed. Entries
// already in the queue can still be taken; takers that wait on an empty
// queue return ErrClosed. Close may be called more than once.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	for w := q.putq.head; w != nil; w = q.putq.head {
		q.putq.remove(w)
		w.state = closed
		w.ready <- struct{}{}
	}
	if q.takers > 0 {
		q.wakeTaker()
	}
}

// checkCost rejects costs that would break the accounting or the bound.
func (q *Queue[T]) checkCost(items int, bytes int64) error {
	if items < 1 || bytes < 0 || (bytes == 0 && q.maxItems == 0) {
		return fmt.Errorf("%w: %d items, %d bytes", errInvalidCost, items, bytes)
	}
	if (q.maxItems > 0 && items > q.maxItems) || (q.maxBytes > 0 && bytes > q.maxBytes) {
		return ErrTooLarge
	}
	return nil
}

// fits reports whether an entry of the given cost fits in the room left.
// An unlimited budget leaves the room up to the largest total its counter
// holds, so that the totals never overflow. q.mu must be held.
func (q *Queue[T]) fits(items int, bytes int64) bool {
	itemRoom, byteRoom := math.MaxInt-q.items, math.MaxInt64-q.bytes
	if q.maxItems > 0 {
		itemRoom = q.maxItems - q.items
	}
	if q.maxBytes > 0 {
		byteRoom = q.maxBytes - q.bytes
	}
	return items <= itemRoom && bytes <= byteRoom
}

// push appends an entry and charges its cost. q.mu must be held.
func (q *Queue[T]) push(v T, items int, bytes int64) {
	q.ring.push(entry[T]{v: v, items: items, bytes: bytes})
	q.items += items
	q.bytes += bytes
}

// roomFor counts the n entries from the front that stay within the
// limits and makes sure that out, which is empty, can hold them, so that
// nothing is allocated with q.mu held: a putter never waits for a taker's
// allocation, and the collector's work that an allocation may be charged
// with. When out must grow, roomFor unlocks q.mu, grows out, locks q.mu
// again and reports false: the queue may have changed meanwhile, and n
// with it. q.mu must be held and the queue must not be empty.
func (q *Queue[T]) roomFor(out []T, maxItems int, maxBytes int64) (_ []T, n int, ok bool) {
	n = q.ring.countWithin(maxItems, maxBytes)
	if n <= cap(out) {
		return out, n, true
	}
	q.mu.Unlock()
	if q.onGrow != nil {
		q.onGrow()
	}
	out = slices.Grow(out, n)
	q.mu.Lock()
	return out, 0, false
}

// take moves the first n entries to out, as counted by roomFor under the
// same hold of q.mu, and refunds their cost.
func (q *Queue[T]) take(out []T, n int) ([]T, int, int64) {
	var items int
	var bytes int64
	for range n {
		e := q.ring.front()
		out = append(out, e.v)
		items += e.items
		bytes += e.bytes
		q.ring.popFront()
	}
	q.items -= items
	q.bytes -= bytes
	return out, items, bytes
}

// admit moves blocked putters, in arrival order, into the room that is left,
// stopping at the first that does not fit. It reports whether a parked taker
// should be woken: when entries remain, or when the queue is closed, since a
// taker parked on an empty queue must learn of Close even if the entries
// that woke another taker were the last. q.mu must be held.
func (q *Queue[T]) admit() (wakeTaker bool) {
	for w := q.putq.head; w != nil && !q.closed; w = q.putq.head {
		if !q.fits(w.items, w.bytes) {
			break
		}
		q.push(w.v, w.items, w.bytes)
		q.putq.remove(w)
		w.state = admitted
		w.ready <- struct{}{}
	}
	return q.takers > 0 && (q.ring.n > 0 || q.closed)
}

// wakeTaker leaves a wake-up for a parked taker unless one is pending.
func (q *Queue[T]) wakeTaker() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// entry is one queued value with its cost.
type entry[T any] struct {
	v     T
	items int
	bytes int64
}

// ring is a FIFO of entries in a circular buffer that doubles when full, up
// to limit entries when limit is positive, and never shrinks.
type ring[T any] struct {
	buf   []entry[T]
	head  int
	n     int
	limit int // > 0: the most entries that can ever be held
}

func (r *ring[T]) push(e entry[T]) {
	if r.n == len(r.buf) {
		r.grow()
	}
	i := r.head + r.n
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	r.buf[i] = e
	r.n++
}

func (r *ring[T]) front() *entry[T] { return &r.buf[r.head] }

// countWithin is the number of entries from the front whose totals stay
// within maxItems and maxBytes (unlimited when zero or less), counting the
// first in any case: what take moves.
func (r *ring[T]) countWithin(maxItems int, maxBytes int64) int {
	var items int
	var bytes int64
	for k := range r.n {
		e := &r.buf[(r.head+k)%len(r.buf)]
		if k > 0 && ((maxItems > 0 && items+e.items > maxItems) ||
			(maxBytes > 0 && bytes+e.bytes > maxBytes)) {
			return k
		}
		items += e.items
		bytes += e.bytes
	}
	return r.n
}

// popFront drops the front entry, clearing its slot so that the value can
// be collected.
func (r *ring[T]) popFront() {
	r.buf[r.head] = entry[T]{}
	r.n--
	if r.n == 0 {
		r.head = 0
		return
	}
	r.head++
	if r.head == len(r.buf) {
		r.head = 0
	}
}

func (r *ring[T]) grow() {
	size := max(2*len(r.buf), 8)
	if r.limit > 0 {
		size = min(size, r.limit)
	}
	buf := make([]entry[T], size)
	k := copy(buf, r.buf[r.head:])
	copy(buf[k:], r.buf[:r.head])
	r.buf = buf
	r.head = 0
}

// waitState is what became of a putter blocked in Put.
type waitState uint8

const (
	waiting  waitState = iota // still in the queue's list of putters
	admitted                  // its entry was put on its behalf
	closed                    // the queue was closed first
)

// waiter is a putter blocked in Put. Its ready channel receives exactly one
// token when the state leaves waiting, so that the waiter can be reused.
type waiter[T any] struct {
	v          T
	items      int
	bytes      int64
	state      waitState
	ready      chan struct{}
	prev, next *waiter[T]
}

// waitList is an intrusive doubly linked list of waiters.
type waitList[T any] struct {
	head, tail *waiter[T]
}

func (l *waitList[T]) pushBack(w *waiter[T]) {
	w.prev, w.next = l.tail, nil
	if l.tail == nil {
		l.head = w
	} else {
		l.tail.next = w
	}
	l.tail = w
}

func (l *waitList[T]) remove(w *waiter[T]) {
	if w.prev == nil {
		l.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		l.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
}

// waiterPool recycles waiters, channels included.
type waiterPool[T any] struct{ p sync.Pool }

func (p *waiterPool[T]) get() *waiter[T] {
	if w, ok := p.p.Get().(*waiter[T]); ok {
		return w
	}
	return &waiter[T]{ready: make(chan struct{}, 1)}
}

func (p *waiterPool[T]) put(w *waiter[T]) {
	var zero T
	w.v, w.items, w.bytes, w.state = zero, 0, 0, waiting
	p.p.Put(w)
}
