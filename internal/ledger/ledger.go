// Package ledger keeps the exporter's books: how many spans were accepted
// and where each of them is now.
//
// A Ledger is the only owner of the counts. Its methods are the only
// transitions, each moving spans from one state to another under one lock,
// so that at every moment
//
//	Accepted == Exported + Dropped + Queued + InFlight
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

	NumReasons
)

// Books is a snapshot of the counts.
type Books struct {
	Accepted int64
	Exported int64
	Dropped  [NumReasons]int64
	Queued   int64
	InFlight int64

	// QueueBytes is the memory held by the queued spans.
	QueueBytes int64

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
	return b.Accepted == b.Exported+b.DroppedTotal()+b.Queued+b.InFlight
}

// Ledger holds the books. The zero value is empty and ready.
type Ledger struct {
	mu sync.Mutex
	b  Books
}

// Snapshot returns a consistent copy of the books.
func (l *Ledger) Snapshot() Books {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b
}

// Accept accounts one ExportSpans call of n elements: queued of them (using
// queuedBytes of memory) went to the queue, tooLarge were dropped before
// encoding, and whatever else there was did not hold a span and is dropped
// as Invalid. repaired counts the string values repaired on the way.
func (l *Ledger) Accept(n, queued int, queuedBytes int64, tooLarge, repaired int) {
	invalid := max(n-queued-tooLarge, 0)
	l.mu.Lock()
	l.b.Accepted += int64(queued + tooLarge + invalid)
	l.b.Queued += int64(queued)
	l.b.QueueBytes += queuedBytes
	l.b.Dropped[TooLarge] += int64(tooLarge)
	l.b.Dropped[Invalid] += int64(invalid)
	l.b.Repaired += int64(repaired)
	l.mu.Unlock()
}

// AcceptDropped accounts n spans dropped on arrival.
func (l *Ledger) AcceptDropped(n int, reason Reason) {
	l.mu.Lock()
	l.b.Accepted += int64(n)
	l.b.Dropped[reason] += int64(n)
	l.mu.Unlock()
}

// Refuse moves queued spans the queue did not take to dropped.
func (l *Ledger) Refuse(spans int, bytes int64, reason Reason) {
	l.mu.Lock()
	l.b.Queued -= int64(spans)
	l.b.QueueBytes -= bytes
	l.b.Dropped[reason] += int64(spans)
	l.mu.Unlock()
}

// Fly moves spans a sender took from the queue to in flight.
func (l *Ledger) Fly(spans int, bytes int64) {
	l.mu.Lock()
	l.b.Queued -= int64(spans)
	l.b.QueueBytes -= bytes
	l.b.InFlight += int64(spans)
	l.mu.Unlock()
}

// Finish ends spans in flight: exported of them were accepted by the
// backend, the others are dropped for reason.
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
