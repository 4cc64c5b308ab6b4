package exporter

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func checkInvariant(t *testing.T, s Stats) {
	t.Helper()
	if s.Accepted != s.Exported+s.Dropped.Total()+s.Queued+s.Spooled+s.InFlight {
		t.Fatalf("accounting broken: %+v", s)
	}
}

func shutdown(t *testing.T, e *Exporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestInvalidConfigIsReportedAndCounted(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
		want string
	}{
		{"endpoint with scheme", WithEndpoint("http://collector:4318"), "without scheme or path"},
		{"endpoint bad port", WithEndpoint("collector:99999"), "invalid port"},
		{"endpoint URL bad scheme", WithEndpointURL("ftp://collector"), "scheme must be http or https"},
		{"endpoint URL unparsable", WithEndpointURL("http://[::1"), "invalid endpoint URL"},
		{"endpoint URL with a port and no host", WithEndpointURL("http://:4318/v1/traces"), "has no host"},
		{"negative workers", WithWorkers(-1), "workers must be positive"},
		{"zero queue", WithQueueSize(0), "queue size must be positive"},
		{"request larger than queue", WithMaxRequestSize(1 << 30), "exceeds the memory budget"},
		{"negative timeout", WithTimeout(-time.Second), "timeout must not be negative"},
		{"bad header", WithHeaders(map[string]string{"bad key": "v"}), "invalid header name"},
		{"unknown compression", WithCompression(Compression(9)), "unknown compression"},
		{"retry with a negative delay", WithRetry(RetryConfig{Enabled: true, InitialInterval: -time.Second}), "must not be negative"},
		{"header value with a line break", WithHeaders(map[string]string{"authorization": "Bearer s3cret\r\nX: y"}), "holds control characters"},
		{"unparsable URL with credentials", WithEndpointURL("http://user:s3cret@[::1"), "invalid endpoint URL"},
		{"header name with a slash", WithHeaders(map[string]string{"a/b": "v"}), "invalid header name"},
		{"header name not ASCII", WithHeaders(map[string]string{"ключ": "v"}), "invalid header name"},
		{"header name with NUL", WithHeaders(map[string]string{"x\x00y": "v"}), "invalid header name"},
		{"header name with a comma", WithHeaders(map[string]string{"a,b": "v"}), "invalid header name"},
		{"header name with parentheses", WithHeaders(map[string]string{"(x)": "v"}), "invalid header name"},
		{"header value with \\x01", WithHeaders(map[string]string{"api-key": "s3cret\x01"}), "holds control characters"},
		{"header value with DEL", WithHeaders(map[string]string{"api-key": "s3cret\x7f"}), "holds control characters"},
		{"endpoint with a leading space", WithEndpoint(" 127.0.0.1:4318"), "spaces or control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.ErrorLevel)
			e := New(tc.opt, WithLogger(zap.New(core)))
			// Written at once, by the reporter's goroutine.
			if logged(t, logs, "invalid configuration") != 1 {
				t.Fatalf("the configuration error was not logged once: %v", logs.All())
			}
			err := e.ExportSpans(context.Background(), otlptest.Indexed(3))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ExportSpans = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error quotes a credential: %v", err)
			}
			s := e.Stats()
			if s.Accepted != 3 || s.Dropped.Config != 3 {
				t.Fatalf("got %+v, want 3 accepted and dropped with reason config", s)
			}
			checkInvariant(t, s)
			shutdown(t, e)
		})
	}
}

func TestEnvironmentLayering(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://envhost:1234/base")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1500")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "bogus")

	c := newConfig(nil)
	u, err := c.targetURL()
	if err != nil || u.String() != "http://envhost:1234/base/v1/traces" || c.timeout != 1500*time.Millisecond {
		t.Fatalf("env layer: %v %v %v", u, err, c.timeout)
	}
	if c.envErrs == nil || !strings.Contains(c.envErrs.Error(), "OTEL_EXPORTER_OTLP_COMPRESSION") {
		t.Fatalf("malformed variable not reported by name: %v", c.envErrs)
	}
	// Options win over the environment.
	c = newConfig([]Option{WithEndpoint("opthost:4318"), WithURLPath("/p"), WithTimeout(time.Second)})
	u, err = c.targetURL()
	if err != nil || u.String() != "http://opthost:4318/p" || c.timeout != time.Second {
		t.Fatalf("option layer: %v %v %v", u, err, c.timeout)
	}
}

func TestDefaults(t *testing.T) {
	c := newConfig(nil)
	u, err := c.targetURL()
	if err != nil || u.String() != "https://localhost:4318/v1/traces" {
		t.Fatalf("default URL %v %v", u, err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
}

// A host without a port is kept as written, as in a URL and as the stock
// exporters do: HTTP goes to the scheme's port, gRPC to its default, 443.
// Paths are cleaned as the stock exporter cleans them.
func TestEndpointWithoutPortAndPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		opts []Option
		url  string
		port int
	}{
		{"bare host, TLS", nil, []Option{WithEndpoint("collector.example")}, "https://collector.example/v1/traces", 443},
		{"bare host, plaintext", nil, []Option{WithEndpoint("collector.example"), WithInsecure()}, "http://collector.example/v1/traces", 80},
		{"bare IPv6 host", nil, []Option{WithEndpoint("[::1]"), WithInsecure()}, "http://[::1]/v1/traces", 80},
		{"gRPC bare host", nil, []Option{WithEndpoint("collector.example"), WithInsecure(), WithProtocol(ProtocolGRPC)}, "http://collector.example/v1/traces", 443},
		{"URL without port", nil, []Option{WithEndpointURL("https://api.example.com/v1/traces")}, "https://api.example.com/v1/traces", 443},
		{"URL without path", nil, []Option{WithEndpointURL("http://collector.example:4318")}, "http://collector.example:4318/", 4318},
		{"empty path", nil, []Option{WithEndpoint("c.example:1"), WithInsecure(), WithURLPath("")}, "http://c.example:1/v1/traces", 1},
		{"path without slash", nil, []Option{WithEndpoint("c.example:1"), WithInsecure(), WithURLPath(" v1/x ")}, "http://c.example:1/v1/x", 1},
		{"env URL without port", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://api.example.com"}, nil, "https://api.example.com/v1/traces", 443},
		{"env plaintext URL without port", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example"}, nil, "http://collector.example/v1/traces", 80},
		{"default", nil, nil, "https://localhost:4318/v1/traces", 4318},
		{"gRPC default", nil, []Option{WithProtocol(ProtocolGRPC)}, "https://localhost:4317/v1/traces", 4317},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := newConfig(tc.opts)
			if err := c.validate(); err != nil {
				t.Fatal(err)
			}
			u, err := c.targetURL()
			if err != nil || u.String() != tc.url {
				t.Fatalf("URL %v (%v), want %s", u, err, tc.url)
			}
			if p, ok := c.port(u); !ok || p != tc.port {
				t.Errorf("port %d, want %d", p, tc.port)
			}
		})
	}
	for _, bad := range []string{"[]", "[collector]", "[::1", "::1"} {
		if err := newConfig([]Option{WithEndpoint(bad)}).validate(); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
}

func TestDeliversAndCoalesces(t *testing.T) {
	rcv := otlptest.NewHTTP(t, nil)
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(2))
	defer shutdown(t, e)
	for range 20 {
		if err := e.ExportSpans(context.Background(), otlptest.Indexed(50)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rcv.Spans()
	s := e.Stats()
	if got != 1000 || s.Exported != 1000 || s.Accepted != 1000 {
		t.Fatalf("received %d, stats %+v", got, s)
	}
	checkInvariant(t, s)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	clk := clockwork.NewFakeClock()
	rcv := otlptest.NewHTTP(t, func(n int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(1), withClock(clk), WithLogger(zap.NewNop()),
		WithRetry(RetryConfig{Enabled: true, InitialInterval: time.Second, MaxInterval: time.Second, MaxElapsedTime: time.Hour}))
	defer shutdown(t, e)
	if err := e.ExportSpans(context.Background(), otlptest.Indexed(5)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Waiters: the reporter's ticker and the retry timer.
	if err := clk.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	clk.Advance(29 * time.Second)
	if reqs := rcv.Requests(); reqs != 1 {
		t.Fatalf("retried after 29s of a 30s Retry-After: %d requests", reqs)
	}
	clk.Advance(time.Second)
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	s := e.Stats()
	if s.Exported != 5 || s.Retries != 1 || s.Requests != 2 {
		t.Fatalf("got %+v", s)
	}
}

func TestRetriesExhausted(t *testing.T) {
	clk := clockwork.NewFakeClock()
	rcv := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	core, logs := observer.New(zapcore.WarnLevel)
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(1), withClock(clk), WithLogger(zap.New(core)),
		WithRetry(RetryConfig{Enabled: true, InitialInterval: time.Second, MaxInterval: time.Second, MaxElapsedTime: 3 * time.Second}))
	if err := e.ExportSpans(context.Background(), otlptest.Indexed(4)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	flushed := make(chan error, 1)
	go func() { flushed <- e.ForceFlush(ctx) }()
	for {
		// Advance the clock each time the worker waits for a retry, until
		// the flush reports the request finished.
		waitCtx, stop := context.WithCancel(ctx)
		blocked := make(chan error, 1)
		go func() { blocked <- clk.BlockUntilContext(waitCtx, 2) }()
		select {
		case err := <-flushed:
			stop()
			<-blocked
			if err != nil {
				t.Fatal(err)
			}
			s := e.Stats()
			if s.Dropped.RetriesExhausted != 4 || s.Exported != 0 || s.Retries == 0 {
				t.Fatalf("got %+v", s)
			}
			checkInvariant(t, s)
			shutdown(t, e)
			if logs.FilterMessageSnippet("spans dropped").FilterField(zap.Int64("retries_exhausted", 4)).Len() != 1 {
				t.Fatalf("drop not logged: %v", logs.All())
			}
			return
		case err := <-blocked:
			stop()
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(2 * time.Second)
		}
	}
}

func TestPermanentErrorsAndPartialSuccess(t *testing.T) {
	partial, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{
		PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "too old"},
	})
	for _, tc := range []struct {
		name   string
		status int
		body   []byte
		check  func(Stats) bool
	}{
		{"400", 400, nil, func(s Stats) bool { return s.Dropped.PermanentError == 5 }},
		{"500", 500, []byte("boom"), func(s Stats) bool { return s.Dropped.PermanentError == 5 }},
		{"partial", 200, partial, func(s Stats) bool { return s.Dropped.Rejected == 2 && s.Exported == 3 }},
		{"garbage 200", 200, []byte{0xde, 0xad}, func(s Stats) bool { return s.Exported == 5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
				w.WriteHeader(tc.status)
				_, _ = w.Write(tc.body)
				return true
			})
			e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithLogger(zap.NewNop()))
			if err := e.ExportSpans(context.Background(), otlptest.Indexed(5)); err != nil {
				t.Fatal(err)
			}
			if err := e.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			s := e.Stats()
			if !tc.check(s) {
				t.Fatalf("got %+v", s)
			}
			checkInvariant(t, s)
			shutdown(t, e)
		})
	}
}

func TestTooLargeIsSplit(t *testing.T) {
	const limit = 600
	rcv := otlptest.NewHTTP(t, func(_ int, body []byte, w http.ResponseWriter, _ *http.Request) bool {
		if len(body) > limit {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return true
		}
		return false
	})
	big := otlptest.Indexed(20)
	huge := tracetest.SpanStub{Name: strings.Repeat("x", 2000), SpanContext: big[0].SpanContext()}.Snapshot()
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(1), WithLogger(zap.NewNop()))
	defer shutdown(t, e)
	if err := e.ExportSpans(context.Background(), append(big, huge)); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rcv.Spans()
	s := e.Stats()
	if got != 20 || s.Exported != 20 || s.Dropped.TooLarge != 1 {
		t.Fatalf("received %d, stats %+v", got, s)
	}
	checkInvariant(t, s)
}

func TestQueueFullNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	rcv := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		<-release
		return false
	})
	var dump bytes.Buffer
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(1), WithQueueSize(10),
		WithLogger(zap.NewNop()), WithDroppedSpansWriter(&dump))
	// The worker holds the first batch (the backend hangs); the queue takes
	// one more; the rest is dropped without waiting.
	for range 5 {
		if err := e.ExportSpans(context.Background(), otlptest.Indexed(10)); err != nil {
			t.Fatal(err)
		}
	}
	s := e.Stats()
	checkInvariant(t, s)
	if s.Dropped.QueueFull < 30 {
		t.Fatalf("got %+v, want at least 3 batches dropped as queue_full", s)
	}
	close(release)
	if err := e.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	shutdown(t, e)
	// Each dropped batch is one replayable OTLP/JSON line.
	lines := 0
	sc := bufio.NewScanner(&dump)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var msg coltracepb.ExportTraceServiceRequest
		if err := protojson.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatalf("line %d: %v", lines, err)
		}
		lines++
	}
	if int64(lines*10) != e.Stats().Dropped.QueueFull {
		t.Fatalf("%d lines for %d dropped spans", lines, e.Stats().Dropped.QueueFull)
	}
}

func TestShutdownDeadlineDropsWhatIsLeft(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var hung atomic.Int32
	rcv := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		hung.Add(1)
		<-release
		return true
	})
	_ = rcv
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(1), WithLogger(zap.NewNop()))
	for range 3 {
		_ = e.ExportSpans(context.Background(), otlptest.Indexed(10))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the deadline has already passed
	err := e.Shutdown(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	s := e.Stats()
	if s.Dropped.Shutdown != 30 || s.Queued != 0 || s.InFlight != 0 {
		t.Fatalf("got %+v", s)
	}
	checkInvariant(t, s)
	if err := e.ExportSpans(context.Background(), otlptest.Indexed(1)); !errors.Is(err, ErrShutdown) {
		t.Fatalf("ExportSpans after Shutdown = %v", err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
}

func TestMetrics(t *testing.T) {
	rcv := otlptest.NewHTTP(t, func(n int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		if n == 2 {
			w.WriteHeader(http.StatusBadRequest)
			return true
		}
		return false
	})
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(1), WithMeterProvider(mp), WithLogger(zap.NewNop()))
	defer shutdown(t, e)
	for range 2 {
		_ = e.ExportSpans(context.Background(), otlptest.Indexed(3))
		_ = e.ForceFlush(context.Background())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			found[m.Name] = true
			if m.Name != "otel.sdk.exporter.span.exported" {
				continue
			}
			sum := m.Data.(metricdata.Sum[int64])
			byType := map[string]int64{}
			for _, dp := range sum.DataPoints {
				v, _ := dp.Attributes.Value("error.type")
				byType[v.AsString()] = dp.Value
			}
			if byType[""] != 3 || byType[string(ReasonPermanentError)] != 3 {
				t.Errorf("exported points %v", byType)
			}
		}
	}
	for _, name := range []string{"otel.sdk.exporter.span.exported", "otel.sdk.exporter.span.inflight", "otel.sdk.exporter.operation.duration", metricQueueSize, metricQueueCapacity} {
		if !found[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

// TestInflightMetricCountsUnfinishedSpans: otel.sdk.exporter.span.inflight
// counts the spans passed to the exporter and neither exported nor failed
// yet, as the semantic conventions define it: those waiting in the queue
// as well as those being sent, so that with the exported counter it adds
// up to every span accepted.
func TestInflightMetricCountsUnfinishedSpans(t *testing.T) {
	release := make(chan struct{})
	rcv := otlptest.NewHTTP(t, func(int, []byte, http.ResponseWriter, *http.Request) bool {
		<-release
		return false
	})
	defer close(release)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(1), WithMaxRequestSize(4096),
		WithMeterProvider(mp), WithLogger(zap.NewNop()))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = e.Shutdown(ctx)
	}()
	for range 10 {
		if err := e.ExportSpans(context.Background(), otlptest.Indexed(100)); err != nil {
			t.Fatal(err)
		}
	}
	// One request is sent and held; the rest waits in the queue.
	s := e.Stats()
	for waited := time.Now(); s.InFlight == 0 || s.Queued == 0; s = e.Stats() {
		if time.Since(waited) > 10*time.Second {
			t.Fatalf("no request in flight with spans queued behind it: %+v", s)
		}
		runtime.Gosched()
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					got[m.Name] += dp.Value
				}
			}
		}
	}
	if s = e.Stats(); got["otel.sdk.exporter.span.inflight"] != s.Queued+s.Spooled+s.InFlight ||
		got["otel.sdk.exporter.span.exported"]+got["otel.sdk.exporter.span.inflight"] != 1000 {
		t.Fatalf("metrics %v, stats %+v: want inflight %d and exported+inflight 1000", got, s, s.Queued+s.Spooled+s.InFlight)
	}
}

func TestGRPCDeliversAndSplits(t *testing.T) {
	for _, comp := range []Compression{NoCompression, GzipCompression} {
		t.Run(comp.String(), func(t *testing.T) {
			// The server refuses requests of more than 10 spans as gRPC
			// servers refuse oversized messages: ResourceExhausted without
			// RetryInfo.
			g := otlptest.NewGRPC(t, func(_ context.Context, _ int, r *coltracepb.ExportTraceServiceRequest) error {
				if otlptest.Count(r) > 10 {
					return status.Error(codes.ResourceExhausted, "grpc: received message larger than max")
				}
				return nil
			})
			e := New(WithProtocol(ProtocolGRPC), WithEndpoint(g.Endpoint()), WithInsecure(), WithCompression(comp), WithLogger(zap.NewNop()))
			defer shutdown(t, e)
			if err := e.ExportSpans(context.Background(), otlptest.Indexed(37)); err != nil {
				t.Fatal(err)
			}
			if err := e.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			s := e.Stats()
			if got := g.Spans(); got != 37 || s.Exported != 37 {
				t.Fatalf("received %d, stats %+v", got, s)
			}
			checkInvariant(t, s)
		})
	}
}

func TestGRPCDefaultPort(t *testing.T) {
	c := newConfig([]Option{WithProtocol(ProtocolGRPC)})
	if u, err := c.targetURL(); err != nil || u.Host != "localhost:4317" {
		t.Fatalf("got %v %v", u, err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector")
	c = newConfig(nil)
	if u, err := c.targetURL(); err != nil || u.Host != "collector" || c.protocol != ProtocolGRPC || !c.insecure {
		t.Fatalf("got %v %v %+v", u, err, c)
	}
}

// TestStatsInvariantUnderConcurrency polls Stats while several goroutines
// export into a small queue in front of a backend that sometimes fails:
// every snapshot must account for every span.
func TestStatsInvariantUnderConcurrency(t *testing.T) {
	rcv := otlptest.NewHTTP(t, func(n int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		switch n % 4 {
		case 1:
			w.WriteHeader(http.StatusBadRequest)
			return true
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(3), WithQueueSize(200),
		WithMaxRequestSize(2048), WithLogger(zap.NewNop()),
		WithRetry(RetryConfig{Enabled: true, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, MaxElapsedTime: 5 * time.Millisecond}))
	stop := make(chan struct{})
	polled := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				polled <- n
				return
			default:
			}
			if s := e.Stats(); s.Accepted != s.Exported+s.Dropped.Total()+s.Queued+s.Spooled+s.InFlight {
				t.Errorf("accounting broken: %+v", s)
			}
			n++
		}
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				_ = e.ExportSpans(context.Background(), otlptest.Indexed(40))
			}
		}()
	}
	wg.Wait()
	if err := e.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if <-polled == 0 {
		t.Fatal("no snapshot taken")
	}
	shutdown(t, e)
	s := e.Stats()
	checkInvariant(t, s)
	if s.Accepted != 4*50*40 || s.Queued != 0 || s.InFlight != 0 {
		t.Fatalf("got %+v", s)
	}
}

// TestSuccessEndsRetryWaits checks that workers waiting to retry after a
// failure retry as soon as another request succeeds, instead of sleeping
// out their backoff while the queue fills: the clock never moves here.
func TestSuccessEndsRetryWaits(t *testing.T) {
	clk := clockwork.NewFakeClock()
	rcv := otlptest.NewHTTP(t, func(n int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithWorkers(2), withClock(clk), WithLogger(zap.NewNop()))
	defer shutdown(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.ExportSpans(ctx, otlptest.Indexed(3)); err != nil {
		t.Fatal(err)
	}
	// The first request failed and its worker waits: the reporter's ticker
	// and the retry timer.
	if err := clk.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := e.ExportSpans(ctx, otlptest.Indexed(4)); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatalf("the waiting worker did not retry after the other's success: %v", err)
	}
	if s := e.Stats(); s.Exported != 7 || s.Retries != 1 {
		t.Fatalf("got %+v", s)
	}
}

func TestShutdownAfterShutdownReturnsNil(t *testing.T) {
	e := New(WithEndpoint("127.0.0.1:1"), WithInsecure(), WithLogger(zap.NewNop()))
	shutdown(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 100 {
		if err := e.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown #%d after a finished Shutdown, with a done ctx = %v, want nil", i+2, err)
		}
	}
}

// TestExportSpansDoesNotAllocate checks the steady state, and that it
// survives garbage collections: a process that allocates fast collects
// tens of times a second, and the encoder and its buffers must outlive
// them, or ExportSpans would allocate a batch's worth of memory for most
// batches.
func TestExportSpansDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	// A queue smaller than any batch refuses every call, so each request is
	// released at once and the steady state is reached without a backend.
	e := New(WithEndpoint("127.0.0.1:1"), WithInsecure(), WithLogger(zap.NewNop()), WithQueueSize(1))
	defer shutdown(t, e)
	batch := otlptest.Indexed(64)
	export := func() { _ = e.ExportSpans(context.Background(), batch) }
	for range 10 {
		export()
	}
	if n := testing.AllocsPerRun(100, export); n != 0 {
		t.Errorf("ExportSpans allocates %v times per call, want 0", n)
	}
	if n := otlptest.AllocsAcrossCollections(10, export); n != 0 {
		t.Errorf("after two collections, ExportSpans allocates %d times per call, want 0", n)
	}
	checkInvariant(t, e.Stats())
}

func TestMalformedHeadersFromTheEnvironmentAreReportedNeverQuoted(t *testing.T) {
	for _, v := range []string{
		"Authorization: Basic U0VDUkVUU0VDUkVU==",
		"a/b=U0VDUkVUU0VDUkVU",
		"(x)=U0VDUkVUU0VDUkVU",
		"api-key=U0VDUkVUU0VDUkVU%01",
		"api-key=U0VDUkVUU0VDUkVU%7F",
	} {
		t.Run(v, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", v)
			core, logs := observer.New(zapcore.WarnLevel)
			e := New(WithLogger(zap.New(core)), WithEndpoint("127.0.0.1:1"), WithInsecure())
			defer shutdown(t, e)
			logged(t, logs, "ignoring malformed environment variables")
			found := false
			for _, entry := range logs.All() {
				text := entry.Message
				for _, f := range entry.Context {
					text += " " + f.String
					if f.Interface != nil {
						text += " " + fmt.Sprint(f.Interface)
					}
				}
				if strings.Contains(text, "U0VDUkVU") {
					t.Fatalf("a header value is logged: %s", text)
				}
				if strings.Contains(text, "OTEL_EXPORTER_OTLP_HEADERS") {
					found = true
				}
			}
			if !found {
				t.Fatalf("the malformed variable is not reported by name: %v", logs.All())
			}
			if e.cfg.headers != nil {
				t.Fatalf("the malformed variable was not ignored: %d headers", len(e.cfg.headers))
			}
		})
	}
}

// TestRequestsWaitingToRetryAreBounded has a backend that refuses every
// connection and a backoff of an hour, and many small requests queued:
// requests wait to retry without a slot, but no more of them leave the
// queue than the exporter allows out at once, so the goroutines stay
// bounded and the rest stays queued.
func TestRequestsWaitingToRetryAreBounded(t *testing.T) {
	addr := otlptest.RefusedAddr(t)
	base := runtime.NumGoroutine()
	e := New(WithEndpoint(addr), WithInsecure(), WithLogger(zap.NewNop()),
		WithCompression(GzipCompression), WithMaxRequestSize(1<<10),
		WithRetry(RetryConfig{Enabled: true, InitialInterval: time.Hour, MaxInterval: time.Hour, MaxElapsedTime: 2 * time.Hour}))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = e.Shutdown(ctx)
		cancel()
	}()
	// An eighth of the budget, less the compressors', at 16 KiB each.
	most := cap(e.requests)
	if most < 200 || most > 256 {
		t.Fatalf("%d requests allowed out at once at the default budget, want about 256", most)
	}
	ctx := context.Background()
	for range 4 * most {
		_ = e.ExportSpans(ctx, otlptest.Spans(3))
	}
	deadline := time.Now().Add(time.Minute)
	for len(e.requests) < most {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests left the queue", len(e.requests), most)
		}
		time.Sleep(time.Millisecond)
	}
	st := e.Stats()
	if st.Queued == 0 {
		t.Fatalf("nothing left queued: %+v", st)
	}
	if g := runtime.NumGoroutine() - base; g > most+32 {
		t.Fatalf("%d goroutines for %d requests out at once", g, most)
	}
	checkInvariant(t, st)
}

// TestReserveFollowsTheLimit checks that the part of the budget set aside
// for requests in flight is 16 KiB per request the limit lets fly, not
// the most the budget allows.
func TestReserveFollowsTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want int64
	}{
		{"adaptive, initial limit", nil, 16 * requestOverhead},
		{"fixed pool of 4", []Option{WithWorkers(4)}, 4 * requestOverhead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(append([]Option{WithEndpoint(otlptest.RefusedAddr(t)), WithInsecure(), WithLogger(zap.NewNop())}, tc.opts...)...)
			defer shutdown(t, e)
			if got := e.reserved.Load(); got != tc.want {
				t.Fatalf("reserved %d, want %d", got, tc.want)
			}
			if !e.books.Fits(int64(e.cfg.memoryBudget) - tc.want) {
				t.Fatalf("the spans may not use the budget less the reserve: %+v", e.books.Snapshot())
			}
		})
	}
}

// An endpoint written with credentials is refused without quoting them.
func TestEndpointErrorsHideCredentials(t *testing.T) {
	for _, ep := range []string{"user:secret@collector:4317", "user:secret@collector :4317"} {
		err := newConfig([]Option{WithEndpoint(ep)}).validate()
		if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "xxxxx@collector") {
			t.Errorf("WithEndpoint(%q): %v", ep, err)
		}
	}
}

// TestSpoolBacklogPausesAfterARefusal: a record of the backlog that the
// backend refused goes back to the spool and is sent again after a pause,
// which doubles while the backend keeps refusing, not at once: without
// retries that was a loop of requests as fast as the backend answered
// (16,898 in 3 s against a 503). The first record delivered ends it.
func TestSpoolBacklogPausesAfterARefusal(t *testing.T) {
	clk := clockwork.NewFakeClock()
	var up atomic.Bool
	down := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		if up.Load() {
			return false // the receiver's success
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	e := New(WithEndpoint(down.Endpoint()), WithInsecure(), WithWorkers(1), withClock(clk), WithLogger(zap.NewNop()),
		WithRetry(RetryConfig{Enabled: false}), WithSpool(t.TempDir(), 64<<20))
	defer shutdown(t, e)
	if err := e.ExportSpans(context.Background(), otlptest.Indexed(10)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// paused waits for the record to be back on disk after the want-th
	// request, and for the dispatcher to wait for the end of the pause:
	// the waiters are then the reporter's ticker, the spool's sync ticker
	// and the pause (no request is in flight, which would have a timer).
	paused := func(want int) {
		t.Helper()
		for s := e.Stats(); down.Requests() < want || s.InFlight != 0 || s.Spooled != 10; s = e.Stats() {
			if ctx.Err() != nil {
				t.Fatalf("the record is not back after %d requests: %+v", down.Requests(), s)
			}
			runtime.Gosched()
		}
		if err := clk.BlockUntilContext(ctx, 3); err != nil {
			t.Fatalf("not paused: %v; %+v", err, e.Stats())
		}
		if got := down.Requests(); got != want {
			t.Fatalf("%d requests, want %d: %+v", got, want, e.Stats())
		}
	}
	paused(2) // the request from memory, then the record from the spool
	clk.Advance(time.Second)
	paused(3) // sent again after 1s, refused: now 2s
	clk.Advance(time.Second)
	if got := down.Requests(); got != 3 {
		t.Fatalf("sent again 1s into a 2s pause: %d requests", got)
	}
	up.Store(true)
	clk.Advance(time.Second)
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	for e.Stats().Exported != 10 {
		if ctx.Err() != nil {
			t.Fatalf("not delivered after the pause: %+v", e.Stats())
		}
		runtime.Gosched()
	}
	if got := down.Requests(); got != 4 {
		t.Fatalf("%d requests, want 4", got)
	}
}

// TestSpoolCountsResentWhatWasInFlightAtShutdown: spans of a request the
// backend took without answering before Shutdown's deadline are kept on
// disk; they may have arrived, so the next start counts them as Resent.
func TestSpoolCountsResentWhatWasInFlightAtShutdown(t *testing.T) {
	dir := t.TempDir()
	var rcv *otlptest.HTTP
	rcv = otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		rcv.Hold(w, r)
		return true
	})
	e := New(WithEndpoint(rcv.Endpoint()), WithInsecure(), WithLogger(zap.NewNop()),
		WithRetry(RetryConfig{}), WithSpool(dir, 64<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.ExportSpans(ctx, otlptest.Indexed(100)); err != nil {
		t.Fatal(err)
	}
	if err := rcv.WaitRequests(ctx, 1); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	_ = e.Shutdown(short)
	if s := e.Stats(); s.Spooled != 100 {
		t.Fatalf("%+v: want the 100 spans in flight kept on disk", s)
	}
	next := New(WithEndpoint(otlptest.RefusedAddr(t)), WithInsecure(), WithLogger(zap.NewNop()), WithSpool(dir, 64<<20))
	defer func() {
		c, done := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer done()
		_ = next.Shutdown(c)
	}()
	if s := next.Stats(); s.Recovered != 100 || s.Resent != 100 {
		t.Fatalf("recovered %d, resent %d; want 100 and 100: they may have reached the backend", s.Recovered, s.Resent)
	}
}

// TestSpoolPausesOncePerRound: records refused together, taken before the
// first of them came back, pause the backlog once; the pause doubles only
// for a record refused after it ended.
func TestSpoolPausesOncePerRound(t *testing.T) {
	e := New(WithEndpoint(otlptest.RefusedAddr(t)), WithInsecure(), WithLogger(zap.NewNop()),
		WithRetry(RetryConfig{}), WithSpool(t.TempDir(), 64<<20))
	defer func() {
		c, done := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer done()
		_ = e.Shutdown(c)
	}()
	now := time.Now()
	for range 3 {
		e.pause(now)
	}
	if got := e.disk.paused(now); got != time.Second {
		t.Fatalf("paused for %v after three records refused together, want 1s", got)
	}
	later := now.Add(time.Second)
	e.pause(later)
	e.pause(later)
	if got := e.disk.paused(later); got != 2*time.Second {
		t.Fatalf("paused for %v after the next round, want 2s", got)
	}
}

// logged waits until an entry with snippet in its message is logged, as
// the reporter's goroutine writes it, and returns how many there are; it
// fails the test if none comes.
func logged(t *testing.T, logs *observer.ObservedLogs, snippet string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // a hang, not a speed
	for {
		if n := logs.FilterMessageSnippet(snippet).Len(); n > 0 {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing logged with %q: %v", snippet, logs.All())
		}
		time.Sleep(time.Millisecond)
	}
}

// A RetryConfig that sets only some fields, as stock takes it, works: a
// zero initial interval is the default's.
func TestRetryConfigWithoutInitialInterval(t *testing.T) {
	e := New(WithEndpoint("127.0.0.1:1"), WithInsecure(), WithLogger(zap.NewNop()),
		WithRetry(RetryConfig{Enabled: true, MaxElapsedTime: time.Minute}))
	defer shutdown(t, e)
	if err := e.ConfigError(); err != nil {
		t.Fatal(err)
	}
	if r := e.cfg.retry; r.InitialInterval != defaultRetry.InitialInterval || r.MaxElapsedTime != time.Minute || r.MaxInterval != 0 {
		t.Fatalf("retry %+v", r)
	}
}
