package bench_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// recordingTransport records the first request it is given and answers it
// with an empty OTLP success, so that nothing leaves the process.
type recordingTransport struct {
	mu     sync.Mutex
	url    string
	header http.Header
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	r.mu.Lock()
	if r.url == "" {
		r.url, r.header = req.URL.String(), req.Header.Clone()
	}
	r.mu.Unlock()
	body, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/x-protobuf"}},
		Body: io.NopCloser(bytes.NewReader(body)), Request: req, ProtoMajor: 1, ProtoMinor: 1}, nil
}

func (r *recordingTransport) first() (string, http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.url, r.header
}

// parityHeaders are the request headers a parity case compares.
var parityHeaders = []string{"Api-Key", "X-Two", "Authorization", "Content-Encoding", "Content-Type"}

// TestEndpointParityWithStock sends one span through our exporter and
// through otlptracehttp v1.47.0 with the same environment and the same
// options, and requires the same request URL and headers: the README's
// option and environment tables say "same" for each of these settings.
// Where ours differs on purpose (a malformed variable is ignored, leaving
// the generic one in force, where stock sends to "https:///" or drops the
// generic headers), internal/envconfig's tests hold our behaviour.
func TestEndpointParityWithStock(t *testing.T) {
	span := tracetest.SpanStub{Name: "parity"}.Snapshot()
	for _, tc := range []struct {
		name  string
		env   map[string]string
		ours  []exporter.Option
		stock []otlptracehttp.Option
		// userAgent: the case sets a User-Agent header, which is then
		// compared too (the exporters' own differ).
		userAgent bool
	}{
		{name: "env URL without port, https", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://api.example.com"}},
		{name: "env URL without port, http", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example"}},
		{name: "env URL with trailing slash", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318/"}},
		{name: "env URL with a base path", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318/custom/"}},
		{name: "env traces URL without path", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector.example:4318"}},
		{name: "env IPv6", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1]:4318"}},
		{name: "env traces wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a.example:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b.example:2/x"}},
		{name: "env headers", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c.example:1", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b%3Dc%2C, x-two = %20v2 ,Authorization=Basic%20abc=="}},
		{name: "env traces headers replace the generic ones", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c.example:1", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-two=2"}},
		{name: "env gzip", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c.example:1", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}},
		{name: "URL without path",
			ours:  []exporter.Option{exporter.WithEndpointURL("http://collector.example:4318")},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpointURL("http://collector.example:4318")}},
		{name: "URL without port",
			ours:  []exporter.Option{exporter.WithEndpointURL("https://api.example.com/v1/traces")},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpointURL("https://api.example.com/v1/traces")}},
		{name: "URL with trailing slash",
			ours:  []exporter.Option{exporter.WithEndpointURL("http://collector.example:4318/")},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpointURL("http://collector.example:4318/")}},
		{name: "URL with IPv6",
			ours:  []exporter.Option{exporter.WithEndpointURL("http://[::1]:4318/v1/traces")},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpointURL("http://[::1]:4318/v1/traces")}},
		{name: "host without port",
			ours:  []exporter.Option{exporter.WithEndpoint("collector.example"), exporter.WithInsecure()},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpoint("collector.example"), otlptracehttp.WithInsecure()}},
		{name: "IPv6 without port",
			ours:  []exporter.Option{exporter.WithEndpoint("[::1]"), exporter.WithInsecure()},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpoint("[::1]"), otlptracehttp.WithInsecure()}},
		{name: "path without slash",
			ours:  []exporter.Option{exporter.WithEndpoint("c.example:1"), exporter.WithURLPath("v1/traces"), exporter.WithInsecure()},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpoint("c.example:1"), otlptracehttp.WithURLPath("v1/traces"), otlptracehttp.WithInsecure()}},
		{name: "empty path",
			ours:  []exporter.Option{exporter.WithEndpoint("c.example:1"), exporter.WithURLPath(""), exporter.WithInsecure()},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpoint("c.example:1"), otlptracehttp.WithURLPath(""), otlptracehttp.WithInsecure()}},
		{name: "URL then endpoint",
			ours:  []exporter.Option{exporter.WithEndpointURL("http://a.example:1/p"), exporter.WithEndpoint("b.example:2")},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpointURL("http://a.example:1/p"), otlptracehttp.WithEndpoint("b.example:2")}},
		{name: "env User-Agent header", userAgent: true,
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c.example:1", "OTEL_EXPORTER_OTLP_HEADERS": "User-Agent=gateway-key%2F1.0"}},
		{name: "User-Agent header", userAgent: true,
			ours:  []exporter.Option{exporter.WithEndpoint("c.example:1"), exporter.WithInsecure(), exporter.WithHeaders(map[string]string{"User-Agent": "gateway-key/1.0"})},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpoint("c.example:1"), otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(map[string]string{"User-Agent": "gateway-key/1.0"})}},
		{name: "options win over the environment", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env.example:1"},
			ours:  []exporter.Option{exporter.WithEndpointURL("https://opt.example/v1/traces")},
			stock: []otlptracehttp.Option{otlptracehttp.WithEndpointURL("https://opt.example/v1/traces")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			ourRT := &recordingTransport{}
			ours := exporter.New(append(append([]exporter.Option{}, tc.ours...),
				exporter.WithHTTPClient(&http.Client{Transport: ourRT}), exporter.WithLogger(zap.NewNop()))...)
			if err := ours.ExportSpans(ctx, []sdktrace.ReadOnlySpan{span}); err != nil {
				t.Fatal(err)
			}
			if err := ours.ForceFlush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := ours.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}

			stockRT := &recordingTransport{}
			stock, err := otlptracehttp.New(ctx, append(append([]otlptracehttp.Option{}, tc.stock...),
				otlptracehttp.WithHTTPClient(&http.Client{Transport: stockRT}))...)
			if err != nil {
				t.Fatal(err)
			}
			if err := stock.ExportSpans(ctx, []sdktrace.ReadOnlySpan{span}); err != nil {
				t.Fatal(err)
			}
			if err := stock.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}

			ourURL, ourHeader := ourRT.first()
			stockURL, stockHeader := stockRT.first()
			if ourURL != stockURL {
				t.Errorf("request URL: ours %q, stock %q", ourURL, stockURL)
			}
			headers := parityHeaders
			if tc.userAgent {
				headers = append(headers[:len(headers):len(headers)], "User-Agent")
			}
			for _, h := range headers {
				if o, s := ourHeader.Get(h), stockHeader.Get(h); o != s {
					t.Errorf("header %s: ours %q, stock %q", h, o, s)
				}
			}
		})
	}
}
