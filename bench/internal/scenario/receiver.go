package scenario

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TracesPath is the URL path the receiver serves, the OTLP/HTTP default.
const TracesPath = "/v1/traces"

// maxBodyBytes bounds the request bodies the receiver reads.
const maxBodyBytes = 64 << 20

// Mode is the state of a Receiver's backend.
type Mode int

const (
	// Available answers every well-formed request with success.
	Available Mode = iota
	// Unavailable answers every request with 503 Service Unavailable,
	// without a Retry-After header, as a backend behind a load balancer
	// does when it is down.
	Unavailable
	// Refusing closes the listening socket and every open connection, so
	// that connection attempts are refused, as when the backend's process
	// is gone.
	Refusing
)

// String names the mode as the compare command prints it.
func (m Mode) String() string {
	switch m {
	case Available:
		return "available"
	case Unavailable:
		return "503"
	case Refusing:
		return "refused"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	// Latency holds back every answer by this long after the request body
	// has been read, as a distant or busy backend would. Zero answers at
	// once.
	Latency time.Duration
	// Decode fully decodes every request with proto.Unmarshal instead of
	// counting its spans on the wire. It checks more and costs more CPU
	// time, which the receiver shares with the pipeline under test.
	Decode bool
	// H2C makes the receiver also accept HTTP/2 without TLS (prior
	// knowledge), besides HTTP/1.1.
	H2C bool
	// MaxConcurrent, when positive, is the number of requests the
	// receiver serves at once, as a backend with a fixed number of
	// handlers does: a request that arrives while MaxConcurrent are being
	// answered is refused at once with 503 Service Unavailable, without a
	// Retry-After header. Zero serves any number.
	MaxConcurrent int
	// Clock times the latency; nil means the real clock.
	Clock clockwork.Clock
}

// ReceiverStats is a snapshot of what a Receiver saw.
type ReceiverStats struct {
	// Spans counts the spans of the requests answered with success:
	// delivered spans.
	Spans int64
	// Requests counts the requests answered with success; Failed those
	// answered with an error status (the outages' 503 and malformed
	// requests).
	Requests int64
	Failed   int64
	// Malformed counts requests whose body was not a valid
	// ExportTraceServiceRequest; they are answered 400 Bad Request.
	Malformed int64
	// Refused counts the requests answered 503 because MaxConcurrent
	// were already being served; they are counted in Failed too.
	Refused int64
	// PeakConcurrent is the largest number of requests served at once
	// (refused ones not included).
	PeakConcurrent int64
	// Bytes counts the request bodies of the successful requests, as sent
	// (compressed when they were).
	Bytes int64
	// Resumed is the time from the end of the last outage to the first
	// request answered with success after it; zero when no outage has
	// ended, negative when none has succeeded since.
	Resumed time.Duration
}

// sub returns the counts of s less those of earlier; the peak and the
// resumption are s's own.
func (s ReceiverStats) sub(earlier ReceiverStats) ReceiverStats {
	s.Spans -= earlier.Spans
	s.Requests -= earlier.Requests
	s.Failed -= earlier.Failed
	s.Malformed -= earlier.Malformed
	s.Refused -= earlier.Refused
	s.Bytes -= earlier.Bytes
	return s
}

// Receiver is an embedded OTLP/HTTP trace receiver listening on a loopback
// port. It is safe for concurrent use.
type Receiver struct {
	cfg     ReceiverConfig
	clock   clockwork.Clock
	srv     *http.Server
	addr    string
	latency atomic.Int64 // time.Duration
	mode    atomic.Int32 // Mode

	spans, requests, failed, malformed, bytes atomic.Int64
	refused, active, peakActive               atomic.Int64

	mu          sync.Mutex
	ln          net.Listener // nil while refusing
	conns       map[net.Conn]struct{}
	closed      bool
	recoveredAt time.Time // end of the last outage
	resumed     time.Duration
	awaiting    atomic.Bool // an outage ended and no request has succeeded since

	serving  sync.WaitGroup // Serve loops
	handlers sync.WaitGroup // requests being answered
	bufs     sync.Pool      // *bytes.Buffer
}

// NewReceiver starts a receiver on 127.0.0.1 at a port of the system's
// choosing.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("scenario: receiver: %w", err)
	}
	r := &Receiver{
		cfg:   cfg,
		clock: cfg.Clock,
		addr:  ln.Addr().String(),
		conns: make(map[net.Conn]struct{}),
	}
	if r.clock == nil {
		r.clock = clockwork.NewRealClock()
	}
	r.bufs.New = func() any { return new(bytes.Buffer) }
	r.latency.Store(int64(cfg.Latency))
	r.srv = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         r.track,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if cfg.H2C {
		r.srv.Protocols = new(http.Protocols)
		r.srv.Protocols.SetHTTP1(true)
		r.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	r.ln = ln
	r.serve(ln)
	return r, nil
}

// Addr is the receiver's "host:port", for WithEndpoint.
func (r *Receiver) Addr() string { return r.addr }

// SetLatency changes the latency of the answers to come.
func (r *Receiver) SetLatency(d time.Duration) { r.latency.Store(int64(d)) }

// Mode reports the current mode.
func (r *Receiver) Mode() Mode { return Mode(r.mode.Load()) }

// SetMode starts or ends an outage. Entering Refusing closes the listener
// and every open connection; leaving it listens again on the same address.
func (r *Receiver) SetMode(m Mode) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("scenario: receiver closed")
	}
	old := Mode(r.mode.Load())
	if m == old {
		return nil
	}
	switch {
	case m == Refusing:
		err := r.ln.Close()
		r.ln = nil
		for c := range r.conns {
			_ = c.Close()
		}
		if err != nil {
			return fmt.Errorf("scenario: receiver: stop listening: %w", err)
		}
	case old == Refusing:
		ln, err := net.Listen("tcp", r.addr)
		if err != nil {
			return fmt.Errorf("scenario: receiver: listen again on %s: %w", r.addr, err)
		}
		r.ln = ln
		r.serve(ln)
	}
	r.mode.Store(int32(m))
	if m == Available {
		r.recoveredAt = r.clock.Now()
		r.resumed = -1
		r.awaiting.Store(true)
	}
	return nil
}

// Stats returns what the receiver has seen so far.
func (r *Receiver) Stats() ReceiverStats {
	s := ReceiverStats{
		Spans:     r.spans.Load(),
		Requests:  r.requests.Load(),
		Failed:    r.failed.Load(),
		Malformed: r.malformed.Load(),
		Bytes:     r.bytes.Load(),

		Refused:        r.refused.Load(),
		PeakConcurrent: r.peakActive.Load(),
	}
	r.mu.Lock()
	s.Resumed = r.resumed
	r.mu.Unlock()
	return s
}

// Close stops the receiver, closes its connections and waits for the
// requests being answered. Requests still held back by the latency are
// abandoned without success.
func (r *Receiver) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	err := r.srv.Close()
	r.serving.Wait()
	r.handlers.Wait()
	if err != nil {
		return fmt.Errorf("scenario: receiver: close: %w", err)
	}
	return nil
}

func (r *Receiver) serve(ln net.Listener) {
	r.serving.Add(1)
	go func() {
		defer r.serving.Done()
		_ = r.srv.Serve(ln)
	}()
}

// track keeps the set of open connections, to close them when refusing.
func (r *Receiver) track(c net.Conn, st http.ConnState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch st {
	case http.StateNew:
		if r.ln == nil && !r.closed {
			// Accepted just before the listener closed.
			_ = c.Close()
			return
		}
		r.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(r.conns, c)
	}
}

// ServeHTTP answers one export request.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.fail(w, http.StatusServiceUnavailable)
		return
	}
	r.handlers.Add(1)
	r.mu.Unlock()
	defer r.handlers.Done()
	if req.Method != http.MethodPost || req.URL.Path != TracesPath {
		http.NotFound(w, req)
		return
	}
	sent, n, err := r.read(req)
	switch {
	case errors.Is(err, errClientGone):
		return
	case r.Mode() != Available:
		r.fail(w, http.StatusServiceUnavailable)
		return
	case err != nil:
		r.malformed.Add(1)
		r.fail(w, http.StatusBadRequest)
		return
	}
	if !r.acquire() {
		r.refused.Add(1)
		r.fail(w, http.StatusServiceUnavailable)
		return
	}
	defer r.active.Add(-1)
	if d := time.Duration(r.latency.Load()); d > 0 {
		t := r.clock.NewTimer(d)
		select {
		case <-t.Chan():
		case <-req.Context().Done():
			t.Stop()
			return
		}
	}
	if req.Context().Err() != nil {
		return
	}
	if r.Mode() != Available {
		r.fail(w, http.StatusServiceUnavailable)
		return
	}
	r.spans.Add(int64(n))
	r.requests.Add(1)
	r.bytes.Add(int64(sent))
	if r.awaiting.Load() {
		r.mu.Lock()
		if r.awaiting.Load() {
			r.resumed = r.clock.Since(r.recoveredAt)
			r.awaiting.Store(false)
		}
		r.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// acquire takes one of the MaxConcurrent places of a request being
// served; it reports false when all are taken.
func (r *Receiver) acquire() bool {
	n := r.active.Add(1)
	if limit := int64(r.cfg.MaxConcurrent); limit > 0 && n > limit {
		r.active.Add(-1)
		return false
	}
	for {
		peak := r.peakActive.Load()
		if n <= peak || r.peakActive.CompareAndSwap(peak, n) {
			return true
		}
	}
}

func (r *Receiver) fail(w http.ResponseWriter, code int) {
	r.failed.Add(1)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
}

// errClientGone is returned by read when the request body could not be
// read to its end.
var errClientGone = errors.New("scenario: request body not read to its end")

// read reads a request's body and counts its spans. The body's buffer goes
// back to the pool before the answer is held back, so the receiver's own
// memory stays small next to the pipeline's under test.
func (r *Receiver) read(req *http.Request) (sent, spans int, err error) {
	buf := r.bufs.Get().(*bytes.Buffer)
	defer r.bufs.Put(buf)
	buf.Reset()
	if req.ContentLength > 0 && req.ContentLength <= maxBodyBytes {
		buf.Grow(int(req.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(req.Body, maxBodyBytes)); err != nil {
		return 0, 0, errClientGone
	}
	n, err := r.count(buf, req.Header.Get("Content-Encoding"))
	return buf.Len(), n, err
}

// count returns the number of spans in a request body.
func (r *Receiver) count(buf *bytes.Buffer, encoding string) (int, error) {
	body := buf.Bytes()
	switch encoding {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return 0, fmt.Errorf("scenario: gzip body: %w", err)
		}
		body, err = io.ReadAll(io.LimitReader(zr, maxBodyBytes))
		if err != nil {
			return 0, fmt.Errorf("scenario: gzip body: %w", err)
		}
	default:
		return 0, fmt.Errorf("scenario: unsupported Content-Encoding %q", encoding)
	}
	if !r.cfg.Decode {
		return CountSpans(body)
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		return 0, fmt.Errorf("scenario: decode request: %w", err)
	}
	n := 0
	for _, rs := range msg.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	return n, nil
}
