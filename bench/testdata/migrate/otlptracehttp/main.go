// A program written against the stock otlptracehttp exporter, using every
// option it exports. The migration test builds it as it is, then again
// with only the import and the New call replaced, and runs both against
// the Collector's OTLP receiver.
//
// Usage: program host:port [client]
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func main() {
	addr := os.Args[1]
	ctx := context.Background()
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpoint(addr),
		otlptracehttp.WithEndpointURL("http://" + addr + "/v1/traces"),
		otlptracehttp.WithURLPath("/v1/traces"),
		otlptracehttp.WithInsecure(),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
		otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf),
		otlptracehttp.WithHeaders(map[string]string{"x-migrated": "yes"}),
		otlptracehttp.WithTimeout(5 * time.Second),
		otlptracehttp.WithMaxRequestSize(4 << 20),
		otlptracehttp.WithMaxResponseSize(1 << 20),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
			Enabled:         true,
			InitialInterval: 100 * time.Millisecond,
			MaxInterval:     time.Second,
			MaxElapsedTime:  10 * time.Second,
		}),
		otlptracehttp.WithProxy(func(*http.Request) (*url.URL, error) { return nil, nil }),
	}
	if len(os.Args) > 2 && os.Args[2] == "client" {
		opts = append(opts, otlptracehttp.WithHTTPClient(&http.Client{Transport: &http.Transport{}}))
	}
	if os.Getenv("MIGRATE_TLS") != "" {
		// Compiled, not taken: the receiver is plaintext, and the stock
		// exporter refuses a TLS configuration with WithInsecure.
		opts = append(opts, otlptracehttp.WithTLSClientConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	run(ctx, sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithIDGenerator(&counter{}),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "migrated"))),
	))
}

// run ends 30 spans, ten traces of three, with every kind of field, at
// fixed times and ids, then shuts the provider down.
func run(ctx context.Context, tp *sdktrace.TracerProvider) {
	tr := tp.Tracer("migration", trace.WithInstrumentationVersion("1.0"))
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var first trace.SpanContext
	for i := range 10 {
		at := func(us int) trace.SpanEventOption {
			return trace.WithTimestamp(base.Add(time.Duration(i)*time.Second + time.Duration(us)*time.Microsecond))
		}
		ctx, root := tr.Start(ctx, "GET /orders/{id}", trace.WithSpanKind(trace.SpanKindServer), at(0),
			trace.WithAttributes(attribute.String("http.route", "/orders/{id}"), attribute.Int("i", i),
				attribute.Float64("ratio", 0.5), attribute.Bool("cached", i%2 == 0),
				attribute.StringSlice("tags", []string{"a", "b"})))
		if i == 0 {
			first = root.SpanContext()
		}
		_, child := tr.Start(ctx, "SELECT orders", trace.WithSpanKind(trace.SpanKindClient), at(1),
			trace.WithLinks(trace.Link{SpanContext: first, Attributes: []attribute.KeyValue{attribute.String("why", "first")}}))
		child.AddEvent("rows", at(2), trace.WithAttributes(attribute.Int64("count", int64(i*10))))
		if i%3 == 0 {
			child.SetStatus(codes.Error, "timeout")
		}
		child.End(trace.WithTimestamp(base.Add(time.Duration(i)*time.Second + 3*time.Microsecond)))
		_, other := tr.Start(ctx, "render", at(4))
		other.End(trace.WithTimestamp(base.Add(time.Duration(i)*time.Second + 5*time.Microsecond)))
		root.SetStatus(codes.Ok, "")
		root.End(trace.WithTimestamp(base.Add(time.Duration(i)*time.Second + 6*time.Microsecond)))
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// counter makes ids from a counter, so that every run sends the same
// spans.
type counter struct {
	mu sync.Mutex
	n  uint64
}

func (c *counter) next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

func (c *counter) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	n := c.next()
	return trace.TraceID{1, byte(n >> 8), byte(n)}, trace.SpanID{2, byte(n >> 8), byte(n)}
}

func (c *counter) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	n := c.next()
	return trace.SpanID{3, byte(n >> 8), byte(n)}
}
