// Package ledger keeps the exporter's books: how many spans were accepted
// and where each of them is now.
//
// A Ledger is the only owner of the counts. Its methods are the only
// transitions, each moving spans from one state to another under one lock,
// so that at every moment
//
//	Accepted == Exported + Dropped + Queued + Spooled + InFlight
//
// holds by construction, whatever the caller does: a snapshot never sees
// spans accepted but in no state, and no code outside this package can
// change one count without the other.
package ledger

import "sync"

// Reason says why spans were dropped.
type Reason int

const (
	QueueFull Reason = iota
	RetriesExhausted
	PermanentError
	Rejected
	// Shutdown counts spans that arrived after Shutdown.
	Shutdown
	Config
	TooLarge
	// Invalid counts elements of an ExportSpans batch that were not spans
	// (nil).
	Invalid
	// Deadline counts spans abandoned when a Shutdown deadline passed. It
	// is published together with Shutdown; Shutdown's error counts these
	// alone.
	Deadline
	// SpoolFull counts spans the disk spool had no room for; SpoolError
	// those it failed to write.
	SpoolFull
	SpoolError

	NumReasons
)

// Books is a snapshot of the counts.
type Books struct {
	Accepted int64
	Exported int64
	Dropped  [NumReasons]int64
	Queued   int64
	Spooled  int64
	InFlight int64

	// Recovered counts the spans found on disk at start (they are also
	// counted in Accepted), Resent those of them that an earlier process
	// had sent without an answer: they may arrive twice.
	Recovered int64
	Resent    int64

	// QueueBytes and InFlightBytes are the memory held by the queued and
	// the in-flight spans; together they stay within the budget.
	QueueBytes    int64
	InFlightBytes int64

	// Requests counts attempts to send, retries included; Retries the
	// retries alone; Repaired the string values repaired.
	Requests int64
	Retries  int64
	Repaired int64
}

// DroppedTotal is the number of spans dropped, whatever the reason.
func (b Books) DroppedTotal() int64 {
	var n int64
	for _, d := range b.Dropped {
		n += d
	}
	return n
}

// Balanced reports whether the identity holds; it always does, and tests
// check it.
func (b Books) Balanced() bool {
	return b.Accepted == b.Exported+b.DroppedTotal()+b.Queued+b.Spooled+b.InFlight
}

// Ledger holds the books, and the memory budget the queued and in-flight
// spans share. The zero value has no budget: set one with SetBudget.
type Ledger struct {
	mu     sync.Mutex
	b      Books
	budget int64
	// reserve is the part of the budget set aside for what the spans'
	// requests hold besides their bodies; it follows their number.
	reserve int64
	room    chan struct{} // closed when memory is released; nil when nobody waits
}

// SetBudget sets the memory the queued and in-flight spans may hold.
func (l *Ledger) SetBudget(bytes int64) {
	l.mu.Lock()
	l.budget = bytes
	l.mu.Unlock()
}

// SetReserve sets aside bytes of the budget, which the queued and
// in-flight spans may not take. Lowering it frees room.
func (l *Ledger) SetReserve(bytes int64) {
	l.mu.Lock()
	lower := bytes < l.reserve
	l.reserve = bytes
	if lower {
		l.freedLocked()
	}
	l.mu.Unlock()
}

// Req describes one request of an Accept call.
type Req struct {
	Spans int
	Bytes int64
}

// Snapshot returns a consistent copy of the books.
func (l *Ledger) Snapshot() Books {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b
}

// Accept accounts one ExportSpans call of n elements, encoded into reqs,
// with tooLarge spans dropped before encoding; whatever else there was did
// not hold a span and is dropped as Invalid. repaired counts the string
// values repaired on the way.
//
// Every request is counted queued. The leading requests that fit the
// memory budget have their memory reserved; it returns how many (none
// when memory is false). The caller must move each of the others on with
// Refuse or Spool: a later request must not overtake an earlier one.
func (l *Ledger) Accept(n, tooLarge, repaired int, reqs []Req, memory bool) (admitted int) {
	queued := 0
	for _, r := range reqs {
		queued += r.Spans
	}
	invalid := max(n-queued-tooLarge, 0)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Accepted += int64(queued + tooLarge + invalid)
	l.b.Queued += int64(queued)
	l.b.Dropped[TooLarge] += int64(tooLarge)
	l.b.Dropped[Invalid] += int64(invalid)
	l.b.Repaired += int64(repaired)
	if !memory {
		return 0
	}
	for _, r := range reqs {
		if l.b.QueueBytes+l.b.InFlightBytes+r.Bytes > l.budget-l.reserve {
			break
		}
		l.b.QueueBytes += r.Bytes
		admitted++
	}
	return admitted
}

// Spool moves queued spans, holding bytes of memory (none when they were
// never admitted to memory), to the spool.
func (l *Ledger) Spool(spans int, bytes int64) {
	l.mu.Lock()
	l.b.Queued -= int64(spans)
	l.b.QueueBytes -= bytes
	l.b.Spooled += int64(spans)
	if bytes > 0 {
		l.freedLocked()
	}
	l.mu.Unlock()
}

// Unspool moves spans read back from the spool in flight, with the
// memory they now hold.
func (l *Ledger) Unspool(spans int, bytes int64) {
	l.mu.Lock()
	l.b.Spooled -= int64(spans)
	l.b.InFlight += int64(spans)
	l.b.InFlightBytes += bytes
	l.mu.Unlock()
}

// Respool moves in-flight spans back to the spool: they were abandoned at
// a Shutdown deadline and are kept on disk. Their memory is released with
// Resize.
func (l *Ledger) Respool(spans int) {
	l.mu.Lock()
	l.b.InFlight -= int64(spans)
	l.b.Spooled += int64(spans)
	l.mu.Unlock()
}

// DropSpooled drops spans the spool could not keep.
func (l *Ledger) DropSpooled(spans int, reason Reason) {
	l.mu.Lock()
	l.b.Spooled -= int64(spans)
	l.b.Dropped[reason] += int64(spans)
	l.mu.Unlock()
}

// Recover accounts the spans an earlier process left in the spool.
func (l *Ledger) Recover(spans, resent int) {
	l.mu.Lock()
	l.b.Accepted += int64(spans)
	l.b.Spooled += int64(spans)
	l.b.Recovered += int64(spans)
	l.b.Resent += int64(resent)
	l.mu.Unlock()
}

// Room returns a channel closed once memory is released, for a caller
// that waits for the budget to have room.
func (l *Ledger) Room() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.room == nil {
		l.room = make(chan struct{})
	}
	return l.room
}

// Fits reports whether bytes more would fit the budget now.
func (l *Ledger) Fits(bytes int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.QueueBytes+l.b.InFlightBytes+bytes <= l.budget-l.reserve
}

// freedLocked wakes the callers waiting for room.
func (l *Ledger) freedLocked() {
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
}

// AcceptDropped accounts n spans dropped on arrival.
func (l *Ledger) AcceptDropped(n int, reason Reason) {
	l.mu.Lock()
	l.b.Accepted += int64(n)
	l.b.Dropped[reason] += int64(n)
	l.mu.Unlock()
}

// Refuse moves queued spans the queue did not take to dropped, releasing
// their memory.
func (l *Ledger) Refuse(spans int, bytes int64, reason Reason) {
	l.mu.Lock()
	l.b.Queued -= int64(spans)
	l.b.QueueBytes -= bytes
	l.b.Dropped[reason] += int64(spans)
	l.freedLocked()
	l.mu.Unlock()
}

// Fly moves spans a sender took from the queue to in flight, with their
// memory.
func (l *Ledger) Fly(spans int, bytes int64) {
	l.mu.Lock()
	l.b.Queued -= int64(spans)
	l.b.QueueBytes -= bytes
	l.b.InFlight += int64(spans)
	l.b.InFlightBytes += bytes
	l.mu.Unlock()
}

// Resize changes the memory in-flight spans hold by delta: negative when
// a request's buffers were replaced by its compressed form, or released
// once the request is done.
func (l *Ledger) Resize(delta int64) {
	l.mu.Lock()
	l.b.InFlightBytes += delta
	if delta < 0 {
		l.freedLocked()
	}
	l.mu.Unlock()
}

// Finish ends spans in flight: exported of them were accepted by the
// backend, the others are dropped for reason. Their memory is released
// with Resize once the request holding them is done.
func (l *Ledger) Finish(spans, exported int, reason Reason) {
	l.mu.Lock()
	l.b.InFlight -= int64(spans)
	l.b.Exported += int64(exported)
	l.b.Dropped[reason] += int64(spans - exported)
	l.mu.Unlock()
}

// Attempt counts one attempt to send a request; retry says it was a
// retry.
func (l *Ledger) Attempt(retry bool) {
	l.mu.Lock()
	l.b.Requests++
	if retry {
		l.b.Retries++
	}
	l.mu.Unlock()
}
