package otelconf_test

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/contrib/otelconf"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	tkconf "github.com/tracekeeper/tracekeeper/contrib/otelconf"
	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/sampler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// httpReceiver keeps what each OTLP/HTTP request carried.
type httpReceiver struct {
	mu      sync.Mutex
	paths   []string
	types   []string
	headers []http.Header
	bodies  []string
}

func (r *httpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, req.URL.Path)
	r.types = append(r.types, req.Header.Get("Content-Type"))
	r.headers = append(r.headers, req.Header.Clone())
	r.bodies = append(r.bodies, string(b))
}

// grpcReceiver is an OTLP/gRPC trace service keeping every request.
type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
}

func (g *grpcReceiver) Export(_ context.Context, r *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reqs = append(g.reqs, r)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func startGRPC(t *testing.T) (*grpcReceiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcReceiver{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, g)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return g, ln.Addr().String()
}

func load(t *testing.T) *otelconf.OpenTelemetryConfiguration {
	t.Helper()
	b, err := os.ReadFile("testdata/tracekeeper.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := otelconf.ParseYAML(b)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestFileWithGuardAndErrorKeeping builds the SDK from the YAML file with
// the guard and the error-keeping sampler. The file's sampler drops every
// new trace at the head, so what reaches both exporters is exactly the
// traces with an error, kept by the tail, with the file's resource, over
// both protocols, with the file's headers, encoding and compression.
func TestFileWithGuardAndErrorKeeping(t *testing.T) {
	hr := &httpReceiver{}
	hs := httptest.NewServer(hr)
	defer hs.Close()
	gr, gaddr := startGRPC(t)
	t.Setenv("HTTP_ENDPOINT", hs.URL)
	t.Setenv("GRPC_ENDPOINT", "http://"+gaddr)

	sdk, err := tkconf.NewSDK(load(t),
		tkconf.WithCardinalityGuard(),
		tkconf.WithErrorKeeping(),
		tkconf.WithExporterOptions(exporter.WithLogger(zap.NewNop())),
	)
	if err != nil {
		t.Fatal(err)
	}
	if sdk.Keeper() == nil || sdk.Guard() == nil || len(sdk.Exporters()) != 2 {
		t.Fatalf("pipeline incomplete: keeper %v guard %v exporters %d", sdk.Keeper(), sdk.Guard(), len(sdk.Exporters()))
	}
	tr := sdk.TracerProvider().Tracer("shop")
	for i := range 10 {
		ctx, root := tr.Start(context.Background(), "GET /orders/12345")
		_, child := tr.Start(ctx, "db")
		if i%4 == 0 { // traces 0, 4, 8
			child.RecordError(errors.New("boom"))
			child.SetStatus(codes.Error, "boom")
		}
		child.End()
		root.End()
	}
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	const want = 6 // three traces of two spans
	for i, e := range sdk.Exporters() {
		if s := e.Stats(); s.Exported != want || s.Dropped.Total() != 0 {
			t.Errorf("exporter %d: %+v, want %d exported", i, s, want)
		}
	}
	if got := sdk.Keeper().Stats().KeptByError; got != 3 {
		t.Errorf("kept by error: %d, want 3", got)
	}

	hr.mu.Lock()
	defer hr.mu.Unlock()
	if len(hr.types) == 0 {
		t.Fatal("no OTLP/HTTP request")
	}
	all := strings.Join(hr.bodies, "\n")
	for i, ct := range hr.types {
		if ct != "application/json" || hr.headers[i].Get("Api-Key") != "1234" || hr.headers[i].Get("Tenant") != "blue" ||
			hr.headers[i].Get("Content-Encoding") != "gzip" {
			t.Fatalf("request %d: %s, headers %v", i, ct, hr.headers[i])
		}
	}
	if strings.Count(all, `"name":"db"`) != 3 {
		t.Errorf("OTLP/JSON bodies hold %d db spans, want 3:\n%s", strings.Count(all, `"name":"db"`), all)
	}
	if strings.Contains(all, "12345") {
		t.Errorf("the guard did not template the span name:\n%.300s", all)
	}
	for _, s := range []string{`"key":"service.name","value":{"stringValue":"checkout"}`, `"key":"replica","value":{"intValue":"3"}`,
		`"key":"deployment.environment.name","value":{"stringValue":"test"}`, `"schemaUrl":"https://opentelemetry.io/schemas/1.26.0"`} {
		if !strings.Contains(all, s) {
			t.Errorf("resource lacks %s:\n%.400s", s, all)
		}
	}

	gr.mu.Lock()
	defer gr.mu.Unlock()
	spans := 0
	for _, r := range gr.reqs {
		for _, rs := range r.ResourceSpans {
			var svc string
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					svc = kv.GetValue().GetStringValue()
				}
			}
			if svc != "checkout" {
				t.Errorf("gRPC resource service.name %q", svc)
			}
			for _, ss := range rs.ScopeSpans {
				spans += len(ss.Spans)
			}
		}
	}
	if spans != want {
		t.Errorf("OTLP/gRPC received %d spans, want %d", spans, want)
	}
}

// TestFileSamplerAloneAndHeadOverride: without WithErrorKeeping the file's
// sampler is the provider's (always_off at the root: nothing is
// exported); with WithErrorKeeping(sampler.WithHead(always on)) the head
// given in code wins over the file's.
func TestFileSamplerAloneAndHeadOverride(t *testing.T) {
	hs := httptest.NewServer(&httpReceiver{})
	defer hs.Close()
	_, gaddr := startGRPC(t)
	t.Setenv("HTTP_ENDPOINT", hs.URL)
	t.Setenv("GRPC_ENDPOINT", "http://"+gaddr)
	for _, tc := range []struct {
		name string
		opts []tkconf.Option
		want int64
	}{
		{"file sampler", nil, 0},
		{"head in code wins", []tkconf.Option{tkconf.WithErrorKeeping(sampler.WithHead(alwaysOn{}))}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sdk, err := tkconf.NewSDK(load(t), append(tc.opts, tkconf.WithExporterOptions(exporter.WithLogger(zap.NewNop())))...)
			if err != nil {
				t.Fatal(err)
			}
			for range 4 {
				_, s := sdk.TracerProvider().Tracer("t").Start(context.Background(), "op")
				s.End()
			}
			if err := sdk.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, e := range sdk.Exporters() {
				if s := e.Stats(); s.Exported != tc.want {
					t.Errorf("exported %d, want %d", s.Exported, tc.want)
				}
			}
		})
	}
}

// parse parses a configuration written in the test.
func parse(t *testing.T, yaml string) *otelconf.OpenTelemetryConfiguration {
	t.Helper()
	cfg, err := otelconf.ParseYAML([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sendOne builds the SDK from cfg, ends one span and shuts the SDK down.
func sendOne(t *testing.T, cfg *otelconf.OpenTelemetryConfiguration) *tkconf.SDK {
	t.Helper()
	sdk, err := tkconf.NewSDK(cfg, tkconf.WithExporterOptions(exporter.WithLogger(zap.NewNop())))
	if err != nil {
		t.Fatal(err)
	}
	_, s := sdk.TracerProvider().Tracer("t").Start(context.Background(), "op")
	s.End()
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sdk
}

// TestHTTPEndpointPath: an otlp_http endpoint without a path sends to
// /v1/traces, as otelconf's own exporter does; a path, "/" included, is
// the request path.
func TestHTTPEndpointPath(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"", "/v1/traces"},
		{"/", "/"},
		{"/v1/traces", "/v1/traces"},
		{"/custom/traces", "/custom/traces"},
	} {
		t.Run("path="+tc.path, func(t *testing.T) {
			hr := &httpReceiver{}
			hs := httptest.NewServer(hr)
			defer hs.Close()
			sendOne(t, parse(t, `file_format: "1.0-rc.2"
tracer_provider:
  processors:
    - simple:
        exporter:
          otlp_http:
            endpoint: `+hs.URL+tc.path+`
`))
			hr.mu.Lock()
			defer hr.mu.Unlock()
			if len(hr.paths) != 1 || hr.paths[0] != tc.want {
				t.Errorf("endpoint %q: requests to %v, want one to %s", hs.URL+tc.path, hr.paths, tc.want)
			}
		})
	}
}

// TestWithoutTracingTheProviderRecordsNothing: with the SDK disabled, or
// without a tracer_provider, the tracer provider is still one to install
// (as the package documentation does) and it records nothing.
func TestWithoutTracingTheProviderRecordsNothing(t *testing.T) {
	for name, yaml := range map[string]string{
		"disabled": `file_format: "1.0-rc.2"
disabled: true
tracer_provider:
  processors:
    - simple:
        exporter:
          otlp_http:
            endpoint: http://127.0.0.1:1
`,
		"no tracer_provider": `file_format: "1.0-rc.2"
`,
	} {
		t.Run(name, func(t *testing.T) {
			sdk, err := tkconf.NewSDK(parse(t, yaml))
			if err != nil {
				t.Fatal(err)
			}
			tp := sdk.TracerProvider()
			if tp == nil {
				t.Fatal("nil tracer provider")
			}
			_, s := tp.Tracer("t").Start(context.Background(), "op")
			if s.IsRecording() || s.SpanContext().IsSampled() {
				t.Error("the span is recorded")
			}
			s.End()
			if len(sdk.Exporters()) != 0 {
				t.Errorf("%d exporters built", len(sdk.Exporters()))
			}
			if err := sdk.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGRPCEndpointForms: an otlp_grpc endpoint is host:port, as otelconf
// accepts it, or an http or https URL. Without a scheme, tls.insecure
// chooses plaintext; with one, the scheme does, as in otelconf.
func TestGRPCEndpointForms(t *testing.T) {
	for _, tc := range []struct {
		name, form, tls string
		want            int64 // spans received
	}{
		{"host:port", "127.0.0.1:%s", "insecure: true", 1},
		{"name:port", "localhost:%s", "insecure: true", 1},
		{"http URL", "http://127.0.0.1:%s", "", 1},
		{"http URL, insecure", "http://127.0.0.1:%s", "insecure: true", 1},
		{"https URL wins over insecure", "https://127.0.0.1:%s", "insecure: true", 0},
		{"host:port over TLS", "127.0.0.1:%s", "insecure: false", 0},
		{"gRPC target", "dns:///127.0.0.1:%s", "insecure: true", 1},
		{"passthrough target", "passthrough:///127.0.0.1:%s", "insecure: true", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gr, addr := startGRPC(t)
			_, port, _ := net.SplitHostPort(addr)
			tlsSection := ""
			if tc.tls != "" {
				tlsSection = "\n            tls:\n              " + tc.tls
			}
			sdk := sendOne(t, parse(t, fmt.Sprintf(`file_format: "1.0-rc.2"
tracer_provider:
  processors:
    - simple:
        exporter:
          otlp_grpc:
            endpoint: %s
            timeout: 5000%s
`, fmt.Sprintf(tc.form, port), tlsSection)))
			st := sdk.Exporters()[0].Stats()
			gr.mu.Lock()
			got := int64(len(gr.reqs))
			gr.mu.Unlock()
			if got != tc.want || st.Exported != tc.want || st.Dropped.Config != 0 {
				t.Errorf("received %d requests, stats %+v; want %d exported", got, st, tc.want)
			}
		})
	}
}

// TestInvalidConfigurationIsNewSDKError: what the exporter would refuse,
// and what otelconf refuses, is NewSDK's error, naming the processor,
// instead of spans dropped later.
func TestInvalidConfigurationIsNewSDKError(t *testing.T) {
	exp := func(body string) string {
		return `file_format: "1.0-rc.2"
tracer_provider:
  processors:
    - batch:
        exporter:
          otlp_http:
            endpoint: http://127.0.0.1:1
    - simple:
        exporter:
` + body
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"http without scheme", exp(`          otlp_http:
            endpoint: 127.0.0.1:4318
`), "want an http or https URL"},
		{"http scheme", exp(`          otlp_http:
            endpoint: ftp://collector:4318/v1/traces
`), "scheme must be http or https"},
		{"http port", exp(`          otlp_http:
            endpoint: http://collector:99999/v1/traces
`), "invalid port"},
		{"grpc port", exp(`          otlp_grpc:
            endpoint: collector:grpc
`), "invalid port"},
		{"grpc path without scheme", exp(`          otlp_grpc:
            endpoint: collector:4317/v1/traces
`), "must be host:port without scheme or path"},
		{"grpc credentials", exp(`          otlp_grpc:
            endpoint: user:secret@collector:4317
`), `endpoint "xxxxx@collector:4317" must be host:port`},
		{"grpc scheme", exp(`          otlp_grpc:
            endpoint: nosuch://collector:4317
`), `gRPC has no resolver for the scheme "nosuch"`},
		{"header name", exp(`          otlp_grpc:
            endpoint: localhost:4317
            headers:
              - name: api key
                value: "1234"
`), `header name "api key"`},
		{"headers_list written as a header", exp(`          otlp_grpc:
            endpoint: localhost:4317
            headers_list: "Authorization: Basic secret"
`), "headers_list: entry 1 is not key=value"},
		{"headers_list name", exp(`          otlp_grpc:
            endpoint: localhost:4317
            headers_list: "tenant=blue,api key=secret"
`), "headers_list: entry 2 does not start with a valid header name"},
		{"headers_list value", exp(`          otlp_http:
            endpoint: http://127.0.0.1:1
            headers_list: "api-key=secret%zz"
`), `headers_list: entry 1 (key "api-key") has an invalid URL-encoded value`},
		{"headers_list control character", exp(`          otlp_http:
            endpoint: http://127.0.0.1:1
            headers_list: "api-key=sec%0Aret"
`), `headers_list: entry 1 (key "api-key") has a value with control characters`},
		{"two exporters", exp(`          console:
          otlp_http:
            endpoint: http://127.0.0.1:1
`), "must not specify multiple exporters (console, otlp_http)"},
		{"two processor types", `file_format: "1.0-rc.2"
tracer_provider:
  processors:
    - simple:
        exporter:
          otlp_http:
            endpoint: http://127.0.0.1:1
      batch:
        exporter:
          otlp_http:
            endpoint: http://127.0.0.1:1
`, "must not specify multiple span processor types"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sdk, err := tkconf.NewSDK(parse(t, tc.yaml), tkconf.WithExporterOptions(exporter.WithLogger(zap.NewNop())))
			if err == nil {
				_ = sdk.Shutdown(context.Background())
				t.Fatalf("no error, want one with %q", tc.want)
			}
			if !strings.Contains(err.Error(), "tracer_provider.processors[") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error quotes a credential: %v", err)
			}
		})
	}
}

// A NaN ratio, which sdktrace.TraceIDRatioBased takes for "sample every
// trace", is NewSDK's error.
func TestNaNRatioIsNewSDKError(t *testing.T) {
	for _, sampler := range []string{`
    trace_id_ratio_based:
      ratio: .nan
`, `
    parent_based:
      root:
        trace_id_ratio_based:
          ratio: .NaN
`} {
		sdk, err := tkconf.NewSDK(parse(t, `file_format: "1.0-rc.2"
tracer_provider:
  sampler:`+sampler))
		if err == nil {
			_ = sdk.Shutdown(context.Background())
			t.Fatalf("no error for %s", sampler)
		}
		if !strings.Contains(err.Error(), "trace_id_ratio_based.ratio is NaN") {
			t.Fatalf("got %v", err)
		}
	}
}

func TestUnsupportedExporterIsNamed(t *testing.T) {
	cfg, err := otelconf.ParseYAML([]byte(`file_format: "1.0-rc.2"
tracer_provider:
  processors:
    - batch:
        exporter:
          console:
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tkconf.NewSDK(cfg)
	if err == nil || !strings.Contains(err.Error(), "tracer_provider.processors[0]") || !strings.Contains(err.Error(), "otlp_http and otlp_grpc") {
		t.Fatalf("got %v", err)
	}
}

type alwaysOn struct{}

func (alwaysOn) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return sdktrace.AlwaysSample().ShouldSample(p)
}
func (alwaysOn) Description() string { return "AlwaysOn" }
