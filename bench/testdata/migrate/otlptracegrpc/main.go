// A program written against the stock otlptracegrpc exporter, using every
// option it exports. The migration test builds it as it is, then again
// with only the import and the New call replaced, and runs both against
// the Collector's OTLP receiver.
//
// Usage: program host:port [conn|dns]
//
// conn hands the exporter a connection of the program's own; dns names
// the collector with the gRPC target dns:///host:port instead.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	addr := os.Args[1]
	ctx := context.Background()
	opts := []otlptracegrpc.Option{
		otlptracegrpc.WithEndpoint(addr),
		otlptracegrpc.WithEndpointURL("http://" + addr),
		otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithTLSCredentials(insecure.NewCredentials()),
		otlptracegrpc.WithCompressor("gzip"),
		otlptracegrpc.WithHeaders(map[string]string{"x-migrated": "yes"}),
		otlptracegrpc.WithTimeout(5 * time.Second),
		otlptracegrpc.WithMaxRequestSize(4 << 20),
		otlptracegrpc.WithReconnectionPeriod(5 * time.Second),
		otlptracegrpc.WithServiceConfig(`{"loadBalancingConfig":[{"pick_first":{}}]}`),
		otlptracegrpc.WithDialOption(grpc.WithUserAgent("migrated"), grpc.WithDisableServiceConfig()),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{
			Enabled:         true,
			InitialInterval: 100 * time.Millisecond,
			MaxInterval:     time.Second,
			MaxElapsedTime:  10 * time.Second,
		}),
	}
	if len(os.Args) > 2 && os.Args[2] == "dns" {
		opts = append(opts, otlptracegrpc.WithEndpoint("dns:///"+addr))
	}
	if len(os.Args) > 2 && os.Args[2] == "conn" {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer conn.Close() // the caller's: the exporter's Shutdown leaves it open
		opts = append(opts, otlptracegrpc.WithGRPCConn(conn))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
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
