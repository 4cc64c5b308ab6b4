package tracekeeper_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// These tests run the exporter the way a service does: spans are ended on a
// real sdktrace.TracerProvider whose BatchSpanProcessor hands them to the
// exporter, which sends them over loopback HTTP to a receiver that decodes
// every request as an OTLP ExportTraceServiceRequest.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait of a test so that a regression fails the
// test instead of hanging it. It is a bound, never an expectation of speed.
const testTimeout = 60 * time.Second

func boundedContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------
// The receiver: the OTLP test kit's loopback OTLP/HTTP receiver.

// newReceiver starts a receiver answering with a (nil: accept everything)
// and fails the test if a request body could not be read.
func newReceiver(t *testing.T, a otlptest.Answer) *otlptest.HTTP {
	t.Helper()
	var rcv *otlptest.HTTP
	// Registered first, so it runs last: after the server has closed and
	// its handlers have returned.
	t.Cleanup(func() {
		if rcv != nil && rcv.Unreadable() > 0 {
			t.Errorf("receiver: %d request bodies could not be read", rcv.Unreadable())
		}
	})
	rcv = otlptest.NewHTTP(t, a)
	return rcv
}

type receiverStats struct {
	requests, accepted, gzipped, maxBody int
	badHeader                            []string // requests that are not an OTLP/HTTP protobuf POST
}

func stats(rcv *otlptest.HTTP) receiverStats {
	var s receiverStats
	for _, r := range rcv.Received() {
		s.requests++
		if r.Gzipped {
			s.gzipped++
		}
		s.maxBody = max(s.maxBody, len(r.Body))
		if r.Method != http.MethodPost || r.Path != "/v1/traces" || r.ContentType != "application/x-protobuf" {
			s.badHeader = append(s.badHeader, fmt.Sprintf("%s %s %q", r.Method, r.Path, r.ContentType))
		}
	}
	s.accepted = len(rcv.Accepted())
	return s
}

// ---------------------------------------------------------------------------
// The pipeline under test.

type pipeline struct {
	tp  *sdktrace.TracerProvider
	exp *exporter.Exporter
	rec *tracetest.SpanRecorder
}

// newPipeline builds a TracerProvider with a recorder and a
// BatchSpanProcessor over an exporter configured by opts. Both are shut
// down when the test ends (a second Shutdown is harmless).
func newPipeline(t *testing.T, opts []exporter.Option, bspOpts []sdktrace.BatchSpanProcessorOption, tpOpts ...sdktrace.TracerProviderOption) *pipeline {
	t.Helper()
	p := &pipeline{exp: exporter.New(opts...), rec: tracetest.NewSpanRecorder()}
	tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p.rec), sdktrace.WithBatcher(p.exp, bspOpts...))
	p.tp = sdktrace.NewTracerProvider(tpOpts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := p.tp.Shutdown(ctx); err != nil {
			t.Errorf("TracerProvider.Shutdown: %v", err)
		}
	})
	return p
}

// flush delivers every ended span. TracerProvider.ForceFlush only hands
// the BatchSpanProcessor's spans to ExportSpans, which queues them and
// returns before anything is sent; Exporter.ForceFlush then waits until
// those queued spans have been sent or dropped. Either one alone leaves
// spans on their way when it returns.
func (p *pipeline) flush(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := p.tp.ForceFlush(ctx); err != nil {
		t.Fatalf("TracerProvider.ForceFlush: %v", err)
	}
	if err := p.exp.ForceFlush(ctx); err != nil {
		t.Fatalf("Exporter.ForceFlush: %v", err)
	}
}

// sampled returns the ended spans the BatchSpanProcessor was given: the
// sampled ones. Spans that were only recorded reach the recorder but not
// the exporter.
func (p *pipeline) sampled() []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range p.rec.Ended() {
		if s.SpanContext().IsSampled() {
			out = append(out, s)
		}
	}
	return out
}

// checkAccounting checks that the exporter's figures add up and that it
// accepted every sampled span that was ended, and returns them.
func (p *pipeline) checkAccounting(t *testing.T) exporter.Stats {
	t.Helper()
	s := p.exp.Stats()
	checkInvariant(t, s)
	if n := int64(len(p.sampled())); s.Accepted != n {
		t.Errorf("exporter accepted %d spans, %d sampled spans were ended: %+v", s.Accepted, n, s)
	}
	return s
}

func checkInvariant(t *testing.T, s exporter.Stats) {
	t.Helper()
	if s.Accepted != s.Exported+s.Dropped.Total()+s.Queued+s.Spooled+s.InFlight {
		t.Errorf("Accepted != Exported + Dropped + Queued + InFlight: %+v", s)
	}
}

// endSpans ends n plain spans named name, attr i carrying their index.
func endSpans(tr trace.Tracer, name string, n int) {
	for i := range n {
		_, s := tr.Start(context.Background(), name, trace.WithAttributes(attribute.Int("i", i)))
		s.End()
	}
}

// reportedDrops adds up the spans the fallback logger reported dropped for
// reason, checking that each report is an error entry naming the cause.
func reportedDrops(logs *observer.ObservedLogs, reason exporter.Reason) int64 {
	var n int64
	for _, e := range logs.All() {
		fields := e.ContextMap()
		v, ok := fields[string(reason)].(int64)
		if !ok {
			continue
		}
		if c, _ := fields[string(reason)+"_cause"].(string); e.Level != zapcore.ErrorLevel || c == "" {
			return -1 // a drop must be reported as an error, with its cause
		}
		n += v
	}
	return n
}

func observedLogger(level zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(level)
	return zap.New(core), logs
}

// fastRetry is a retry budget measured in milliseconds, so that tests of
// failing backends end quickly.
var fastRetry = exporter.RetryConfig{
	Enabled:         true,
	InitialInterval: 5 * time.Millisecond,
	MaxInterval:     10 * time.Millisecond,
	MaxElapsedTime:  50 * time.Millisecond,
}

// ---------------------------------------------------------------------------
// 1. Everything arrives, intact.

// recordOnlyDebug records spans whose name starts with "debug" without
// sampling them, and samples the others, keeping the parent's trace state.
type recordOnlyDebug struct{}

func (recordOnlyDebug) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	d := sdktrace.RecordAndSample
	if strings.HasPrefix(p.Name, "debug") {
		d = sdktrace.RecordOnly
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
}

func (recordOnlyDebug) Description() string { return "recordOnlyDebug" }

func TestSpansArriveIntact(t *testing.T) {
	for _, tc := range []struct {
		name        string
		compression exporter.Compression
	}{
		{"uncompressed", exporter.NoCompression},
		{"gzip", exporter.GzipCompression},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := boundedContext(t)
			rcv := newReceiver(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
				if r.Header.Get("X-Api-Key") != "secret-key" {
					http.Error(w, "missing api key", http.StatusUnauthorized)
					return true
				}
				return false
			})
			log, logs := observedLogger(zapcore.WarnLevel)
			res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
				attribute.String("service.name", "checkout"),
				attribute.String("service.version", "2.3.1"),
				attribute.StringSlice("host.ip", []string{"10.0.0.1", "fe80::1"}),
			)
			limits := sdktrace.NewSpanLimits()
			limits.AttributeCountLimit = 24
			limits.EventCountLimit = 3
			limits.LinkCountLimit = 2
			p := newPipeline(t,
				[]exporter.Option{
					exporter.WithEndpointURL(rcv.URL()),
					exporter.WithCompression(tc.compression),
					exporter.WithHeaders(map[string]string{"X-Api-Key": "secret-key"}),
					exporter.WithLogger(log),
				}, nil,
				sdktrace.WithResource(res),
				sdktrace.WithSampler(recordOnlyDebug{}),
				sdktrace.WithSpanLimits(limits),
			)

			tracers := []trace.Tracer{
				p.tp.Tracer("github.com/acme/checkout",
					trace.WithInstrumentationVersion("v1.4.2"),
					trace.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0"),
					trace.WithInstrumentationAttributes(attribute.String("team", "payments"))),
				p.tp.Tracer("github.com/acme/inventory", trace.WithInstrumentationVersion("v0.9.0")),
				p.tp.Tracer("github.com/acme/db",
					trace.WithSchemaURL("https://opentelemetry.io/schemas/1.24.0"),
					trace.WithInstrumentationAttributes(attribute.Bool("pooled", true), attribute.Int("shard", 3))),
			}
			ts, err := trace.ParseTraceState("vendor=abc,other=1")
			if err != nil {
				t.Fatal(err)
			}
			remote := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
				SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
				TraceFlags: trace.FlagsSampled,
				TraceState: ts,
				Remote:     true,
			})
			kinds := []trace.SpanKind{trace.SpanKindServer, trace.SpanKindConsumer, trace.SpanKindInternal,
				trace.SpanKindProducer}

			var prev trace.SpanContext
			for i := range 100 {
				for j, tr := range tracers {
					parentCtx := context.Background()
					if i%5 == 0 {
						parentCtx = trace.ContextWithRemoteSpanContext(parentCtx, remote)
					}
					links := []trace.Link{{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.String("link.kind", "remote")}}}
					if prev.IsValid() {
						links = append(links, trace.Link{SpanContext: prev, Attributes: []attribute.KeyValue{attribute.Int("link.index", i)}})
					}
					ctx, root := tr.Start(parentCtx, fmt.Sprintf("request %d/%d", j, i),
						trace.WithSpanKind(kinds[(i+j)%len(kinds)]),
						trace.WithAttributes(otlptest.AllTypes(i)...),
						trace.WithLinks(links...))
					root.AddEvent("cache miss", trace.WithAttributes(attribute.String("key", "user:"+strconv.Itoa(i)),
						attribute.Int64Slice("sizes", []int64{1, 2, 3})))
					if i%33 == 0 {
						// More attributes, events and links than the limits:
						// the SDK counts the excess as dropped.
						for k := range 30 {
							root.SetAttributes(attribute.Int("extra."+strconv.Itoa(k), k))
						}
						for k := range 5 {
							root.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", k)))
						}
						root.AddLink(trace.Link{SpanContext: remote})
					}

					_, child := tr.Start(ctx, "SELECT orders", trace.WithSpanKind(trace.SpanKindClient),
						trace.WithAttributes(attribute.String("db.system", "postgresql")))
					if i%7 == 0 {
						child.RecordError(errors.New("connection reset"))
						child.SetStatus(codes.Error, "payment declined")
					}
					child.End()
					if i%10 == 0 {
						_, dbg := tr.Start(ctx, "debug probe")
						dbg.End()
					}
					if i%4 == 0 {
						root.SetStatus(codes.Ok, "")
					}
					prev = root.SpanContext()
					root.End()
				}
			}

			p.flush(ctx, t)
			want := p.sampled()
			if len(want) != 600 || len(p.rec.Ended()) != 630 {
				t.Fatalf("the SDK ended %d spans, %d sampled; want 630 and 600", len(p.rec.Ended()), len(want))
			}
			var withDrops int
			for _, s := range want {
				if s.DroppedAttributes() > 0 && s.DroppedEvents() > 0 && s.DroppedLinks() > 0 {
					withDrops++
				}
			}
			if withDrops == 0 {
				t.Fatal("no span exceeds the span limits: the dropped counts go untested")
			}
			otlptest.CompareSpans(t, want, otlptest.FromRequests(t, rcv.Accepted()))

			s := p.checkAccounting(t)
			if s.Exported != 600 || s.Dropped.Total() != 0 || s.Queued != 0 || s.InFlight != 0 {
				t.Errorf("stats %+v, want all 600 spans exported", s)
			}
			rs := stats(rcv)
			if len(rs.badHeader) > 0 {
				t.Errorf("malformed requests: %v", rs.badHeader)
			}
			wantGzipped := 0
			if tc.compression == exporter.GzipCompression {
				wantGzipped = rs.requests
			}
			if rs.requests == 0 || rs.gzipped != wantGzipped {
				t.Errorf("%d of %d requests gzipped with compression %v", rs.gzipped, rs.requests, tc.compression)
			}
			if s.Requests != int64(rs.requests) {
				t.Errorf("exporter counted %d requests, the receiver saw %d", s.Requests, rs.requests)
			}
			if n := logs.Len(); n != 0 {
				t.Errorf("the fallback logger reported %d entries for a healthy backend: %v", n, logs.All())
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 2. A slow backend never holds up the application.

func TestSlowBackendNeverBlocksSpanEnd(t *testing.T) {
	// Far more spans than the BatchSpanProcessor's queue of 2048 holds.
	const n = 5000
	for _, tc := range []struct {
		name string
		opts []exporter.Option
		// overflow: the exporter's own queue is too small for the backlog,
		// so some spans are dropped with reason queue_full.
		overflow bool
	}{
		{"queue holds the backlog", nil, false},
		{"queue overflows", []exporter.Option{exporter.WithQueueSize(1024), exporter.WithWorkers(1)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := boundedContext(t)
			var rcv *otlptest.HTTP
			rcv = newReceiver(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
				if rcv.Wait(r) {
					return false // accept once released
				}
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			})
			log, _ := observedLogger(zapcore.WarnLevel)
			opts := append([]exporter.Option{
				exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(log),
				exporter.WithTimeout(testTimeout),
			}, tc.opts...)
			// A blocking BatchSpanProcessor makes span.End wait whenever its
			// queue is full, that is whenever ExportSpans is slow to return;
			// with the default, dropping one, End could not show a wait.
			p := newPipeline(t, opts, []sdktrace.BatchSpanProcessorOption{sdktrace.WithBlocking()})
			tr := p.tp.Tracer("slow-backend")

			ended := make(chan struct{})
			go func() {
				defer close(ended)
				endSpans(tr, "op", n)
			}()
			select {
			case <-ended:
			case <-ctx.Done():
				t.Fatalf("span.End waited on the blocked backend: %d of %d spans ended", len(p.rec.Ended()), n)
			}
			// The BatchSpanProcessor's flush hands everything to the exporter;
			// it too returns while the backend is still blocked.
			if err := p.tp.ForceFlush(ctx); err != nil {
				t.Fatalf("TracerProvider.ForceFlush waited on the blocked backend: %v", err)
			}
			s := p.checkAccounting(t)
			if s.Accepted != n || s.Exported != 0 {
				t.Fatalf("while the backend is blocked: %+v, want %d accepted and none exported", s, n)
			}
			if tc.overflow != (s.Dropped.QueueFull > 0) {
				t.Errorf("queue_full drops %d, want some: %v", s.Dropped.QueueFull, tc.overflow)
			}

			rcv.Unblock()
			p.flush(ctx, t)
			s = p.checkAccounting(t)
			got := otlptest.FromRequests(t, rcv.Accepted())
			if s.Exported != int64(len(got)) || s.Exported+s.Dropped.QueueFull != n || s.Dropped.Total() != s.Dropped.QueueFull {
				t.Errorf("received %d spans, stats %+v; want every span exported or dropped as queue_full", len(got), s)
			}
			if s.Queued != 0 || s.InFlight != 0 {
				t.Errorf("spans left after the flush: %+v", s)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 3. Nothing listens: spans are dropped, counted and reported.

func TestBackendDown(t *testing.T) {
	ctx := boundedContext(t)
	addr := otlptest.RefusedAddr(t)

	log, logs := observedLogger(zapcore.WarnLevel)
	var replay bytes.Buffer
	p := newPipeline(t, []exporter.Option{
		exporter.WithEndpoint(addr), exporter.WithInsecure(), exporter.WithLogger(log),
		exporter.WithRetry(fastRetry), exporter.WithWorkers(2), exporter.WithDroppedSpansWriter(&replay),
	}, nil)
	const n = 120
	endSpans(p.tp.Tracer("down"), "op", n)
	p.flush(ctx, t)

	s := p.checkAccounting(t)
	if s.Dropped.RetriesExhausted != n || s.Exported != 0 || s.Dropped.Total() != n {
		t.Errorf("stats %+v, want all %d spans dropped as retries_exhausted", s, n)
	}
	if s.Retries == 0 {
		t.Errorf("no retry within a %v budget: %+v", fastRetry.MaxElapsedTime, s)
	}
	if err := p.tp.Shutdown(ctx); err != nil {
		t.Fatalf("TracerProvider.Shutdown: %v", err)
	}

	// The reports are aggregated: their counts add up to the drops, each
	// with the cause.
	if reported := reportedDrops(logs, exporter.ReasonRetriesExhausted); reported != n {
		t.Errorf("the fallback logger reported %d spans dropped as retries_exhausted, want %d; entries: %v", reported, n, logs.All())
	}

	// Every dropped span was written out as replayable OTLP/JSON.
	replayed := 0
	sc := bufio.NewScanner(&replay)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var msg coltracepb.ExportTraceServiceRequest
		if err := protojson.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatalf("dropped-spans line %d: %v", replayed, err)
		}
		for _, rs := range msg.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				replayed += len(ss.GetSpans())
			}
		}
	}
	if replayed != n {
		t.Errorf("%d spans written to the dropped-spans writer, want %d", replayed, n)
	}
}

// ---------------------------------------------------------------------------
// 4. Throttling is honoured and then everything is delivered.

func TestThrottledThenAccepted(t *testing.T) {
	ctx := boundedContext(t)
	rcv := newReceiver(t, func(n int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	log, _ := observedLogger(zapcore.WarnLevel)
	p := newPipeline(t, []exporter.Option{
		exporter.WithEndpointURL(rcv.URL()), exporter.WithLogger(log),
		// The computed delays are far shorter than the server's Retry-After
		// of one second, which must win; the budget leaves room for it.
		exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond,
			MaxInterval: 10 * time.Millisecond, MaxElapsedTime: 30 * time.Second}),
	}, nil)
	const n = 40
	endSpans(p.tp.Tracer("throttled"), "op", n)
	p.flush(ctx, t)

	s := p.checkAccounting(t)
	got := otlptest.FromRequests(t, rcv.Accepted())
	if s.Exported != n || len(got) != n || s.Dropped.Total() != 0 {
		t.Errorf("received %d spans, stats %+v; want all %d exported", len(got), s, n)
	}
	if s.Retries < 1 || stats(rcv).requests < 2 {
		t.Errorf("stats %+v, %d requests; want the throttled request retried", s, stats(rcv).requests)
	}
	otlptest.CompareSpans(t, p.sampled(), got)
}

// ---------------------------------------------------------------------------
// 5. Requests too large for the backend are split; a span too large for any
// request is dropped alone.

func TestTooLargeRequests(t *testing.T) {
	const (
		n          = 100
		serverMax  = 4 << 10 // the receiver answers 413 above this size
		requestMax = 8 << 10 // WithMaxRequestSize in the second case
	)
	for _, tc := range []struct {
		name string
		opts []exporter.Option
		// hugePayload is the size of the attribute that makes one span
		// too large.
		hugePayload int
		// serverRefuses: the receiver answers 413 for bodies above
		// serverMax; otherwise it accepts anything.
		serverRefuses bool
	}{
		{"backend answers 413", nil, 2 * serverMax, true},
		{"above WithMaxRequestSize", []exporter.Option{exporter.WithMaxRequestSize(requestMax)}, 2 * requestMax, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := boundedContext(t)
			rcv := newReceiver(t, func(_ int, body []byte, w http.ResponseWriter, _ *http.Request) bool {
				if tc.serverRefuses && len(body) > serverMax {
					http.Error(w, "request entity too large", http.StatusRequestEntityTooLarge)
					return true
				}
				return false
			})
			log, _ := observedLogger(zapcore.WarnLevel)
			// One worker and small batches from the BatchSpanProcessor: the
			// worker joins queued batches into one request, which the split
			// must take apart again, across resources and scopes.
			opts := append([]exporter.Option{exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(),
				exporter.WithLogger(log), exporter.WithRetry(fastRetry), exporter.WithWorkers(1)}, tc.opts...)
			p := newPipeline(t, opts, []sdktrace.BatchSpanProcessorOption{sdktrace.WithMaxExportBatchSize(16)})
			tracers := []trace.Tracer{
				p.tp.Tracer("large/a", trace.WithInstrumentationVersion("v1")),
				p.tp.Tracer("large/b", trace.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0")),
			}
			pad := strings.Repeat("p", 200)
			var hugeID string
			for i := range n {
				payload := pad
				if i == n/2 {
					payload = strings.Repeat("h", tc.hugePayload)
				}
				_, s := tracers[i%2].Start(ctx, "op", trace.WithAttributes(attribute.Int("i", i), attribute.String("payload", payload)))
				if i == n/2 {
					hugeID = s.SpanContext().SpanID().String()
				}
				s.End()
			}
			p.flush(ctx, t)

			var want []sdktrace.ReadOnlySpan
			for _, s := range p.sampled() {
				if s.SpanContext().SpanID().String() != hugeID {
					want = append(want, s)
				}
			}
			got := otlptest.FromRequests(t, rcv.Accepted())
			otlptest.CompareSpans(t, want, got)
			s := p.checkAccounting(t)
			if s.Exported != n-1 || s.Dropped.TooLarge != 1 || s.Dropped.Total() != 1 {
				t.Errorf("stats %+v, want %d exported and the huge span dropped as too_large", s, n-1)
			}
			rs := stats(rcv)
			if tc.serverRefuses && rs.requests <= rs.accepted {
				t.Errorf("the receiver refused nothing (%d requests): the test did not exercise splitting", rs.requests)
			}
			if !tc.serverRefuses && rs.maxBody > requestMax {
				t.Errorf("a request of %d bytes exceeds WithMaxRequestSize(%d)", rs.maxBody, requestMax)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 6. Backends that fail in other ways.

func TestBackendFailures(t *testing.T) {
	const n = 30
	for _, tc := range []struct {
		name   string
		answer func(rcv *otlptest.HTTP) otlptest.Answer
		opts   []exporter.Option
		check  func(t *testing.T, s exporter.Stats, logs *observer.ObservedLogs)
	}{
		{
			name: "500 is permanent",
			answer: func(*otlptest.HTTP) otlptest.Answer {
				return func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
					http.Error(w, "internal error", http.StatusInternalServerError)
					return true
				}
			},
			check: func(t *testing.T, s exporter.Stats, _ *observer.ObservedLogs) {
				if s.Dropped.PermanentError != n || s.Retries != 0 || s.Exported != 0 {
					t.Errorf("stats %+v, want %d dropped as permanent_error without retries", s, n)
				}
			},
		},
		{
			name: "partial success",
			answer: func(*otlptest.HTTP) otlptest.Answer {
				return func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
					b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{
						RejectedSpans: 3, ErrorMessage: "spans older than the retention",
					}})
					w.Header().Set("Content-Type", "application/x-protobuf")
					_, _ = w.Write(b)
					return true
				}
			},
			check: func(t *testing.T, s exporter.Stats, logs *observer.ObservedLogs) {
				if s.Dropped.Rejected != 3 || s.Exported != n-3 || s.Dropped.Total() != 3 {
					t.Errorf("stats %+v, want 3 rejected and %d exported", s, n-3)
				}
				if got := reportedDrops(logs, exporter.ReasonRejected); got != 3 {
					t.Errorf("the fallback logger reported %d rejected spans, want 3: %v", got, logs.All())
				}
			},
		},
		{
			// A 2xx answer means the backend took the request: the spans
			// count as exported. A body that is not an
			// ExportTraceServiceResponse cannot report a partial success and
			// is only reported as a warning.
			name: "garbage 200 body is exported",
			answer: func(*otlptest.HTTP) otlptest.Answer {
				return func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
					w.WriteHeader(http.StatusOK)
					_, _ = w.Write([]byte{0xff, 0xff, 0xff, 0x07, 'n', 'o', 't', ' ', 'o', 't', 'l', 'p'})
					return true
				}
			},
			check: func(t *testing.T, s exporter.Stats, logs *observer.ObservedLogs) {
				if s.Exported != n || s.Dropped.Total() != 0 {
					t.Errorf("stats %+v, want %d exported", s, n)
				}
				if logs.FilterLevelExact(zapcore.WarnLevel).Len() == 0 {
					t.Errorf("the unreadable answer was not reported: %v", logs.All())
				}
			},
		},
		{
			name: "hanging backend times out",
			answer: func(rcv *otlptest.HTTP) otlptest.Answer {
				return func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool { rcv.Hold(w, r); return true }
			},
			opts: []exporter.Option{exporter.WithTimeout(100 * time.Millisecond), exporter.WithRetry(exporter.RetryConfig{
				Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsedTime: 50 * time.Millisecond,
			})},
			check: func(t *testing.T, s exporter.Stats, _ *observer.ObservedLogs) {
				if s.Dropped.RetriesExhausted != n || s.Exported != 0 {
					t.Errorf("stats %+v, want %d dropped as retries_exhausted", s, n)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := boundedContext(t)
			var rcv *otlptest.HTTP
			rcv = newReceiver(t, func(i int, body []byte, w http.ResponseWriter, r *http.Request) bool {
				return tc.answer(rcv)(i, body, w, r)
			})
			log, logs := observedLogger(zapcore.WarnLevel)
			opts := append([]exporter.Option{exporter.WithEndpointURL(rcv.URL()), exporter.WithLogger(log),
				exporter.WithRetry(fastRetry)}, tc.opts...)
			p := newPipeline(t, opts, nil)
			endSpans(p.tp.Tracer("failures"), "op", n)
			p.flush(ctx, t)
			s := p.checkAccounting(t)
			if s.Queued != 0 || s.InFlight != 0 {
				t.Errorf("spans left after the flush: %+v", s)
			}
			if err := p.tp.Shutdown(ctx); err != nil {
				t.Errorf("TracerProvider.Shutdown: %v", err)
			}
			tc.check(t, s, logs)
		})
	}
}

func TestShutdownWithCancelledContextWhileBackendHangs(t *testing.T) {
	ctx := boundedContext(t)
	var rcv *otlptest.HTTP
	rcv = newReceiver(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		rcv.Hold(w, r)
		return true
	})
	log, logs := observedLogger(zapcore.WarnLevel)
	p := newPipeline(t, []exporter.Option{
		exporter.WithEndpointURL(rcv.URL()), exporter.WithLogger(log), exporter.WithTimeout(testTimeout),
	}, nil)
	const n = 50
	endSpans(p.tp.Tracer("shutdown"), "op", n)
	if err := p.tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rcv.WaitRequests(ctx, 1); err != nil {
		t.Fatalf("no request reached the receiver: %v", err)
	}

	// TracerProvider.Shutdown returns at once, without reaching its
	// processors, when its context is already done; a service that wants
	// the exporter to give up shuts it down directly.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.exp.Shutdown(cancelled)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Exporter.Shutdown = %v, want an error wrapping context.Canceled", err)
	}
	s := p.checkAccounting(t)
	if s.Dropped.Shutdown != n || s.Exported != 0 || s.Queued != 0 || s.InFlight != 0 {
		t.Errorf("stats %+v, want all %d spans dropped as shutdown", s, n)
	}
	// The provider's own shutdown finds the exporter already shut down.
	if err := p.tp.Shutdown(ctx); err != nil {
		t.Errorf("TracerProvider.Shutdown after Exporter.Shutdown: %v", err)
	}
	// The report is written by the reporter's goroutine, which Shutdown
	// does not wait for once its context is done: it comes afterwards.
	for reportedDrops(logs, exporter.ReasonShutdown) < n && ctx.Err() == nil {
		runtime.Gosched()
	}
	if reported := reportedDrops(logs, exporter.ReasonShutdown); reported != n {
		t.Errorf("the fallback logger reported %d spans dropped at shutdown, want %d: %v", reported, n, logs.All())
	}
}

// ---------------------------------------------------------------------------
// 7. Invalid UTF-8 is repaired, not fatal to the batch.

func TestInvalidUTF8IsRepaired(t *testing.T) {
	ctx := boundedContext(t)
	rcv := newReceiver(t, nil) // proto.Unmarshal refuses invalid UTF-8 in strings
	log, _ := observedLogger(zapcore.WarnLevel)
	p := newPipeline(t, []exporter.Option{exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(),
		exporter.WithLogger(log)}, nil)
	tr := p.tp.Tracer("utf8")
	const n = 20
	var badID string
	for i := range n {
		name, user := "op", "jörg"
		if i == n/2 {
			name, user = "caf\xe9 order", "j\xf6rg\xff" // Latin-1 bytes, as a careless client sends them
		}
		_, s := tr.Start(ctx, name, trace.WithAttributes(attribute.String("user", user), attribute.Int("i", i)))
		if i == n/2 {
			badID = s.SpanContext().SpanID().String()
		}
		s.End()
	}
	p.flush(ctx, t)

	got := otlptest.FromRequests(t, rcv.Accepted())
	otlptest.CompareSpans(t, p.sampled(), got)
	bad := got[badID]
	if bad.Name != "caf\uFFFD order" || !slices.Contains(bad.Attributes, "user=string:"+strconv.Quote("j\uFFFDrg\uFFFD")) {
		t.Errorf("invalid UTF-8 not repaired: name %q, attributes %v", bad.Name, bad.Attributes)
	}
	s := p.checkAccounting(t)
	if s.Exported != n || s.Dropped.Total() != 0 {
		t.Errorf("stats %+v, want all %d spans exported", s, n)
	}
	if s.Repaired != 2 {
		t.Errorf("Repaired = %d, want 2 (the span name and the attribute value)", s.Repaired)
	}
}

// ---------------------------------------------------------------------------

// Example shows the exporter in a TracerProvider, with a loopback server
// standing in for an OpenTelemetry Collector.
func Example() {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer collector.Close()

	exp := exporter.New(exporter.WithEndpointURL(collector.URL + "/v1/traces"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	tracer := tp.Tracer("example")

	ctx := context.Background()
	for range 3 {
		_, span := tracer.Start(ctx, "work")
		span.End()
	}

	// Before the process exits: hand the batched spans to the exporter, then
	// wait for them to be sent.
	_ = tp.ForceFlush(ctx)
	_ = exp.ForceFlush(ctx)
	s := exp.Stats()
	fmt.Printf("accepted %d, exported %d, dropped %d\n", s.Accepted, s.Exported, s.Dropped.Total())
	_ = tp.Shutdown(ctx)
	// Output: accepted 3, exported 3, dropped 0
}
