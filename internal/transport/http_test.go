package transport

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHTTPSendClassifies(t *testing.T) {
	partial := mustMarshal(t, &coltracepb.ExportTraceServiceResponse{
		PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 3, ErrorMessage: "bad spans"},
	})
	status := mustMarshal(t, &spb.Status{Code: 3, Message: "invalid request"})
	tests := []struct {
		name       string
		code       int
		header     map[string]string
		body       []byte
		wantErr    bool
		kind       Kind
		throttle   time.Duration
		rejected   int64
		msgContain string
	}{
		{name: "ok empty", code: 200},
		{name: "ok partial", code: 200, body: partial, rejected: 3, msgContain: "bad spans"},
		{name: "ok garbage", code: 200, body: []byte{0xff, 0xff, 0xff}, msgContain: "not an ExportTraceServiceResponse"},
		{name: "429 retry-after", code: 429, header: map[string]string{"Retry-After": "7"}, wantErr: true, kind: Retryable, throttle: 7 * time.Second},
		{name: "502", code: 502, wantErr: true, kind: Retryable},
		{name: "503", code: 503, wantErr: true, kind: Retryable},
		{name: "504", code: 504, wantErr: true, kind: Retryable},
		{name: "413", code: 413, wantErr: true, kind: TooLarge},
		{name: "400 status", code: 400, body: status, wantErr: true, kind: Permanent, msgContain: "invalid request"},
		{name: "401", code: 401, wantErr: true, kind: Permanent},
		{name: "500 garbage", code: 500, body: []byte("\x00oops\n"), wantErr: true, kind: Permanent, msgContain: "oops"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.code)
				_, _ = w.Write(tc.body)
			}))
			defer srv.Close()
			c := NewHTTP(HTTPConfig{URL: srv.URL + "/v1/traces"})
			defer c.Close()
			resp, err := c.Send(context.Background(), &Body{})
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if resp.Rejected != tc.rejected || resp.Status != tc.code {
					t.Fatalf("got %+v", resp)
				}
				if !contains(resp.Message, tc.msgContain) {
					t.Fatalf("message %q does not contain %q", resp.Message, tc.msgContain)
				}
				return
			}
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("got %v, want *Error", err)
			}
			if te.Kind != tc.kind || te.Status != tc.code || te.Throttle != tc.throttle {
				t.Fatalf("got kind %v status %d throttle %v, want %v %d %v", te.Kind, te.Status, te.Throttle, tc.kind, tc.code, tc.throttle)
			}
			if !contains(te.Error(), tc.msgContain) {
				t.Fatalf("error %q does not contain %q", te.Error(), tc.msgContain)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestHTTPSendsHeadersAndGzip(t *testing.T) {
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			rd = zr
		}
		b, _ := io.ReadAll(rd)
		got <- r
		bodies <- b
	}))
	defer srv.Close()
	c := NewHTTP(HTTPConfig{URL: srv.URL + "/custom", Headers: map[string]string{"api-key": "secret"}, Gzip: true, UserAgent: "ua/1"})
	defer c.Close()
	if _, err := c.Send(context.Background(), &Body{Parts: [][]byte{[]byte("pay"), []byte("load")}}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.URL.Path != "/custom" || r.Method != http.MethodPost {
		t.Errorf("got %s %s", r.Method, r.URL.Path)
	}
	for k, want := range map[string]string{"Api-Key": "secret", "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "User-Agent": "ua/1"} {
		if v := r.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if b := <-bodies; string(b) != "payload" {
		t.Errorf("body %q", b)
	}
}

func TestHTTPSendsPartsConcatenated(t *testing.T) {
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.ContentLength != int64(len(b)) {
			t.Errorf("Content-Length %d for %d bytes", r.ContentLength, len(b))
		}
		bodies <- b
	}))
	defer srv.Close()
	c := NewHTTP(HTTPConfig{URL: srv.URL})
	defer c.Close()
	parts := [][]byte{[]byte("ab"), nil, []byte("cde")}
	for attempt := range 2 { // a retry sends the same parts again
		if _, err := c.Send(context.Background(), &Body{Parts: parts}); err != nil {
			t.Fatal(err)
		}
		if b := <-bodies; string(b) != "abcde" {
			t.Fatalf("attempt %d: body %q", attempt, b)
		}
	}
	if string(parts[0]) != "ab" || string(parts[2]) != "cde" {
		t.Fatalf("Send modified its parts: %q", parts)
	}
}

func TestHTTPConnectionErrorsAreRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := NewHTTP(HTTPConfig{URL: "http://" + addr + "/v1/traces", Headers: map[string]string{"authorization": "Bearer s3cret"}})
	defer c.Close()
	_, err = c.Send(context.Background(), &Body{Parts: [][]byte{[]byte("x")}})
	var te *Error
	if !errors.As(err, &te) || te.Kind != Retryable {
		t.Fatalf("got %v, want a retryable *Error", err)
	}
	if contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks a header value: %v", err)
	}
	if contains(err.Error(), "/v1/traces") {
		t.Fatalf("error repeats the request URL: %v", err)
	}
}

func TestHTTPTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := NewHTTP(HTTPConfig{URL: srv.URL})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, &Body{Parts: [][]byte{[]byte("x")}})
	var te *Error
	if !errors.As(err, &te) || te.Kind != Retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a retryable deadline error", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 10 ", 10 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		// Past what a Duration holds: the longest delay, not a wrapped one.
		{"9999999999", math.MaxInt64},
		{"9223372036854775807", math.MaxInt64},
		{"99999999999999999999", math.MaxInt64},
		{"-99999999999999999999", 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestExtendKeepsOneGzipStream(t *testing.T) {
	c := NewHTTP(HTTPConfig{URL: "http://127.0.0.1:1/v1/traces", Gzip: true})
	defer c.Close()
	if err := (&Body{Parts: [][]byte{[]byte("a")}}).Extend(nil); err == nil {
		t.Fatal("extending an uncompressed body: no error")
	}
	first, more := sampleRequest(t), [][]byte{sampleRequest(t), sampleRequest(t)}
	b := &Body{Parts: [][]byte{first}}
	if done, err := c.Compress(b); !done || err != nil {
		t.Fatalf("Compress: %v, %v", done, err)
	}
	b.Parts = nil
	if err := b.Extend(more); err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	src := bytes.NewReader(b.gz.buf.Bytes())
	zr, err := gzip.NewReader(src)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 0 {
		t.Fatalf("%d bytes after the first gzip member", src.Len())
	}
	want := bytes.Join([][]byte{first, more[0], more[1]}, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("extended body is %d bytes, want the %d of the request and its new parts", len(got), len(want))
	}
}

// A timeout or a cancellation before the request had a connection sent
// nothing: the backend cannot have received it. One after it may have.
func TestHTTPFailureBeforeAConnectionIsUnreceived(t *testing.T) {
	hold := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-hold
	}))
	defer srv.Close()
	defer close(hold)
	c := NewHTTP(HTTPConfig{URL: srv.URL})
	defer c.Close()
	body := func() *Body { return &Body{Parts: [][]byte{[]byte("x")}} }

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Send(cancelled, body())
	if err == nil || !Unreceived(err) {
		t.Fatalf("cancelled before the attempt: %v, want it unreceived", err)
	}

	// The handler holds the request: the cancellation comes once it was
	// sent on its connection.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	_, err = c.Send(ctx, body())
	if err == nil || Unreceived(err) {
		t.Fatalf("cancelled with the request on the backend: %v, want it possibly received", err)
	}
}
