package exporter

import "sync"

// Reason says why spans were dropped. Reasons are the values of the
// error.type attribute of the otel.sdk.exporter.span.exported metric and
// the keys of the fallback logger's reports.
type Reason string

const (
	// ReasonQueueFull: the queue had no room (ExportSpans never waits
	// unless WithBlockOnFull is set).
	ReasonQueueFull Reason = "queue_full"
	// ReasonRetriesExhausted: a retryable failure lasted longer than the
	// retry budget, or retries are disabled.
	ReasonRetriesExhausted Reason = "retries_exhausted"
	// ReasonPermanentError: the backend refused the request for good
	// (HTTP 400, 401, 403, 404, 500… or the gRPC equivalents).
	ReasonPermanentError Reason = "permanent_error"
	// ReasonRejected: the backend accepted the request but reported these
	// spans as rejected (OTLP partial success).
	ReasonRejected Reason = "rejected"
	// ReasonShutdown: the spans were still queued or in flight when the
	// Shutdown context ended, or arrived after Shutdown.
	ReasonShutdown Reason = "shutdown"
	// ReasonConfig: the exporter's configuration is invalid; nothing is
	// sent.
	ReasonConfig Reason = "config"
	// ReasonTooLarge: a single span's encoding exceeds the maximum request
	// size, or the backend refused a request holding only that span as too
	// large.
	ReasonTooLarge Reason = "too_large"
)

// reasons lists every Reason, in the order reports print them.
var reasons = [...]Reason{
	ReasonQueueFull, ReasonRetriesExhausted, ReasonPermanentError,
	ReasonRejected, ReasonShutdown, ReasonConfig, ReasonTooLarge,
}

// Drops counts dropped spans by reason.
type Drops struct {
	QueueFull        int64
	RetriesExhausted int64
	PermanentError   int64
	Rejected         int64
	Shutdown         int64
	Config           int64
	TooLarge         int64
}

// Total is the number of dropped spans, whatever the reason.
func (d Drops) Total() int64 {
	return d.QueueFull + d.RetriesExhausted + d.PermanentError + d.Rejected +
		d.Shutdown + d.Config + d.TooLarge
}

// Get returns the count for one reason.
func (d Drops) Get(r Reason) int64 {
	if p := d.field(r); p != nil {
		return *p
	}
	return 0
}

func (d *Drops) field(r Reason) *int64 {
	switch r {
	case ReasonQueueFull:
		return &d.QueueFull
	case ReasonRetriesExhausted:
		return &d.RetriesExhausted
	case ReasonPermanentError:
		return &d.PermanentError
	case ReasonRejected:
		return &d.Rejected
	case ReasonShutdown:
		return &d.Shutdown
	case ReasonConfig:
		return &d.Config
	case ReasonTooLarge:
		return &d.TooLarge
	}
	return nil
}

// Stats is a snapshot of the exporter's accounting. At every moment
//
//	Accepted == Exported + Dropped.Total() + Queued + InFlight
//
// Every span handed to ExportSpans is accepted, then either exported or
// dropped with a reason.
type Stats struct {
	// Accepted counts the spans handed to ExportSpans.
	Accepted int64
	// Exported counts the spans the backend accepted.
	Exported int64
	// Dropped counts the spans given up, by reason.
	Dropped Drops
	// Queued is the number of spans waiting for a worker.
	Queued int64
	// InFlight is the number of spans being sent, retry waits included.
	InFlight int64

	// QueueBytes is the memory held by the queued spans' encodings.
	QueueBytes int64
	// QueueCapacity and QueueCapacityBytes are the queue's budgets.
	QueueCapacity      int64
	QueueCapacityBytes int64

	// Requests counts the attempts made to send a request, retries
	// included; Retries counts the retries alone.
	Requests int64
	Retries  int64
	// Repaired counts string values with invalid UTF-8 that were repaired
	// (each invalid sequence replaced by U+FFFD) instead of failing the
	// request.
	Repaired int64
}

// counters is the exporter's accounting, kept consistent under one lock.
// Transitions happen per batch or per request, never per span, so the lock
// is cheap next to the work around it.
type counters struct {
	mu sync.Mutex
	s  Stats
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s
}
