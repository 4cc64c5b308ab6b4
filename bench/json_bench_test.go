package bench_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/bench/internal/otlpparity"
	"github.com/tracekeeper/tracekeeper/exporter"
)

// BenchmarkHTTPEncodings sends a batch of 512 spans over loopback HTTP to
// a server that reads and discards the body, with the stock otlptracehttp
// exporter and with ours, in protobuf and in OTLP/JSON (retries off, no
// compression). Ours is measured to the end of delivery: ExportSpans, then
// ForceFlush, which returns once the request is answered. Each reports
// ns/span and allocs/span, so the cost of JSON shows beside protobuf's for
// both exporters.
func BenchmarkHTTPEncodings(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	spans := otlpparity.BenchSpans(512)
	ctx := context.Background()
	for _, json := range []bool{false, true} {
		name := "protobuf"
		if json {
			name = "json"
		}
		b.Run("stock-"+name, func(b *testing.B) {
			opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(srv.URL + "/v1/traces"),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
			if json {
				opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
			}
			exp, err := otlptracehttp.New(ctx, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = exp.Shutdown(ctx) }()
			perSpan(b, len(spans), func() {
				if err := exp.ExportSpans(ctx, spans); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("tracekeeper-"+name, func(b *testing.B) {
			enc := exporter.EncodingProtobuf
			if json {
				enc = exporter.EncodingJSON
			}
			exp := exporter.New(exporter.WithEndpoint(strings.TrimPrefix(srv.URL, "http://")), exporter.WithInsecure(),
				exporter.WithEncoding(enc), exporter.WithRetry(exporter.RetryConfig{}), exporter.WithLogger(zap.NewNop()))
			defer func() { _ = exp.Shutdown(ctx) }()
			perSpan(b, len(spans), func() {
				if err := exp.ExportSpans(ctx, spans); err != nil {
					b.Fatal(err)
				}
				if err := exp.ForceFlush(ctx); err != nil {
					b.Fatal(err)
				}
			})
			if s := exp.Stats(); s.Dropped.Total() != 0 {
				b.Fatalf("dropped: %+v", s)
			}
		})
	}
}
