package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
)

func sampleRequest(t *testing.T) []byte {
	t.Helper()
	return mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Name: "GET /users/{id}", TraceId: make([]byte, 16), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}}},
	}}})
}

func TestHTTPJSONSendsOTLPJSONAndReadsJSONAnswers(t *testing.T) {
	body := sampleRequest(t)
	want, err := otlpenc.AppendJSON(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gz], func(t *testing.T) {
			type seen struct {
				ct, enc string
				body    []byte
			}
			got := make(chan seen, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err == nil && r.Header.Get("Content-Encoding") == "gzip" {
					b, err = gunzip(b)
				}
				if err != nil {
					t.Error(err)
				}
				got <- seen{r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), b}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"partialSuccess":{"rejectedSpans":"2","errorMessage":"two bad"}}`)
			}))
			defer srv.Close()
			c := NewHTTP(HTTPConfig{URL: srv.URL + "/v1/traces", JSON: true, Gzip: gz})
			defer c.Close()
			b := &Body{Parts: [][]byte{body[:5], body[5:]}}
			if done, err := c.Compress(b); done || err != nil {
				t.Fatalf("Compress = %v, %v: a JSON body must keep its protobuf parts", done, err)
			}
			resp, err := c.Send(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Rejected != 2 || resp.Message != "two bad" {
				t.Fatalf("JSON answer misread: %+v", resp)
			}
			s := <-got
			if s.ct != "application/json" || string(s.body) != string(want) {
				t.Fatalf("server got %q %q", s.ct, s.body)
			}
			if gz != (s.enc == "gzip") {
				t.Fatalf("Content-Encoding %q with gzip %v", s.enc, gz)
			}
		})
	}
}

func TestHTTPJSONErrorStatusIsRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"code":3,"message":"unknown field"}`)
	}))
	defer srv.Close()
	c := NewHTTP(HTTPConfig{URL: srv.URL, JSON: true})
	defer c.Close()
	_, err := c.Send(context.Background(), &Body{Parts: [][]byte{sampleRequest(t)}})
	if err == nil || !strings.HasSuffix(err.Error(), "400 Bad Request: unknown field") {
		t.Fatalf("got %v", err)
	}
}

func TestHTTPMaxResponseBytes(t *testing.T) {
	partial := mustMarshal(t, &coltracepb.ExportTraceServiceResponse{
		PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 1, ErrorMessage: strings.Repeat("x", 100)},
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(partial) }))
	defer srv.Close()
	c := NewHTTP(HTTPConfig{URL: srv.URL, MaxResponseBytes: 10})
	defer c.Close()
	resp, err := c.Send(context.Background(), &Body{})
	if err != nil || resp.Rejected != 0 || !strings.Contains(resp.Message, "not an ExportTraceServiceResponse") {
		t.Fatalf("a body cut at 10 bytes must be reported unreadable: %+v, %v", resp, err)
	}
}

func TestHTTPProxyIsUsed(t *testing.T) {
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1) // a forward proxy receives the absolute URL
		if r.URL.Host != "collector.invalid:4318" {
			t.Errorf("proxy got %v", r.URL)
		}
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	c := NewHTTP(HTTPConfig{URL: "http://collector.invalid:4318/v1/traces", Proxy: http.ProxyURL(pu)})
	defer c.Close()
	if _, err := c.Send(context.Background(), &Body{}); err != nil || proxied.Load() != 1 {
		t.Fatalf("err %v, proxied %d", err, proxied.Load())
	}
}

type countingTransport struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func TestHTTPCallersClientIsUsedAndNotClosed(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer target.Close()
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirector.Close()
	tr := &countingTransport{next: &http.Transport{}}
	defer tr.next.(*http.Transport).CloseIdleConnections()
	user := &http.Client{Transport: tr}
	c := NewHTTP(HTTPConfig{URL: redirector.URL, Client: user})
	_, err := c.Send(context.Background(), &Body{})
	if err == nil || !strings.Contains(err.Error(), "not followed") {
		t.Fatalf("a redirect must not be followed with the caller's client either: %v", err)
	}
	if tr.n.Load() != 1 {
		t.Fatalf("caller's transport used %d times, want 1", tr.n.Load())
	}
	if user.CheckRedirect != nil {
		t.Fatal("the caller's client was modified")
	}
	_ = c.Close()
}

// TestMisconfigurationsFailAtOnce points each protocol at the wrong kind of
// server: each must fail at the first attempt as permanent, naming the
// likely mistake.
func TestMisconfigurationsFailAtOnce(t *testing.T) {
	plainHTTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plainHTTP.Close()
	httpAddr := strings.TrimPrefix(plainHTTP.URL, "http://")
	grpcAddr := startGRPC(t, refuse(nil))
	// A plaintext server that is not HTTP at all.
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	go func() {
		for {
			conn, err := raw.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			_ = conn.Close()
		}
	}()

	send := func(c Client) error {
		defer c.Close()
		_, err := c.Send(context.Background(), &Body{Parts: [][]byte{sampleRequest(t)}})
		return err
	}
	grpcClient := func(cfg GRPCConfig) Client {
		c, err := NewGRPC(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		client func() Client
		want   string
	}{
		{"https to a plaintext HTTP server", func() Client { return NewHTTP(HTTPConfig{URL: "https://" + httpAddr + "/v1/traces"}) }, "does not speak TLS"},
		{"https to a plaintext non-HTTP server", func() Client { return NewHTTP(HTTPConfig{URL: "https://" + raw.Addr().String() + "/v1/traces"}) }, "does not speak TLS"},
		{"OTLP/HTTP to a gRPC port", func() Client { return NewHTTP(HTTPConfig{URL: "http://" + grpcAddr + "/v1/traces"}) }, "OTLP/gRPC port"},
		{"gRPC with TLS to a plaintext server", func() Client { return grpcClient(GRPCConfig{Target: httpAddr}) }, "does not speak TLS"},
		{"gRPC to an HTTP port", func() Client { return grpcClient(GRPCConfig{Target: httpAddr, Insecure: true}) }, "OTLP/HTTP port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := send(tc.client())
			var te *Error
			if !errors.As(err, &te) || te.Kind != Permanent || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a permanent failure naming %q", err, tc.want)
			}
		})
	}
}

func TestGRPCCallersConnIsUsedAndNotClosed(t *testing.T) {
	addr := startGRPC(t, refuse(nil))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The target is wrong on purpose: the caller's connection wins.
	c, err := NewGRPC(GRPCConfig{Target: "127.0.0.1:1", Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), &Body{Parts: [][]byte{sampleRequest(t)}}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if _, err := c.Send(context.Background(), &Body{Parts: [][]byte{sampleRequest(t)}}); err != nil {
		t.Fatalf("Close closed the caller's connection: %v", err)
	}
}

func TestGRPCDialOptionsAndServiceConfigApply(t *testing.T) {
	addr := startGRPC(t, refuse(nil))
	var intercepted atomic.Int64
	c, err := NewGRPC(GRPCConfig{Target: addr, Insecure: true,
		ServiceConfig: `{"loadBalancingConfig":[{"round_robin":{}}]}`,
		DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			intercepted.Add(1)
			return invoker(ctx, method, req, reply, cc, opts...)
		})}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Send(context.Background(), &Body{Parts: [][]byte{sampleRequest(t)}}); err != nil {
		t.Fatal(err)
	}
	if intercepted.Load() != 1 {
		t.Fatal("dial option not applied")
	}
}

// TestProxyUnavailableInFrontOfGRPCStaysRetryable: a proxy answering 503
// with a text body for a gRPC server that is down must not be taken for
// a misconfiguration.
func TestProxyUnavailableInFrontOfGRPCStaysRetryable(t *testing.T) {
	e := classifyGRPC(status.Error(codes.Unavailable, `unexpected HTTP status code received from server: 503 (Service Unavailable); transport: received unexpected content-type "text/plain"`), Redactor(nil))
	if e.Kind != Retryable {
		t.Fatalf("got %v", e)
	}
	e = classifyGRPC(status.Error(codes.Unimplemented, `unexpected HTTP status code received from server: 404 (Not Found); transport: received unexpected content-type "text/plain"`), Redactor(nil))
	if e.Kind != Permanent || !strings.Contains(e.Error(), "OTLP/HTTP port") {
		t.Fatalf("got %v", e)
	}
}
