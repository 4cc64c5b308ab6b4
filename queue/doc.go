// Package queue provides Queue, a bounded FIFO whose producers never have to
// wait.
//
// A Queue holds entries of any type. Each entry carries two costs, a number
// of items (for the exporter, the spans in an encoded batch) and a number of
// bytes, and the queue accepts an entry only while both of its budgets
// allow. When a budget would be exceeded, TryPut refuses the entry at once
// with ErrFull; the caller decides what a refusal means, usually a counted
// drop. Put is the opt-in alternative that waits for room until its context
// is done.
//
// Consumers call Take, which waits for at least one entry and then removes as
// many entries from the front as fit within the limits the consumer passes,
// so that one consumer can coalesce several small entries into a single
// network request of bounded size. TryTake does the same without waiting.
// TryTakeWithin, for topping up a request already made, never goes past a
// positive byte limit: it takes nothing when the first entry alone is
// larger.
//
// Close stops new entries from being accepted. Consumers keep receiving what
// is left and then get ErrClosed; Drain removes everything that is left in
// one call, which is how a shutdown that ran out of time counts what it could
// not deliver.
//
// The steady state allocates nothing: entries live in a ring buffer that
// grows by doubling up to the largest number of entries ever held and is
// then reused, and waiting goroutines are parked on channels that are
// recycled.
package queue
