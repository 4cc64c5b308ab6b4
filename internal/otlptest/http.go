package otlptest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Answer scripts an OTLP/HTTP receiver. It is called for every request
// with the request's number (from 1) and its decompressed body, and returns
// true when it has written the answer itself; otherwise the receiver
// decodes the body, keeps it, and answers 200.
type Answer func(n int, body []byte, w http.ResponseWriter, r *http.Request) bool

// Request is what an HTTP receiver or a Capture keeps of a request it read.
type Request struct {
	Method      string
	Path        string
	ContentType string
	Header      http.Header
	// Gzipped reports whether the body came with Content-Encoding gzip.
	Gzipped bool
	// Body is the decompressed body.
	Body []byte
}

// readRequest reads r's body, decompressing it when it is gzipped. A
// gzipped body must be one gzip stream: some backends read only the first
// member of a concatenation.
func readRequest(r *http.Request) (Request, error) {
	body, err := io.ReadAll(r.Body)
	gz := r.Header.Get("Content-Encoding") == "gzip"
	if err == nil && gz {
		var zr *gzip.Reader
		src := bytes.NewReader(body)
		if zr, err = gzip.NewReader(src); err == nil {
			zr.Multistream(false)
			body, err = io.ReadAll(zr)
			if err == nil && src.Len() > 0 {
				err = fmt.Errorf("otlptest: %d bytes after the first gzip member", src.Len())
			}
		}
	}
	return Request{
		Method:      r.Method,
		Path:        r.URL.Path,
		ContentType: r.Header.Get("Content-Type"),
		Header:      r.Header.Clone(),
		Gzipped:     gz,
		Body:        body,
	}, err
}

// HTTP is a loopback OTLP/HTTP receiver. It keeps every request it reads
// (Received) and every request it accepts, decoded (Accepted). Its methods
// are safe for concurrent use.
type HTTP struct {
	t       testing.TB
	srv     *httptest.Server
	scheme  string
	answer  Answer
	release chan struct{}
	once    sync.Once

	mu         sync.Mutex
	arrived    chan struct{} // closed and replaced at each request read
	received   []Request
	unreadable int
	spans      int
	accepted   []*coltracepb.ExportTraceServiceRequest
}

// NewHTTP starts a receiver answering with a (nil: accept everything).
func NewHTTP(t testing.TB, a Answer) *HTTP {
	t.Helper()
	return newHTTP(t, a, nil)
}

// NewHTTPS starts a receiver answering with a (nil: accept everything)
// over TLS configured by cfg, which holds at least the server's
// certificate.
func NewHTTPS(t testing.TB, a Answer, cfg *tls.Config) *HTTP {
	t.Helper()
	return newHTTP(t, a, cfg)
}

func newHTTP(t testing.TB, a Answer, cfg *tls.Config) *HTTP {
	t.Helper()
	r := &HTTP{t: t, answer: a, release: make(chan struct{}), arrived: make(chan struct{})}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.scheme = "http://"
	if cfg != nil {
		r.srv.TLS = cfg
		r.srv.StartTLS()
		r.scheme = "https://"
	} else {
		r.srv.Start()
	}
	// Cleanups run last-registered first: held requests are released,
	// then the server, which waits for its handlers, is closed.
	t.Cleanup(r.srv.Close)
	t.Cleanup(r.Unblock)
	if !strings.HasPrefix(r.srv.URL, r.scheme+"127.0.0.1:") {
		t.Fatalf("otlptest: the receiver is not on loopback: %s", r.srv.URL)
	}
	return r
}

// URL is the receiver's traces URL.
func (r *HTTP) URL() string { return r.srv.URL + "/v1/traces" }

// Endpoint is the receiver's host:port.
func (r *HTTP) Endpoint() string { return strings.TrimPrefix(r.srv.URL, r.scheme) }

func (r *HTTP) serve(w http.ResponseWriter, req *http.Request) {
	rec, err := readRequest(req)
	if err != nil {
		r.mu.Lock()
		r.unreadable++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.received = append(r.received, rec)
	n := len(r.received)
	close(r.arrived)
	r.arrived = make(chan struct{})
	r.mu.Unlock()
	if r.answer != nil && r.answer(n, rec.Body, w, req) {
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(rec.Body, &msg); err != nil {
		r.t.Errorf("otlptest: request %d is not an ExportTraceServiceRequest: %v", n, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.accepted = append(r.accepted, &msg)
	r.spans += Count(&msg)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// Wait keeps a request until Unblock or until the client gives up, and
// reports whether it was Unblock. An Answer that accepts once released
// returns !Wait(r) after answering 503 to an abandoned request.
func (r *HTTP) Wait(req *http.Request) bool {
	select {
	case <-r.release:
		return true
	case <-req.Context().Done():
		return false
	}
}

// Hold is an answer body that keeps a request until Unblock or until the
// client gives up, then answers 503, so that nothing held is ever counted
// as accepted.
func (r *HTTP) Hold(w http.ResponseWriter, req *http.Request) {
	r.Wait(req)
	w.WriteHeader(http.StatusServiceUnavailable)
}

// Unblock releases every request held by Hold or Wait, now and later.
func (r *HTTP) Unblock() { r.once.Do(func() { close(r.release) }) }

// WaitRequests waits until the receiver has read n requests, or returns
// ctx's error.
func (r *HTTP) WaitRequests(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		got, arrived := len(r.received), r.arrived
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return fmt.Errorf("otlptest: %d of %d requests received: %w", got, n, ctx.Err())
		}
	}
}

// Requests is the number of requests received whose body could be read.
func (r *HTTP) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.received)
}

// Unreadable is the number of requests whose body could not be read or
// decompressed; they were answered 400 and are not in Received.
func (r *HTTP) Unreadable() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreadable
}

// Received returns the requests read so far, in the order they arrived.
func (r *HTTP) Received() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.received...)
}

// Spans is the number of spans accepted.
func (r *HTTP) Spans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spans
}

// Accepted returns the requests accepted so far.
func (r *HTTP) Accepted() []*coltracepb.ExportTraceServiceRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*coltracepb.ExportTraceServiceRequest(nil), r.accepted...)
}

// Capture is an http.Handler that keeps the decompressed body and the
// Content-Type of every request and answers 200 without reading the body
// as OTLP, so it takes any encoding (protobuf, OTLP/JSON). It is for
// callers without a testing.TB, such as benchmark helpers; a test uses
// HTTP. The zero value is ready to use; it is safe for concurrent use.
type Capture struct {
	mu     sync.Mutex
	bodies [][]byte
	types  []string
}

// ServeHTTP keeps r's body and answers 200, or 400 if the body cannot be
// read.
func (c *Capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec, err := readRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.bodies = append(c.bodies, rec.Body)
	c.types = append(c.types, rec.ContentType)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// Take returns the bodies and Content-Types received since the last call.
func (c *Capture) Take() (bodies [][]byte, contentTypes []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	bodies, contentTypes = c.bodies, c.types
	c.bodies, c.types = nil, nil
	return bodies, contentTypes
}

// Count returns the number of spans in req.
func Count(req *coltracepb.ExportTraceServiceRequest) int {
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	return n
}

// RefusedAddr returns a loopback host:port where nothing listens, so that
// connecting to it is refused.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
