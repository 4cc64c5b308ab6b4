package otlptest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// GRPCAnswer scripts an OTLP/gRPC receiver: called for every request with
// its number (from 1); a non-nil error is the answer, nil accepts.
type GRPCAnswer func(ctx context.Context, n int, req *coltracepb.ExportTraceServiceRequest) error

// GRPC is a loopback OTLP/gRPC receiver. Its methods are safe for
// concurrent use.
type GRPC struct {
	coltracepb.UnimplementedTraceServiceServer
	addr   string
	answer GRPCAnswer

	mu       sync.Mutex
	requests int
	spans    int
}

// NewGRPC starts a receiver answering with a (nil: accept everything) on a
// server with opts (grpc.Creds for TLS).
func NewGRPC(t testing.TB, a GRPCAnswer, opts ...grpc.ServerOption) *GRPC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveGRPC(t, ln, ln.Addr().String(), a, opts)
}

// NewGRPCUnix is NewGRPC on a unix socket in a directory of its own,
// removed when the test ends; its Endpoint is the gRPC target
// "unix:///dir/otlp.sock".
func NewGRPCUnix(t testing.TB, a GRPCAnswer, opts ...grpc.ServerOption) *GRPC {
	t.Helper()
	// Not t.TempDir: a socket's path is limited to about a hundred bytes,
	// and a long test name would pass it.
	dir, err := os.MkdirTemp("", "otlp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "otlp.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	return serveGRPC(t, ln, "unix://"+sock, a, opts)
}

func serveGRPC(t testing.TB, ln net.Listener, addr string, a GRPCAnswer, opts []grpc.ServerOption) *GRPC {
	g := &GRPC{addr: addr, answer: a}
	srv := grpc.NewServer(opts...)
	coltracepb.RegisterTraceServiceServer(srv, g)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return g
}

// Endpoint is the receiver's host:port, or its target for NewGRPCUnix.
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
