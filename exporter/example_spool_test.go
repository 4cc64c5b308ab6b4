package exporter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// With a disk spool, spans the backend could not take before Shutdown's
// deadline stay on disk, and the next process started on the same
// directory sends them: a deploy during an outage loses nothing.
func ExampleWithSpool() {
	dir, err := os.MkdirTemp("", "tracekeeper-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	var up atomic.Bool // the backend answers 503 until it is up
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer backend.Close()
	endpoint := strings.TrimPrefix(backend.URL, "http://")

	// The first process ends five spans while the backend is down, and
	// shuts down with a short deadline.
	exp := exporter.New(exporter.WithEndpoint(endpoint), exporter.WithInsecure(),
		exporter.WithSpool(dir, 64<<20), exporter.WithLogger(zap.NewNop()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	for range 5 {
		_, span := tp.Tracer("example").Start(context.Background(), "work")
		span.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = tp.Shutdown(ctx)
	cancel()
	// The batcher returns at the deadline without waiting for the
	// exporter's shutdown; a second call waits for it to have put what
	// was left on disk (at most a second more).
	_ = exp.Shutdown(context.Background())
	s := exp.Stats()
	fmt.Printf("first: accepted %d, exported %d, kept on disk %d\n", s.Accepted, s.Exported, s.Spooled)

	// The backend is back; the next process finds the spans on disk and
	// sends them, here within its Shutdown.
	up.Store(true)
	exp = exporter.New(exporter.WithEndpoint(endpoint), exporter.WithInsecure(),
		exporter.WithSpool(dir, 64<<20), exporter.WithLogger(zap.NewNop()))
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	_ = exp.Shutdown(ctx)
	cancel()
	s = exp.Stats()
	fmt.Printf("next: recovered %d, exported %d, dropped %d\n", s.Recovered, s.Exported, s.Dropped.Total())
	// Output:
	// first: accepted 5, exported 0, kept on disk 5
	// next: recovered 5, exported 5, dropped 0
}
