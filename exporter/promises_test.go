package exporter_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// bound is how long a test waits for a call that must return before
// calling it stuck. It is not a speed requirement: the calls under test
// return at once or by their own deadline, and a stuck one never would.
const bound = 20 * time.Second

// returns runs f and fails the test if it has not returned within bound.
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("%s is stuck", what)
	}
}

func checkBooks(t *testing.T, s exporter.Stats) {
	t.Helper()
	if s.Accepted != s.Exported+s.Dropped.Total()+s.Queued+s.Spooled+s.InFlight {
		t.Fatalf("accounting broken: %+v", s)
	}
}

func shutdownWithin(t *testing.T, e *exporter.Exporter, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var err error
	returns(t, "Shutdown", func() { err = e.Shutdown(ctx) })
	return err
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	release chan struct{}
	writes  atomic.Int64
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.writes.Add(1)
	<-w.release
	return len(p), nil
}

func TestSlowDroppedSpansWriterBlocksNothing(t *testing.T) {
	rcv := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusBadRequest) // every request dropped, and written
		return true
	})
	w := &blockingWriter{release: make(chan struct{})}
	defer close(w.release)
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(),
		exporter.WithDroppedSpansWriter(w), exporter.WithQueueSize(1024), exporter.WithWorkers(2),
		exporter.WithLogger(zap.NewNop()))
	batch := otlptest.Spans(512)
	returns(t, "ExportSpans with the writer blocked", func() {
		for range 200 {
			_ = exp.ExportSpans(context.Background(), batch)
		}
	})
	if err := shutdownWithin(t, exp, 200*time.Millisecond); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v", err)
	}
	s := exp.Stats()
	checkBooks(t, s)
	if s.Accepted != 200*512 || s.Dropped.Total() != s.Accepted {
		t.Fatalf("want every span dropped and counted: %+v", s)
	}
	if s.Unwritten == 0 {
		t.Fatalf("the writer blocked on its first write, yet no request is counted unwritten: %+v", s)
	}
	if w.writes.Load() != 1 {
		t.Fatalf("writes = %d, want the one still blocked", w.writes.Load())
	}
}

// stalledCore is a zap core whose writes block until released.
type stalledCore struct {
	zapcore.LevelEnabler
	release chan struct{}
	writes  *atomic.Int64
}

func (c stalledCore) With([]zapcore.Field) zapcore.Core { return c }
func (c stalledCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}
func (c stalledCore) Write(zapcore.Entry, []zapcore.Field) error {
	c.writes.Add(1)
	<-c.release
	return nil
}
func (c stalledCore) Sync() error { return nil }

func TestStalledLoggerBlocksNothing(t *testing.T) {
	rcv := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	release := make(chan struct{})
	defer close(release)
	var writes atomic.Int64
	log := zap.New(stalledCore{LevelEnabler: zapcore.DebugLevel, release: release, writes: &writes})
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(log),
		exporter.WithLogInterval(time.Millisecond),
		exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: time.Millisecond, MaxElapsedTime: time.Hour}))
	returns(t, "ExportSpans with the logger stalled", func() {
		for range 50 {
			_ = exp.ExportSpans(context.Background(), otlptest.Spans(100))
		}
	})
	err := shutdownWithin(t, exp, 200*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "5000 spans dropped") {
		t.Fatalf("Shutdown = %v, want the deadline error counting 5000 spans", err)
	}
	checkBooks(t, exp.Stats())
	if writes.Load() == 0 {
		t.Fatal("the logger was never called: the test proves nothing")
	}
}

// New reports what is wrong with its configuration without waiting on the
// logger, and Shutdown without a deadline waits for a stalled logger or
// dropped-spans writer at most a second, counting what the writer did not
// take.
func TestStalledLoggerDelaysNeitherNewNorShutdown(t *testing.T) {
	rcv := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusBadRequest) // every request dropped, and written
		return true
	})
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "abc")
	stalledWriter := &blockingWriter{release: make(chan struct{})}
	defer close(stalledWriter.release)
	for _, tc := range []struct {
		name string
		opts []exporter.Option
	}{
		{"malformed variable", nil},
		{"invalid option", []exporter.Option{exporter.WithCompressor("bogus")}},
		{"option of the other protocol", []exporter.Option{exporter.WithProtocol(exporter.ProtocolGRPC), exporter.WithURLPath("/x")}},
		{"dropped-spans writer", []exporter.Option{exporter.WithDroppedSpansWriter(stalledWriter)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			var writes atomic.Int64
			log := zap.New(stalledCore{LevelEnabler: zapcore.DebugLevel, release: release, writes: &writes})
			var exp *exporter.Exporter
			returns(t, "New with the logger stalled", func() {
				exp = exporter.New(append([]exporter.Option{exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(),
					exporter.WithLogger(log)}, tc.opts...)...)
			})
			for range 3 { // three requests, each dropped
				_ = exp.ExportSpans(context.Background(), otlptest.Spans(10))
				_ = exp.ForceFlush(context.Background())
			}
			returns(t, "Shutdown(context.Background()) with the logger stalled", func() {
				_ = exp.Shutdown(context.Background())
			})
			s := exp.Stats()
			checkBooks(t, s)
			if s.Accepted != 30 || s.Queued+s.InFlight != 0 {
				t.Fatalf("want every span settled: %+v", s)
			}
			if writes.Load() == 0 {
				t.Fatal("the logger was never called: the test proves nothing")
			}
			if strings.HasPrefix(tc.name, "dropped") && s.Unwritten == 0 {
				t.Fatalf("the writer blocked, yet no request is counted unwritten: %+v", s)
			}
		})
	}
}

// giveUpRequests is how many 1-span requests shutDownAgainstDown queues.
const giveUpRequests = 100

// shutDownAgainstDown queues giveUpRequests requests of one span for an
// exporter of one worker, with opts, whose backend answers 503, and shuts
// it down without a deadline: the first request spends a 200 ms retry
// budget during Shutdown.
func shutDownAgainstDown(t *testing.T, opts ...exporter.Option) exporter.Stats {
	t.Helper()
	down := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	exp := exporter.New(append([]exporter.Option{exporter.WithEndpoint(down.Endpoint()), exporter.WithInsecure(),
		exporter.WithLogger(zap.NewNop()), exporter.WithWorkers(1), exporter.WithMaxRequestSize(1024),
		exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: 50 * time.Millisecond,
			MaxInterval: 50 * time.Millisecond, MaxElapsedTime: 200 * time.Millisecond})}, opts...)...)
	for range giveUpRequests {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(1))
	}
	returns(t, "Shutdown(context.Background())", func() {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	})
	s := exp.Stats()
	checkBooks(t, s)
	// One request at a time, each a few spans at most: trying each would
	// take an attempt per request at least.
	if s.Requests >= giveUpRequests/4 {
		t.Fatalf("%d attempts for %d queued requests: what was queued was tried after a request exhausted its retries", s.Requests, giveUpRequests)
	}
	return s
}

// During Shutdown, once a request has spent its whole retry budget, what
// is still queued is dropped as retries_exhausted without being tried:
// a Shutdown without a deadline against a backend that stays down lasts
// about one budget, not one per request.
func TestShutdownGivesUpOnceARequestExhaustsItsRetries(t *testing.T) {
	if s := shutDownAgainstDown(t); s.Dropped.RetriesExhausted != giveUpRequests {
		t.Fatalf("want the %d spans dropped as retries_exhausted: %+v", giveUpRequests, s)
	}
}

// With a spool, what Shutdown gives up on goes to disk untried, and the
// backlog is not sent either: the next start delivers it all.
func TestShutdownGivesUpToTheSpool(t *testing.T) {
	dir := t.TempDir()
	if s := shutDownAgainstDown(t, exporter.WithSpool(dir, 64<<20)); s.Spooled != giveUpRequests || s.Dropped.Total() != 0 {
		t.Fatalf("want the %d spans kept on disk: %+v", giveUpRequests, s)
	}
	up := otlptest.NewHTTP(t, nil)
	next := exporter.New(exporter.WithEndpoint(up.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20))
	if err := shutdownWithin(t, next, bound); err != nil {
		t.Fatal(err)
	}
	if ns := next.Stats(); ns.Recovered != giveUpRequests || ns.Exported != giveUpRequests || up.Spans() != giveUpRequests {
		t.Fatalf("the next start: %+v, received %d", ns, up.Spans())
	}
}

// Small batches queued after big ones hold about what they carry: the
// memory budget counts them at their size, not at the buffer the big ones
// grew.
func TestSmallBatchesAfterBigOnesHoldTheirSize(t *testing.T) {
	rcv := otlptest.NewHTTP(t, nil)
	rcv = otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		rcv.Hold(w, r) // nothing leaves the queue but the first requests
		return true
	})
	defer rcv.Unblock()
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()))
	for range 4 {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(512))
	}
	const small = 1000
	before := exp.Stats().QueueBytes
	for range small {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(1))
	}
	s := exp.Stats()
	if s.Dropped.QueueFull != 0 {
		t.Fatalf("small batches dropped as queue_full: %+v", s)
	}
	if per := (s.QueueBytes - before) / small; per > 4<<10 {
		t.Fatalf("a queued 1-span batch holds %d bytes of the budget", per)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = exp.Shutdown(ctx)
}

// Stats.Requests counts attempts once they end: one the backend holds is
// not counted yet.
func TestRequestsCountsEndedAttempts(t *testing.T) {
	rcv := otlptest.NewHTTP(t, nil)
	rcv = otlptest.NewHTTP(t, func(_ int, _ []byte, _ http.ResponseWriter, r *http.Request) bool {
		return !rcv.Wait(r) // then accepted
	})
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()))
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(10))
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := rcv.WaitRequests(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if s := exp.Stats(); s.Requests != 0 || s.InFlight != 10 {
		t.Fatalf("with the attempt held by the backend: %+v", s)
	}
	rcv.Unblock()
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	if s := exp.Stats(); s.Requests != 1 || s.Exported != 10 {
		t.Fatalf("after the answer: %+v", s)
	}
}

func TestRedirectsAreNotFollowedAndNothingIsCountedExported(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		for _, comp := range []exporter.Compression{exporter.NoCompression, exporter.GzipCompression} {
			t.Run(http.StatusText(code)+"/"+comp.String(), func(t *testing.T) {
				var reached, leaked atomic.Int64
				// Another origin: a different port on loopback.
				target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					reached.Add(1)
					if r.Header.Get("Api-Key") != "" {
						leaked.Add(1)
					}
				}))
				defer target.Close()
				origin := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
					http.Redirect(w, r, target.URL+"/v1/traces", code)
					return true
				})
				core, logs := observer.New(zapcore.WarnLevel)
				exp := exporter.New(exporter.WithEndpoint(origin.Endpoint()), exporter.WithInsecure(),
					exporter.WithCompression(comp), exporter.WithHeaders(map[string]string{"api-key": "s3cret-key"}),
					exporter.WithLogger(zap.New(core)))
				_ = exp.ExportSpans(context.Background(), otlptest.Spans(50))
				if err := shutdownWithin(t, exp, bound); err != nil {
					t.Fatal(err)
				}
				s := exp.Stats()
				checkBooks(t, s)
				if s.Exported != 0 || s.Dropped.PermanentError != 50 || s.Requests != 1 {
					t.Fatalf("want 50 dropped as permanent_error after one request: %+v", s)
				}
				if reached.Load() != 0 || leaked.Load() != 0 {
					t.Fatalf("the redirect was followed: %d requests reached the target, %d with the api key", reached.Load(), leaked.Load())
				}
				if logs.FilterMessageSnippet("spans dropped").FilterFieldKey("permanent_error").Len() == 0 {
					t.Fatalf("the drop is not logged: %v", logs.All())
				}
				for _, e := range logs.All() {
					for _, f := range e.Context {
						if strings.Contains(f.String, "s3cret") {
							t.Fatalf("a header value is logged: %v", f.String)
						}
					}
				}
			})
		}
	}
}

func TestEchoedCredentialsAreRedactedFromLogs(t *testing.T) {
	rcv := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "invalid api key "+r.Header.Get("Api-Key")+strings.Repeat(".", 5000))
		return true
	})
	core, logs := observer.New(zapcore.WarnLevel)
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(),
		exporter.WithHeaders(map[string]string{"api-key": "k-7f3a9c1e5b"}), exporter.WithLogger(zap.New(core)))
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(3))
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	logged := logs.FilterMessageSnippet("spans dropped").All()
	if len(logged) != 1 {
		t.Fatalf("want one drop report, got %v", logs.All())
	}
	cause := logged[0].ContextMap()["permanent_error_cause"].(string)
	if strings.Contains(cause, "7f3a9c1e5b") || !strings.Contains(cause, "[REDACTED]") || len(cause) > 500 {
		t.Fatalf("cause not redacted or not bounded (%d bytes): %q", len(cause), cause)
	}
}

func TestNewWorksWhenDefaultTransportIsWrapped(t *testing.T) {
	saved := http.DefaultTransport
	http.DefaultTransport = roundTripperFunc(saved.RoundTrip)
	defer func() { http.DefaultTransport = saved }()
	rcv := otlptest.NewHTTP(t, nil)
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure())
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(5))
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	if rcv.Spans() != 5 {
		t.Fatalf("received %d spans", rcv.Spans())
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNilSpansKeepTheBooksBalanced(t *testing.T) {
	rcv := otlptest.NewHTTP(t, nil)
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()))
	batch := otlptest.Spans(12)
	batch[3], batch[9] = nil, nil
	if err := exp.ExportSpans(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	s := exp.Stats()
	checkBooks(t, s)
	if s.Accepted != 12 || s.Exported != 10 || s.Dropped.Invalid != 2 || rcv.Spans() != 10 {
		t.Fatalf("got %+v, received %d", s, rcv.Spans())
	}
}

func TestConcurrentShutdownsBothReportTheDrop(t *testing.T) {
	rcv := otlptest.NewHTTP(t, nil)
	rcv = otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		rcv.Hold(w, r)
		return true
	})
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()))
	for range 6 {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(500))
	}
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	long, cancelLong := context.WithTimeout(context.Background(), bound)
	defer cancelLong()

	var wg sync.WaitGroup
	var errShort, errLong error
	wg.Add(1)
	go func() { defer wg.Done(); errShort = exp.Shutdown(short) }()
	// The short Shutdown is the first once ExportSpans refuses spans.
	probes := 0
	for exp.ExportSpans(context.Background(), otlptest.Spans(1)) == nil {
		probes++
	}
	wg.Add(1)
	go func() { defer wg.Done(); errLong = exp.Shutdown(long) }()
	returns(t, "the two Shutdowns", wg.Wait)

	// The probes queued before Shutdown began are abandoned with the
	// rest (those the memory budget had no room for are queue_full
	// drops); the one refused after is not a deadline drop.
	s := exp.Stats()
	checkBooks(t, s)
	queued := int64(3000+probes) - s.Dropped.QueueFull
	want := fmt.Sprintf("%d spans dropped", queued)
	for name, err := range map[string]error{"short": errShort, "long": errLong} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s Shutdown = %v, want the error saying %q", name, err, want)
		}
	}
	if s.Dropped.Shutdown != queued+1 || s.Accepted != int64(3000+probes+1) {
		t.Fatalf("got %+v after %d probes", s, probes)
	}
}

func TestShutdownWithAnEndedContextReturnsAndCounts(t *testing.T) {
	rcv := otlptest.NewHTTP(t, nil)
	rcv = otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		rcv.Hold(w, r)
		return true
	})
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()))
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(10))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var err error
	returns(t, "Shutdown", func() { err = exp.Shutdown(ctx) })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "10 spans dropped") {
		t.Fatalf("Shutdown = %v", err)
	}
	s := exp.Stats()
	checkBooks(t, s)
	if s.Dropped.Shutdown != 10 {
		t.Fatalf("%+v", s)
	}
}

func TestGRPCUntrustedCertificateIsNotRetried(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	ts.Close()
	rcv := otlptest.NewGRPC(t, nil, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	exp := exporter.New(exporter.WithProtocol(exporter.ProtocolGRPC), exporter.WithEndpoint(rcv.Endpoint()),
		exporter.WithTLSClientConfig(&tls.Config{MinVersion: tls.VersionTLS12}), exporter.WithLogger(zap.NewNop()))
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(7))
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	s := exp.Stats()
	checkBooks(t, s)
	if s.Dropped.PermanentError != 7 || s.Retries != 0 || s.Requests != 1 {
		t.Fatalf("want one attempt, dropped as permanent_error: %+v", s)
	}
}

func TestResourceExhaustedWithoutRetryInfoIsPaced(t *testing.T) {
	rcv := otlptest.NewGRPC(t, func(context.Context, int, *coltracepb.ExportTraceServiceRequest) error {
		return status.Error(codes.ResourceExhausted, "tenant over quota")
	})
	exp := exporter.New(exporter.WithProtocol(exporter.ProtocolGRPC), exporter.WithEndpoint(rcv.Endpoint()),
		exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: 50 * time.Millisecond, MaxElapsedTime: 500 * time.Millisecond}))
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(512))
	returns(t, "ForceFlush", func() { _ = exp.ForceFlush(context.Background()) })
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	s := exp.Stats()
	checkBooks(t, s)
	if s.Exported != 0 || s.Dropped.RetriesExhausted+s.Dropped.TooLarge != 512 {
		t.Fatalf("got %+v", s)
	}
	// Splitting 512 spans down to one per request without a pause takes
	// 1023 requests; paced by the retry policy, a half-second budget
	// allows a handful.
	if s.Requests > 32 || rcv.Requests() > 32 {
		t.Fatalf("%d requests for one batch refused whatever its size", s.Requests)
	}
}

func TestOneDurationPerExportOperation(t *testing.T) {
	rcv := otlptest.NewHTTP(t, func(n int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithWorkers(1),
		exporter.WithMeterProvider(mp), exporter.WithLogger(zap.NewNop()),
		exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: time.Millisecond, MaxElapsedTime: time.Minute}))
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(4))
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	if s := exp.Stats(); s.Requests != 2 || s.Exported != 4 {
		t.Fatalf("want one retry then success: %+v", s)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var points []metricdata.HistogramDataPoint[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "otel.sdk.exporter.operation.duration" {
				points = m.Data.(metricdata.Histogram[float64]).DataPoints
			}
		}
	}
	if len(points) != 1 || points[0].Count != 1 {
		t.Fatalf("want one observation for one operation of two attempts, got %+v", points)
	}
	if v, ok := points[0].Attributes.Value("http.response.status_code"); !ok || v.AsInt64() != 200 {
		t.Errorf("status of the last attempt: %v", points[0].Attributes.ToSlice())
	}
	if _, ok := points[0].Attributes.Value("error.type"); ok {
		t.Errorf("a successful operation has no error.type: %v", points[0].Attributes.ToSlice())
	}
	// The collection after Shutdown still sees the final counts.
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "otel.sdk.exporter.span.exported" {
				found = m.Data.(metricdata.Sum[int64]).DataPoints[0].Value == 4
			}
		}
	}
	if !found {
		t.Error("the exported counter was not collected after Shutdown")
	}
}

func TestGRPCStatusIsTheConventionsString(t *testing.T) {
	rcv := otlptest.NewGRPC(t, nil)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	exp := exporter.New(exporter.WithProtocol(exporter.ProtocolGRPC), exporter.WithEndpoint(rcv.Endpoint()),
		exporter.WithInsecure(), exporter.WithMeterProvider(mp))
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(4))
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "otel.sdk.exporter.operation.duration" {
				continue
			}
			for _, p := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				if v, ok := p.Attributes.Value("rpc.response.status_code"); !ok || v.AsString() != "OK" {
					t.Fatalf("attributes %v", p.Attributes.ToSlice())
				}
				return
			}
		}
	}
	t.Fatal("no operation.duration point")
}

var _ sdktrace.SpanExporter = (*exporter.Exporter)(nil)

func TestResumedDeliveryIsLogged(t *testing.T) {
	rcv := otlptest.NewHTTP(t, func(n int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	core, logs := observer.New(zapcore.InfoLevel)
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithWorkers(1),
		exporter.WithLogger(zap.New(core)),
		exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: time.Millisecond, MaxElapsedTime: time.Minute}))
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(3))
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	if exp.Stats().Exported != 3 {
		t.Fatalf("%+v", exp.Stats())
	}
	if logs.FilterMessageSnippet("delivery resumed after").Len() != 1 {
		t.Fatalf("want one line saying delivery resumed: %v", logs.All())
	}
}

// ConfigError reports at once the error every ExportSpans of an invalid
// configuration returns, and nil for a valid one.
func TestConfigErrorIsWhatExportSpansReturns(t *testing.T) {
	good := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()))
	if err := good.ConfigError(); err != nil {
		t.Errorf("valid configuration: ConfigError = %v", err)
	}
	bad := exporter.New(exporter.WithEndpoint("collector:99999"), exporter.WithQueueSize(-1), exporter.WithLogger(zap.NewNop()))
	err := bad.ConfigError()
	if err == nil || !strings.Contains(err.Error(), "invalid port") || !strings.Contains(err.Error(), "queue size") {
		t.Fatalf("ConfigError = %v, want both problems", err)
	}
	if got := bad.ExportSpans(context.Background(), otlptest.Spans(3)); got != err {
		t.Errorf("ExportSpans = %v, want ConfigError's %v", got, err)
	}
	for _, e := range []*exporter.Exporter{good, bad} {
		if err := shutdownWithin(t, e, bound); err != nil && e == good {
			t.Error(err)
		}
	}
}

// The methods of an Exporter New did not make never panic: they do
// nothing and say so.
func TestZeroAndNilExporterNeverPanic(t *testing.T) {
	for name, e := range map[string]*exporter.Exporter{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			if err := e.ExportSpans(context.Background(), otlptest.Spans(2)); err == nil {
				t.Error("ExportSpans = nil")
			}
			if err := e.ForceFlush(context.Background()); err == nil {
				t.Error("ForceFlush = nil")
			}
			if err := e.ConfigError(); err == nil {
				t.Error("ConfigError = nil")
			}
			if s := e.Stats(); s != (exporter.Stats{}) {
				t.Errorf("Stats = %+v", s)
			}
			if err := e.Shutdown(context.Background()); err == nil {
				t.Error("Shutdown = nil")
			}
		})
	}
}
