package exporter

import (
	"time"

	"github.com/tracekeeper/tracekeeper/internal/ledger"
)

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
	// (HTTP 400, 401, 403, 404, 500…, a redirect, or the gRPC
	// equivalents), or its certificate is not trusted.
	ReasonPermanentError Reason = "permanent_error"
	// ReasonRejected: the backend accepted the request but reported these
	// spans as rejected (OTLP partial success).
	ReasonRejected Reason = "rejected"
	// ReasonShutdown: the spans were still queued or in flight when the
	// Shutdown deadline passed, or arrived after Shutdown.
	ReasonShutdown Reason = "shutdown"
	// ReasonConfig: the exporter's configuration is invalid; nothing is
	// sent.
	ReasonConfig Reason = "config"
	// ReasonTooLarge: a single span's encoding exceeds the maximum request
	// size, or the backend refused a request holding only that span as too
	// large.
	ReasonTooLarge Reason = "too_large"
	// ReasonInvalid: an element of the batch handed to ExportSpans was not
	// a span (nil).
	ReasonInvalid Reason = "invalid"
	// ReasonSpoolFull: the memory budget was full and so was the disk
	// spool's budget (see WithSpool).
	ReasonSpoolFull Reason = "spool_full"
	// ReasonSpoolError: the disk spool failed to write the spans (disk
	// full, read-only or vanished directory); the exporter goes on with
	// memory only.
	ReasonSpoolError Reason = "spool_error"
)

// reasons lists every Reason, in the order reports print them.
var reasons = [...]Reason{
	ReasonQueueFull, ReasonRetriesExhausted, ReasonPermanentError,
	ReasonRejected, ReasonShutdown, ReasonConfig, ReasonTooLarge, ReasonInvalid,
	ReasonSpoolFull, ReasonSpoolError,
}

// reasonOf maps the ledger's reasons onto the public ones: spans abandoned
// at a Shutdown deadline and spans arriving after Shutdown are both
// ReasonShutdown.
var reasonOf = [ledger.NumReasons]Reason{
	ledger.QueueFull:        ReasonQueueFull,
	ledger.RetriesExhausted: ReasonRetriesExhausted,
	ledger.PermanentError:   ReasonPermanentError,
	ledger.Rejected:         ReasonRejected,
	ledger.Shutdown:         ReasonShutdown,
	ledger.Config:           ReasonConfig,
	ledger.TooLarge:         ReasonTooLarge,
	ledger.Invalid:          ReasonInvalid,
	ledger.Deadline:         ReasonShutdown,
	ledger.SpoolFull:        ReasonSpoolFull,
	ledger.SpoolError:       ReasonSpoolError,
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
	Invalid          int64
	SpoolFull        int64
	SpoolError       int64
}

// Total is the number of dropped spans, whatever the reason.
func (d Drops) Total() int64 {
	return d.QueueFull + d.RetriesExhausted + d.PermanentError + d.Rejected +
		d.Shutdown + d.Config + d.TooLarge + d.Invalid + d.SpoolFull + d.SpoolError
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
	case ReasonInvalid:
		return &d.Invalid
	case ReasonSpoolFull:
		return &d.SpoolFull
	case ReasonSpoolError:
		return &d.SpoolError
	}
	return nil
}

// Stats is a snapshot of the exporter's accounting. At every moment
//
//	Accepted == Exported + Dropped.Total() + Queued + Spooled + InFlight
//
// Every element handed to ExportSpans is accepted, then either exported or
// dropped with a reason; with a spool (WithSpool), spans found on disk at
// start are accepted too (Recovered).
type Stats struct {
	// Accepted counts the spans handed to ExportSpans.
	Accepted int64
	// Exported counts the spans the backend accepted.
	Exported int64
	// Dropped counts the spans given up, by reason.
	Dropped Drops
	// Queued is the number of spans waiting in memory for a sender.
	Queued int64
	// Spooled is the number of spans in the disk spool, or on their way
	// to it (see WithSpool).
	Spooled int64
	// InFlight is the number of spans being sent, retry waits included.
	InFlight int64

	// QueueBytes and InFlightBytes are the memory held by the queued
	// spans and by the requests in flight (their compressed form, with
	// gzip over HTTP). Together they stay within MemoryBudget.
	QueueBytes    int64
	InFlightBytes int64
	MemoryBudget  int64
	// QueueCapacity is the number of spans the queue holds at most.
	QueueCapacity int64

	// ConcurrencyLimit is the number of requests that may be in flight
	// now, and RoundTrip the recent round-trip time the limit adapts to
	// (see WithMaxConcurrency).
	ConcurrencyLimit int64
	RoundTrip        time.Duration

	// Requests counts the attempts made to send a request that have
	// ended (answered, failed or timed out), retries included; Retries
	// counts the retries alone. An attempt still waiting for its answer
	// is counted when it ends.
	Requests int64
	Retries  int64
	// Repaired counts string values with invalid UTF-8 that were repaired
	// (each invalid sequence replaced by U+FFFD) instead of failing the
	// request.
	Repaired int64
	// Recovered counts the spans an earlier process left in the spool,
	// found at start; Resent counts those of them that it had already sent
	// without an answer, which may reach the backend twice, and those a
	// crash left on disk twice, while a record delivered in part was put
	// back holding only the rest (see WithSpool). A refusal is
	// an answer: an HTTP status other than 502 and 504 (which a gateway
	// may send after passing the request on), a gRPC RESOURCE_EXHAUSTED,
	// a connection that could not be made, or, over OTLP/HTTP, a timeout
	// or cancellation before the request had a connection.
	Recovered int64
	Resent    int64
	// SpoolBytes is the disk the spool uses, SpoolBudget its limit;
	// SpoolCorrupt counts the corrupt records, torn or corrupt segment
	// tails and segments that could not be opened found at start, and
	// the records that failed their checksum when read back.
	SpoolBytes   int64
	SpoolBudget  int64
	SpoolCorrupt int64
	// SpoolRecords and SpoolSpans are the requests, and their spans, on
	// disk and not yet delivered (some of them may be in flight).
	SpoolRecords int64
	SpoolSpans   int64

	// Unwritten counts the dropped requests that the dropped-spans writer
	// did not receive, because it fell behind (see
	// WithDroppedSpansWriter), failed, or was still busy at Shutdown's
	// deadline (a second after the books settled, without one). The spans
	// themselves are counted in Dropped.
	Unwritten int64
}

// statsOf converts the ledger's books.
func statsOf(b ledger.Books) Stats {
	s := Stats{
		Accepted:      b.Accepted,
		Exported:      b.Exported,
		Queued:        b.Queued,
		Spooled:       b.Spooled,
		InFlight:      b.InFlight,
		Recovered:     b.Recovered,
		Resent:        b.Resent,
		QueueBytes:    b.QueueBytes,
		InFlightBytes: b.InFlightBytes,
		Requests:      b.Requests,
		Retries:       b.Retries,
		Repaired:      b.Repaired,
	}
	for r, n := range b.Dropped {
		*s.Dropped.field(reasonOf[r]) += n
	}
	return s
}
