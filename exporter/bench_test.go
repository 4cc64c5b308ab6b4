package exporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
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

	batch := otlptest.Spans(512)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := e.ExportSpans(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/span")
}
