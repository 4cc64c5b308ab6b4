package exporter_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// concurrency counts the requests a receiver is serving at once.
type concurrency struct {
	now, peak atomic.Int32
}

func (c *concurrency) enter() int32 {
	n := c.now.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return n
}

func (c *concurrency) leave() { c.now.Add(-1) }

// conns counts the connections a gRPC server accepts.
type conns struct{ n atomic.Int32 }

func (c *conns) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (c *conns) HandleRPC(context.Context, stats.RPCStats)                         {}
func (c *conns) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c *conns) HandleConn(_ context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnBegin); ok {
		c.n.Add(1)
	}
}

// TestGRPCStreamsAreNoCeiling checks that OTLP/gRPC, which multiplexes
// every request on one connection, does not cap the adaptive concurrency:
// against a gRPC server with the default stream limit, a backend that
// answers only once 120 requests wait inside it gets them, all on one
// client connection.
func TestGRPCStreamsAreNoCeiling(t *testing.T) {
	const want = 120
	var c concurrency
	var cs conns
	reached := make(chan struct{})
	var once sync.Once
	rcv := otlptest.NewGRPC(t, func(ctx context.Context, _ int, _ *coltracepb.ExportTraceServiceRequest) error {
		defer c.leave()
		if c.enter() >= want {
			once.Do(func() { close(reached) })
		}
		select {
		case <-reached:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, grpc.StatsHandler(&cs))
	exp := exporter.New(exporter.WithProtocol(exporter.ProtocolGRPC), exporter.WithEndpoint(rcv.Endpoint()),
		exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()), exporter.WithMaxRequestSize(8<<10))
	ctx := context.Background()
	deadline := time.After(time.Minute)
	offered := 0
	for done := false; !done; {
		select {
		case <-reached:
			done = true
		case <-deadline:
			t.Fatalf("at most %d requests reached the backend at once; limit %d", c.peak.Load(), exp.Stats().ConcurrencyLimit)
		default:
			_ = exp.ExportSpans(ctx, otlptest.Spans(64))
			offered += 64
			time.Sleep(time.Millisecond) // a steady stream, not a burst
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := exp.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	st := exp.Stats()
	t.Logf("peak %d requests at the backend at once over %d connections, limit %d, %d spans offered",
		c.peak.Load(), cs.n.Load(), st.ConcurrencyLimit, offered)
	if st.Dropped.Total() != 0 || rcv.Spans() != offered {
		t.Fatalf("delivered %d of %d, dropped %+v", rcv.Spans(), offered, st.Dropped)
	}
	if n := cs.n.Load(); n != 1 {
		t.Fatalf("%d connections, want the one every request shares", n)
	}
}

// TestGRPCStreamLimitMakesRequestsWait has a gRPC server allowing 4
// streams at once: requests beyond it wait on the client for a stream
// instead of failing, and every span is delivered.
func TestGRPCStreamLimitMakesRequestsWait(t *testing.T) {
	const streams = 4
	var c concurrency
	rcv := otlptest.NewGRPC(t, func(ctx context.Context, _ int, _ *coltracepb.ExportTraceServiceRequest) error {
		defer c.leave()
		c.enter()
		select { // the backend's latency
		case <-time.After(5 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, grpc.MaxConcurrentStreams(streams))
	exp := exporter.New(exporter.WithProtocol(exporter.ProtocolGRPC), exporter.WithEndpoint(rcv.Endpoint()),
		exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()), exporter.WithMaxRequestSize(8<<10))
	ctx := context.Background()
	const n = 200
	for range n {
		_ = exp.ExportSpans(ctx, otlptest.Spans(64))
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := exp.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	st := exp.Stats()
	t.Logf("peak %d requests at the backend at once, %d requests, limit %d", c.peak.Load(), rcv.Requests(), st.ConcurrencyLimit)
	if st.Dropped.Total() != 0 || rcv.Spans() != n*64 {
		t.Fatalf("delivered %d of %d, dropped %+v", rcv.Spans(), n*64, st.Dropped)
	}
	if p := c.peak.Load(); p > streams {
		t.Fatalf("%d requests served at once, more than the server's %d streams", p, streams)
	}
}
