// Package otlptest is the project's one kit for testing OTLP exporters:
// loopback OTLP/HTTP and OTLP/gRPC receivers whose answers a test
// scripts, and span fixtures.
//
// Receivers listen on 127.0.0.1 only and stop when the test ends.
package otlptest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Answer scripts an OTLP/HTTP receiver. It is called for every request
// with the request's number (from 1) and its decompressed body, and returns
// true when it has written the answer itself; otherwise the receiver
// decodes the body, keeps it, and answers 200.
type Answer func(n int, body []byte, w http.ResponseWriter, r *http.Request) bool

// HTTP is a loopback OTLP/HTTP receiver.
type HTTP struct {
	t       testing.TB
	srv     *httptest.Server
	answer  Answer
	release chan struct{}
	once    sync.Once

	mu       sync.Mutex
	requests int
	spans    int
	accepted []*coltracepb.ExportTraceServiceRequest
}

// NewHTTP starts a receiver answering with a (nil: accept everything).
func NewHTTP(t testing.TB, a Answer) *HTTP {
	t.Helper()
	r := &HTTP{t: t, answer: a, release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	// Cleanups run last-registered first: held requests are released,
	// then the server, which waits for its handlers, is closed.
	t.Cleanup(r.srv.Close)
	t.Cleanup(r.Unblock)
	return r
}

// URL is the receiver's traces URL.
func (r *HTTP) URL() string { return r.srv.URL + "/v1/traces" }

// Endpoint is the receiver's host:port.
func (r *HTTP) Endpoint() string { return strings.TrimPrefix(r.srv.URL, "http://") }

func (r *HTTP) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err == nil && req.Header.Get("Content-Encoding") == "gzip" {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(body)); err == nil {
			body, err = io.ReadAll(zr)
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.requests++
	n := r.requests
	r.mu.Unlock()
	if r.answer != nil && r.answer(n, body, w, req) {
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
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

// Hold is an answer body that keeps a request until Unblock or until the
// client gives up, then answers 503, so that nothing held is ever counted
// as accepted.
func (r *HTTP) Hold(w http.ResponseWriter, req *http.Request) {
	select {
	case <-r.release:
	case <-req.Context().Done():
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

// Unblock releases every request held by Hold, now and later.
func (r *HTTP) Unblock() { r.once.Do(func() { close(r.release) }) }

// Requests is the number of requests received.
func (r *HTTP) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
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

// GRPCAnswer scripts an OTLP/gRPC receiver: called for every request with
// its number (from 1); a non-nil error is the answer, nil accepts.
type GRPCAnswer func(ctx context.Context, n int, req *coltracepb.ExportTraceServiceRequest) error

// GRPC is a loopback OTLP/gRPC receiver.
type GRPC struct {
	coltracepb.UnimplementedTraceServiceServer
	addr   string
	answer GRPCAnswer

	mu       sync.Mutex
	requests int
	spans    int
}

// NewGRPC starts a receiver answering with a (nil: accept everything) on a
// server with opts.
func NewGRPC(t testing.TB, a GRPCAnswer, opts ...grpc.ServerOption) *GRPC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &GRPC{addr: ln.Addr().String(), answer: a}
	srv := grpc.NewServer(opts...)
	coltracepb.RegisterTraceServiceServer(srv, g)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return g
}

// Endpoint is the receiver's host:port.
func (g *GRPC) Endpoint() string { return g.addr }

// Export implements the OTLP trace service.
func (g *GRPC) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.mu.Lock()
	g.requests++
	n := g.requests
	g.mu.Unlock()
	if g.answer != nil {
		if err := g.answer(ctx, n, req); err != nil {
			return nil, err
		}
	}
	g.mu.Lock()
	g.spans += Count(req)
	g.mu.Unlock()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// Requests is the number of requests received.
func (g *GRPC) Requests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests
}

// Spans is the number of spans accepted.
func (g *GRPC) Spans() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.spans
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

// Attributes8 returns the eight attributes of the project's benchmark
// span, the shape of a typical HTTP server span.
func Attributes8(i int) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("http.request.method", "GET"),
		attribute.String("url.path", "/api/v1/orders"),
		attribute.Int("http.response.status_code", 200),
		attribute.String("server.address", "orders.internal"),
		attribute.Int("server.port", 8080),
		attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
		attribute.Bool("tk.cache_hit", i%2 == 0),
		attribute.Float64("tk.load", 0.75),
	}
}

// Spans returns n ended, sampled spans with distinct ids and the eight
// attributes of Attributes8.
func Spans(n int) []sdktrace.ReadOnlySpan {
	out := make([]sdktrace.ReadOnlySpan, n)
	for i := range out {
		var tid trace.TraceID
		var sid trace.SpanID
		tid[0], tid[14], tid[15] = 1, byte(i>>8), byte(i)
		sid[0], sid[6], sid[7] = 1, byte(i>>8), byte(i)
		out[i] = tracetest.SpanStub{
			Name: fmt.Sprintf("op-%d", i%8),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
			}),
			SpanKind:   trace.SpanKindServer,
			StartTime:  time.Unix(100, 0),
			EndTime:    time.Unix(101, 0),
			Attributes: Attributes8(i),
		}.Snapshot()
	}
	return out
}
