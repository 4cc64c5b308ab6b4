package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// collector is the OpenTelemetry Collector's own OTLP receiver, listening
// on loopback for gRPC and HTTP and delivering into a sink.
type collector struct {
	grpcAddr, httpAddr string
	sink               *consumertest.TracesSink
}

// freeAddr returns a loopback address nothing listens on at the moment;
// the receiver does not report the port it bound, so it is chosen first.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startCollector(t *testing.T, maxRecvMiB int) *collector {
	t.Helper()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	c := &collector{grpcAddr: freeAddr(t), httpAddr: freeAddr(t), sink: new(consumertest.TracesSink)}
	g := configgrpc.NewDefaultServerConfig()
	g.NetAddr.Endpoint = c.grpcAddr
	if maxRecvMiB > 0 {
		g.MaxRecvMsgSizeMiB = maxRecvMiB
	}
	h := confighttp.NewDefaultServerConfig()
	h.NetAddr.Endpoint = c.httpAddr
	cfg.Protocols.GRPC = configoptional.Some(g)
	cfg.Protocols.HTTP = configoptional.Some(otlpreceiver.HTTPConfig{ServerConfig: h, TracesURLPath: "/v1/traces"})
	r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, c.sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return c
}

// TestCollectorReceivesEveryField sends the same spans, through one
// TracerProvider, to two Collector receivers: one through the stock
// otlptracehttp exporter, one through ours. What the Collector decoded
// from ours must equal, field for field, what it decoded from the stock
// exporter, over HTTP (protobuf and OTLP/JSON) and gRPC, with and without
// gzip, with requests split to fit a small maximum size.
func TestCollectorReceivesEveryField(t *testing.T) {
	for _, tc := range []struct {
		protocol exporter.Protocol
		comp     exporter.Compression
	}{
		{exporter.ProtocolHTTPProtobuf, exporter.NoCompression},
		{exporter.ProtocolHTTPProtobuf, exporter.GzipCompression},
		{exporter.ProtocolHTTPJSON, exporter.NoCompression},
		{exporter.ProtocolHTTPJSON, exporter.GzipCompression},
		{exporter.ProtocolGRPC, exporter.NoCompression},
		{exporter.ProtocolGRPC, exporter.GzipCompression},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.protocol, tc.comp), func(t *testing.T) {
			ours, reference := startCollector(t, 0), startCollector(t, 0)
			addr := ours.httpAddr
			if tc.protocol == exporter.ProtocolGRPC {
				addr = ours.grpcAddr
			}
			core, logs := observer.New(zapcore.WarnLevel)
			exp := exporter.New(
				exporter.WithProtocol(tc.protocol),
				exporter.WithEndpoint(addr),
				exporter.WithInsecure(),
				exporter.WithCompression(tc.comp),
				exporter.WithMaxRequestSize(8<<10), // forces each batch to be split
				exporter.WithLogger(zap.New(core)),
			)
			stock, err := otlptracehttp.New(context.Background(),
				otlptracehttp.WithEndpoint(reference.httpAddr), otlptracehttp.WithInsecure())
			if err != nil {
				t.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(
				sdktrace.WithResource(testResource()),
				sdktrace.WithBatcher(exp),
				sdktrace.WithBatcher(stock),
			)
			const n = 1200
			emitRichSpans(tp, n)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := tp.ForceFlush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := exp.ForceFlush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}

			got, want := flatten(t, ours.sink.AllTraces()), flatten(t, reference.sink.AllTraces())
			if len(want) != n || len(got) != n {
				t.Fatalf("the Collector received %d spans from ours and %d from stock, want %d each", len(got), len(want), n)
			}
			for i := range want {
				if !proto.Equal(got[i], want[i]) {
					t.Fatalf("span %d differs:\nours:  %v\nstock: %v", i, got[i], want[i])
				}
			}
			s := exp.Stats()
			if s.Exported != n || s.Dropped.Total() != 0 {
				t.Fatalf("stats %+v", s)
			}
			if reqs := ours.sink.SpanCount(); reqs != n {
				t.Fatalf("sink counted %d spans", reqs)
			}
			if len(ours.sink.AllTraces()) <= len(reference.sink.AllTraces()) {
				t.Fatalf("requests were not split: %d requests from ours, %d from stock",
					len(ours.sink.AllTraces()), len(reference.sink.AllTraces()))
			}
			if logs.Len() != 0 {
				t.Fatalf("unexpected log entries: %v", logs.All())
			}
		})
	}
}

// TestCollectorRefusesOversizedGRPC lets the Collector's gRPC server refuse
// messages above 1 MiB (ResourceExhausted, no RetryInfo): the exporter,
// allowed 4 MiB requests, must bisect them until they pass, losing nothing.
func TestCollectorRefusesOversizedGRPC(t *testing.T) {
	col := startCollector(t, 1)
	exp := exporter.New(
		exporter.WithProtocol(exporter.ProtocolGRPC),
		exporter.WithEndpoint(col.grpcAddr),
		exporter.WithInsecure(),
		exporter.WithMaxRequestSize(4<<20),
		exporter.WithLogger(zap.NewNop()),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(512)))
	tr := tp.Tracer("big")
	payload := strings.Repeat("x", 8<<10)
	const n = 512 // one batch of about 4 MiB
	for i := range n {
		_, s := tr.Start(context.Background(), "op", trace.WithAttributes(attribute.String("payload", payload), attribute.Int("i", i)))
		s.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := exp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s := exp.Stats()
	if got := col.sink.SpanCount(); got != n || s.Exported != n || s.Dropped.Total() != 0 {
		t.Fatalf("the Collector received %d of %d spans; stats %+v", got, n, s)
	}
	if s.Requests <= int64(len(col.sink.AllTraces())) {
		t.Fatalf("no request was refused and split: %d attempts, %d accepted", s.Requests, len(col.sink.AllTraces()))
	}
}

func testResource() *resource.Resource {
	return resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "checkout"),
		attribute.Int64("service.instance.number", 7),
		attribute.StringSlice("host.tags", []string{"a", "b"}),
	)
}

// emitRichSpans ends n spans (n/2 parent and child pairs) spread over
// several scopes, using every field the OTLP span carries.
func emitRichSpans(tp *sdktrace.TracerProvider, n int) {
	tracers := []trace.Tracer{
		tp.Tracer("net/http", trace.WithInstrumentationVersion("1.2.3"), trace.WithSchemaURL("https://opentelemetry.io/schemas/1.24.0"),
			trace.WithInstrumentationAttributes(attribute.String("lib.kind", "server"))),
		tp.Tracer("database/sql", trace.WithInstrumentationVersion("0.9")),
		tp.Tracer("plain"),
	}
	remoteTS, _ := trace.ParseTraceState("vendor=abc,ot=th:8")
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xaa, 1}, SpanID: trace.SpanID{0xbb, 2},
		TraceFlags: trace.FlagsSampled, TraceState: remoteTS, Remote: true,
	})
	base := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	for i := range n / 2 {
		tr := tracers[i%len(tracers)]
		ctx := context.Background()
		if i%5 == 0 {
			ctx = trace.ContextWithRemoteSpanContext(ctx, remote)
		}
		ctx, parent := tr.Start(ctx, fmt.Sprintf("GET /items/{id} %d", i%17),
			trace.WithSpanKind(trace.SpanKind(1+i%5)),
			trace.WithTimestamp(base.Add(time.Duration(i)*time.Millisecond)),
			trace.WithLinks(trace.Link{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.Bool("link.ok", true)}}),
			trace.WithAttributes(
				attribute.String("http.route", "/items/{id}"),
				attribute.Int("http.response.status_code", 200+i%300),
				attribute.Float64("ratio", float64(i)/7),
				attribute.Bool("cached", i%2 == 0),
				attribute.StringSlice("tags", []string{"x", fmt.Sprint(i)}),
				attribute.Int64Slice("ids", []int64{int64(i), -1}),
				attribute.Float64Slice("weights", []float64{0.5, 1.5}),
				attribute.BoolSlice("flags", []bool{true, false}),
			))
		_, child := tr.Start(ctx, "child", trace.WithTimestamp(base.Add(time.Duration(i)*time.Millisecond+time.Microsecond)))
		child.AddEvent("exception", trace.WithTimestamp(base.Add(time.Duration(i)*time.Millisecond+2*time.Microsecond)),
			trace.WithAttributes(attribute.String("exception.message", "boom"), attribute.Int("attempt", i%3)))
		if i%3 == 0 {
			child.SetStatus(codes.Error, "failed")
		} else {
			child.SetStatus(codes.Ok, "")
		}
		child.End(trace.WithTimestamp(base.Add(time.Duration(i)*time.Millisecond + 3*time.Microsecond)))
		parent.End(trace.WithTimestamp(base.Add(time.Duration(i)*time.Millisecond + 4*time.Microsecond)))
	}
}

// flatten turns what a sink received into one ResourceSpans per span,
// sorted by span ID, so that batching and request boundaries do not
// matter.
func flatten(t *testing.T, tds []ptrace.Traces) []*tracepb.ResourceSpans {
	t.Helper()
	var out []*tracepb.ResourceSpans
	var m ptrace.ProtoMarshaler
	for _, td := range tds {
		b, err := m.MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					out = append(out, &tracepb.ResourceSpans{
						Resource: rs.Resource, SchemaUrl: rs.SchemaUrl,
						ScopeSpans: []*tracepb.ScopeSpans{{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl, Spans: []*tracepb.Span{sp}}},
					})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return string(out[i].ScopeSpans[0].Spans[0].SpanId) < string(out[j].ScopeSpans[0].Spans[0].SpanId)
	})
	return out
}

// TestCollectorDoesNotSpeakH2C records why the exporter offers no option
// for HTTP/2 without TLS: the Collector's OTLP/HTTP receiver, and so every
// backend built on it, answers an h2c request in HTTP/1.1, so such an
// option would fail every request to the most common plaintext backend.
// A backend known to speak h2c is reached with WithHTTPClient.
func TestCollectorDoesNotSpeakH2C(t *testing.T) {
	col := startCollector(t, 0)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Post("http://"+col.httpAddr+"/v1/traces", "application/x-protobuf", bytes.NewReader(nil))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the Collector's receiver answered h2c with %s over %s: an h2c option would now work with it", resp.Status, resp.Proto)
	}
	// The HTTP/1.1 answer is read as an HTTP/2 frame: "frame too large,
	// ... looked like an HTTP/1.1 header", or, when the server's answer
	// ends the connection first, "client conn could not be established".
	if msg := err.Error(); !strings.Contains(msg, "http2:") || strings.Contains(msg, "connection refused") {
		t.Fatalf("h2c failed for another reason than an HTTP/1.1 answer: %v", err)
	}
}
