package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// wrappingTransport is what instrumented programs install as
// http.DefaultTransport (otelhttp.NewTransport and the like).
type wrappingTransport struct{ next http.RoundTripper }

func (w wrappingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return w.next.RoundTrip(r)
}

func TestHTTPWorksWhenDefaultTransportIsWrapped(t *testing.T) {
	saved := http.DefaultTransport
	http.DefaultTransport = wrappingTransport{saved}
	defer func() { http.DefaultTransport = saved }()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c := NewHTTP(HTTPConfig{URL: srv.URL})
	defer c.Close()
	if _, err := c.Send(context.Background(), &Body{}); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPRedirectsAreNotFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var reached atomic.Int64
			var leaked atomic.Value
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				leaked.Store(r.Header.Get("Api-Key"))
			}))
			defer target.Close()
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/v1/traces?token=abc", code)
			}))
			defer origin.Close()
			for _, gzip := range []bool{false, true} {
				c := NewHTTP(HTTPConfig{URL: origin.URL + "/v1/traces", Gzip: gzip, Headers: map[string]string{"api-key": "s3cret-value"}})
				_, err := c.Send(context.Background(), &Body{Parts: [][]byte{{0x0a, 0x00}}})
				c.Close()
				var te *Error
				if !errors.As(err, &te) || te.Kind != Permanent || te.Status != code {
					t.Fatalf("gzip %v: got %v, want a permanent failure with status %d", gzip, err, code)
				}
				if !strings.Contains(err.Error(), "not followed") || !strings.Contains(err.Error(), target.URL+"/v1/traces") {
					t.Errorf("the error should say where the redirect pointed: %v", err)
				}
				if strings.Contains(err.Error(), "abc") {
					t.Errorf("the error repeats the redirect's query: %v", err)
				}
			}
			if n := reached.Load(); n != 0 {
				t.Fatalf("the redirect target received %d requests (header %q)", n, leaked.Load())
			}
		})
	}
}

func TestEchoedHeaderValuesAreRedacted(t *testing.T) {
	const secret = "Basic dXNlcjpwYXNzd29yZA=="
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("bad credentials: " + r.Header.Get("Authorization") + strings.Repeat(" padding", 100)))
	}))
	defer srv.Close()
	c := NewHTTP(HTTPConfig{URL: srv.URL, Headers: map[string]string{"Authorization": secret}})
	defer c.Close()
	_, err := c.Send(context.Background(), &Body{})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	if strings.Contains(msg, "dXNlcjpw") || !strings.Contains(msg, "[REDACTED]") {
		t.Fatalf("the header value is not redacted: %q", msg)
	}
	if len(msg) > 400 {
		t.Fatalf("the logged body is not bounded: %d bytes", len(msg))
	}
}

// answer is a backend's answer, served without a network.
type answer struct {
	status  int
	reason  string
	header  http.Header
	body    []byte
	proto2  bool
	gotURL  string
	gotBody []byte
}

func (a *answer) RoundTrip(r *http.Request) (*http.Response, error) {
	a.gotURL = r.URL.String()
	if r.Body != nil {
		a.gotBody, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	resp := &http.Response{
		StatusCode: a.status, Status: strconv.Itoa(a.status) + " " + a.reason,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: a.header, Body: io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)), Request: r,
	}
	if a.proto2 {
		resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/2.0", 2, 0
	}
	return resp, nil
}

// A backend may echo a header value in its status line's reason phrase or
// in a redirect's Location: neither is put in the error as it came.
func TestEchoedHeaderValuesInTheStatusLineAndLocationAreRedacted(t *testing.T) {
	const secret = "s3cret-token-0123"
	for _, a := range []*answer{
		{status: http.StatusUnauthorized, reason: "bad key " + secret, header: http.Header{}},
		{status: http.StatusTemporaryRedirect, reason: "Temporary Redirect", header: http.Header{"Location": {"/" + secret}}},
	} {
		c := NewHTTP(HTTPConfig{URL: "http://collector.example:4318/v1/traces", Headers: map[string]string{"api-key": secret},
			Client: &http.Client{Transport: a}})
		_, err := c.Send(context.Background(), &Body{})
		c.Close()
		var te *Error
		if !errors.As(err, &te) || te.Kind != Permanent || te.Status != a.status {
			t.Fatalf("status %d: got %v, want a permanent failure", a.status, err)
		}
		if msg := err.Error(); strings.Contains(msg, secret) || !strings.Contains(msg, "[REDACTED]") {
			t.Errorf("status %d: the header value is not redacted: %q", a.status, msg)
		}
	}
}

func TestNotFoundNamesTheURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c := NewHTTP(HTTPConfig{URL: srv.URL + "/v1/traces/v1/traces"})
	defer c.Close()
	_, err := c.Send(context.Background(), &Body{})
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/v1/traces/v1/traces") {
		t.Fatalf("got %v, want the URL named", err)
	}
}

// refuse answers every Export with err (nil: accepts).
func refuse(err error) func(context.Context, *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	return func(context.Context, *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
		if err != nil {
			return nil, err
		}
		return &coltracepb.ExportTraceServiceResponse{}, nil
	}
}

func TestGRPCUntrustedCertificateIsPermanent(t *testing.T) {
	// A TLS server whose self-signed certificate the client does not trust.
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	ts.Close()
	addr := startGRPC(t, refuse(nil), grpc.Creds(credentials.NewServerTLSFromCert(&cert)))

	c, err := NewGRPC(GRPCConfig{Target: addr, TLS: &tls.Config{MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Send(context.Background(), &Body{})
	var te *Error
	if !errors.As(err, &te) || te.Kind != Permanent || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("got %v, want a permanent certificate failure", err)
	}
}

func TestGRPCResourceExhaustedIsPacedUnlessAboutSize(t *testing.T) {
	tests := []struct {
		msg   string
		paced bool
	}{
		{"grpc: received message larger than max (5000000 vs. 4194304)", false},
		{"quota exceeded", true},
	}
	for _, tc := range tests {
		addr := startGRPC(t, refuse(status.Error(codes.ResourceExhausted, tc.msg)))
		c, err := NewGRPC(GRPCConfig{Target: addr, Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Send(context.Background(), &Body{})
		c.Close()
		var te *Error
		if !errors.As(err, &te) || te.Kind != TooLarge || te.Paced != tc.paced || te.Code != "RESOURCE_EXHAUSTED" {
			t.Fatalf("%q: got %+v", tc.msg, te)
		}
	}
}

func TestCodeNames(t *testing.T) {
	for c, want := range map[codes.Code]string{
		codes.OK: "OK", codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.Unavailable: "UNAVAILABLE",
		codes.ResourceExhausted: "RESOURCE_EXHAUSTED", codes.Unauthenticated: "UNAUTHENTICATED",
	} {
		if got := codeName(c); got != want {
			t.Errorf("codeName(%v) = %q, want %q", c, got, want)
		}
	}
}

func TestHTTPSUsesHTTP2(t *testing.T) {
	var proto atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := NewHTTP(HTTPConfig{URL: srv.URL, TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	defer c.Close()
	if _, err := c.Send(context.Background(), &Body{}); err != nil {
		t.Fatal(err)
	}
	if got := proto.Load(); got != "HTTP/2.0" {
		t.Fatalf("request made over %v, want HTTP/2.0", got)
	}
}

func TestUnreceivedOnlyWhenTheRequestCertainlyWasNotTaken(t *testing.T) {
	answer := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
	}
	hangUp := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		_ = conn.Close()
	})
	tests := []struct {
		name       string
		h          http.Handler // nil: nothing listens
		unreceived bool
	}{
		{"connection refused", nil, true},
		{"503", answer(http.StatusServiceUnavailable), true},
		{"429", answer(http.StatusTooManyRequests), true},
		{"400", answer(http.StatusBadRequest), true},
		{"502 from a gateway", answer(http.StatusBadGateway), false},
		{"504 from a gateway", answer(http.StatusGatewayTimeout), false},
		{"connection lost with the request", hangUp, false},
	}
	for _, tc := range tests {
		url := "http://" + otlptest.RefusedAddr(t) + "/v1/traces"
		if tc.h != nil {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			url = srv.URL + "/v1/traces"
		}
		c := NewHTTP(HTTPConfig{URL: url})
		_, err := c.Send(context.Background(), &Body{Parts: [][]byte{{}}})
		c.Close()
		if err == nil || Unreceived(err) != tc.unreceived {
			t.Errorf("%s: Unreceived(%v) = %v, want %v", tc.name, err, !tc.unreceived, tc.unreceived)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Unreceived(&Error{Kind: Retryable, Err: ctx.Err()}) {
		t.Error("a cancelled attempt counts as unreceived")
	}
	for code, want := range map[codes.Code]bool{codes.ResourceExhausted: true, codes.Unavailable: false, codes.DeadlineExceeded: false} {
		if got := Unreceived(classifyGRPC(status.Error(code, "no"), strings.NewReplacer())); got != want {
			t.Errorf("gRPC %v: Unreceived = %v, want %v", code, got, want)
		}
	}
}
