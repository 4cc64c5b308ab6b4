package exporter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// The exporter goes where otlptracehttp.New went: under
// sdktrace.WithBatcher. Here the backend is a loopback stand-in for a
// collector.
func Example() {
	collector := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer collector.Close()

	exp := exporter.New(
		exporter.WithEndpoint(strings.TrimPrefix(collector.URL, "http://")),
		exporter.WithInsecure(),
		exporter.WithCompression(exporter.GzipCompression),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))

	tracer := tp.Tracer("example")
	for range 3 {
		_, span := tracer.Start(context.Background(), "work")
		span.End()
	}

	// Flush the batcher into the exporter, then the exporter to the backend.
	ctx := context.Background()
	_ = tp.ForceFlush(ctx)
	_ = exp.ForceFlush(ctx)
	_ = tp.Shutdown(ctx)

	s := exp.Stats()
	fmt.Printf("accepted %d, exported %d, dropped %d\n", s.Accepted, s.Exported, s.Dropped.Total())
	// Output: accepted 3, exported 3, dropped 0
}

// A configuration mistake does not stop the program: it is logged at once
// and every span is counted as dropped with reason config.
func Example_invalidConfiguration() {
	exp := exporter.New(
		exporter.WithEndpoint("http://collector:4318"), // a URL belongs in WithEndpointURL
		exporter.WithLogger(zap.NewNop()),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	_, span := tp.Tracer("example").Start(context.Background(), "work")
	span.End()
	_ = tp.Shutdown(context.Background())

	fmt.Println(exp.Stats().Dropped.Config)
	// Output: 1
}
