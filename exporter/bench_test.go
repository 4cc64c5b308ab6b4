package exporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/zap"
)

// BenchmarkExportSpans measures the exporter's whole cost per batch of 512
// spans with 8 attributes: ExportSpans encoding and queueing it on the
// caller's goroutine, and the workers sending it to a loopback backend that
// discards it. Allocations are counted process-wide, so allocs/op includes
// the HTTP client's per-request work.
func BenchmarkExportSpans(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	e := New(WithEndpoint(strings.TrimPrefix(srv.URL, "http://")), WithInsecure(), WithLogger(zap.NewNop()),
		WithBlockOnFull(time.Minute)) // measure encoding and queueing, not dropping
	defer e.Shutdown(context.Background())

	batch := spans(512)
	for i, s := range batch {
		stub := tracetest.SpanStubFromReadOnlySpan(s)
		stub.Attributes = []attribute.KeyValue{
			attribute.String("http.request.method", "GET"),
			attribute.String("http.route", "/api/v1/orders/{id}"),
			attribute.Int("http.response.status_code", 200),
			attribute.String("server.address", "orders.internal"),
			attribute.Int("server.port", 8080),
			attribute.String("user_agent.original", "Mozilla/5.0"),
			attribute.Bool("cache.hit", i%2 == 0),
			attribute.Float64("ratio", 0.25),
		}
		batch[i] = stub.Snapshot()
	}
	var ro []sdktrace.ReadOnlySpan = batch
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := e.ExportSpans(context.Background(), ro); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ro)), "ns/span")
}
