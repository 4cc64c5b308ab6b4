// Package transport sends encoded OTLP ExportTraceServiceRequest messages to
// a backend and classifies the outcome of each attempt the way the OTLP
// specification asks: retryable (with the delay the server asked for),
// permanent, or too large.
//
// A Client makes exactly one attempt per Send; retries, splitting and
// accounting belong to the caller.
package transport

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Client sends one request per call. Implementations are safe for
// concurrent use.
type Client interface {
	// Send delivers body. A nil error means the backend accepted the
	// request, possibly partially (Response). A failed attempt returns an
	// *Error.
	Send(ctx context.Context, body *Body) (Response, error)
	// Close releases idle connections.
	Close() error
}

// Body is one request: the concatenation of its parts, each an encoded
// ExportTraceServiceRequest (their concatenation is one too: its only
// field is repeated), and, once Compress has run, its gzip encoding,
// which is then what every attempt sends.
type Body struct {
	Parts [][]byte
	gz    *gzipBuffer
}

// Compressed reports whether the body holds its gzip encoding.
func (b *Body) Compressed() bool { return b.gz != nil }

// Held is the memory the body's compressed form holds; zero when it has
// none.
func (b *Body) Held() int64 {
	if b.gz == nil {
		return 0
	}
	return int64(b.gz.buf.Cap())
}

// Plain returns the uncompressed request, joining the parts or
// decompressing the compressed form (after the parts were released).
func (b *Body) Plain() ([]byte, error) {
	if b.Parts != nil || b.gz == nil {
		var out []byte
		for _, p := range b.Parts {
			out = append(out, p...)
		}
		return out, nil
	}
	return gunzip(b.gz.buf.Bytes())
}

// Extend appends parts to a compressed body: it decompresses the body into
// a new gzip stream followed by parts, which every attempt then sends, and
// releases the earlier compressed form. On error the body is left as it
// was.
func (b *Body) Extend(parts [][]byte) error {
	if b.gz == nil {
		return errors.New("transport: extending a body that is not compressed")
	}
	zr, err := gzip.NewReader(bytes.NewReader(b.gz.buf.Bytes()))
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	g, err := compressFrom(zr, parts)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	putGzip(b.gz)
	b.gz = g
	return nil
}

// Release returns the compressed form's buffer; the body must not be used
// afterwards.
func (b *Body) Release() {
	if b.gz != nil {
		putGzip(b.gz)
		b.gz = nil
	}
	b.Parts = nil
}

// Response is what the backend said about an accepted request.
type Response struct {
	// Rejected is the partial_success.rejected_spans the backend reported.
	Rejected int64
	// Message is the partial_success.error_message, or a note about an
	// unparsable response body.
	Message string
	// Status is the HTTP status code or gRPC code of the answer.
	Status int
	// Code is the status as the semantic conventions spell it: "200" for
	// HTTP, "OK" for gRPC.
	Code string
}

// Kind classifies a failed attempt.
type Kind int

const (
	// Retryable failures may succeed later: throttling, unavailability,
	// timeouts and connection errors.
	Retryable Kind = iota
	// Permanent failures will fail again whatever the delay.
	Permanent
	// TooLarge means the backend refused the request for its size; a
	// request split in two may pass.
	TooLarge
)

func (k Kind) String() string {
	switch k {
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	case TooLarge:
		return "too large"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error describes a failed attempt.
type Error struct {
	Kind Kind
	// Throttle is the delay the server asked for (Retry-After or RetryInfo),
	// zero when it gave none or a negative one; never negative, and
	// math.MaxInt64 for one longer than a Duration holds.
	Throttle time.Duration
	// Status is the HTTP status code or gRPC code, zero for a failure
	// before any answer (connection refused, timeout).
	Status int
	// Code is the status as the semantic conventions spell it ("503",
	// "UNAVAILABLE"), empty without an answer.
	Code string
	// Paced marks a TooLarge refusal that may not be about size (a gRPC
	// RESOURCE_EXHAUSTED without RetryInfo, which also means "over
	// quota"): the caller splits the request but waits before each further
	// split, as before a retry.
	Paced bool
	// Unsent marks a failure before the request had a connection to go
	// out on (a timeout or a cancellation while dialing, say): the
	// backend cannot have received it.
	Unsent bool
	// Err is the underlying error or the server's message.
	Err error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("transport: %s failure (status %d): %v", e.Kind, e.Status, e.Err)
	}
	return fmt.Sprintf("transport: %s failure: %v", e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Type is the error.type the semantic conventions ask for: the status
// code when the backend answered, else a short name of the failure.
func (e *Error) Type() string {
	switch {
	case e.Code != "":
		return e.Code
	case errors.Is(e.Err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(e.Err, context.Canceled):
		return "canceled"
	}
	return "transport"
}

// Classify returns the *Error in err's chain, or wraps err as a retryable
// failure.
func Classify(err error) *Error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	return &Error{Kind: Retryable, Err: err}
}

// Unreceived reports whether the failed attempt that returned err
// certainly left the request unprocessed: no connection to the backend
// was made, or the backend answered with a refusal. Every HTTP status
// says so but 502 and 504, which a gateway may send after passing the
// request on. Of the gRPC codes, only RESOURCE_EXHAUSTED does: the client
// makes the others itself, UNAVAILABLE as well for a connection lost with
// the request on it, and the underlying error of a gRPC failure is not
// kept. A timeout or a cancellation is sure only when it came before the
// request had a connection (Error.Unsent), which OTLP/HTTP knows.
func Unreceived(err error) bool {
	te := Classify(err)
	if te.Unsent {
		return true
	}
	switch te.Code {
	case "":
		var op *net.OpError
		return errors.As(te.Err, &op) && op.Op == "dial"
	case "502", "504":
		return false
	case "RESOURCE_EXHAUSTED":
		return true
	}
	// Any other HTTP status: a gRPC code's name is not a number.
	_, err = strconv.Atoi(te.Code)
	return err == nil
}
