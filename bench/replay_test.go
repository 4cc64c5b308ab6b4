package bench_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// syncBuffer is a bytes.Buffer safe for the writer's goroutine and the
// test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSuffix(s.b.String(), "\n"), "\n")
}

// TestDroppedSpansReplayIntoTheCollector proves the replay promise: every
// line WithDroppedSpansWriter writes is accepted as it is by the
// Collector's OTLP/HTTP receiver (POST, application/json), and what the
// Collector decodes from the lines equals what it decodes from the same
// spans sent by the stock exporter.
func TestDroppedSpansReplayIntoTheCollector(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not today", http.StatusBadRequest) // permanent: every request is dropped
	}))
	defer refusing.Close()
	reference, replayed := startCollector(t, 0), startCollector(t, 0)

	var dropped syncBuffer
	exp := exporter.New(
		exporter.WithEndpointURL(refusing.URL+"/v1/traces"),
		exporter.WithMaxRequestSize(8<<10), // several requests, so several lines
		exporter.WithDroppedSpansWriter(&dropped),
		exporter.WithLogger(zap.NewNop()),
	)
	stock, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(reference.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(testResource()), sdktrace.WithBatcher(exp), sdktrace.WithBatcher(stock))
	const n = 400
	emitRichSpans(tp, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if s := exp.Stats(); s.Dropped.Total() != n {
		t.Fatalf("stats %+v, want all %d dropped", s, n)
	}
	// The writer runs on a goroutine of its own, behind a hand-off:
	// wait, within a bound, for the lines of all n spans.
	var lines []string
	for {
		lines = dropped.lines()
		replayed.sink.Reset()
		for _, line := range lines {
			if line == "" {
				continue
			}
			resp, err := http.Post("http://"+replayed.httpAddr+"/v1/traces", "application/json", strings.NewReader(line))
			if err != nil {
				t.Fatal(err)
			}
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("the Collector refused a replayed line: %s %s\nline: %.200s", resp.Status, body, line)
			}
		}
		if replayed.sink.SpanCount() >= n || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	got, want := flatten(t, replayed.sink.AllTraces()), flatten(t, reference.sink.AllTraces())
	if len(got) != n || len(want) != n {
		t.Fatalf("replayed %d spans from %d lines, stock delivered %d; want %d", len(got), len(lines), len(want), n)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("span %d differs:\nreplayed: %v\nstock:    %v", i, got[i], want[i])
		}
	}
	t.Logf("%d spans replayed from %d lines", len(got), len(lines))
}
