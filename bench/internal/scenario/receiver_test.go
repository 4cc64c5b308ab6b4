package scenario

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// post sends body to the receiver and returns the status code.
func post(t *testing.T, c *http.Client, r *Receiver, path string, body []byte, header map[string]string) (int, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+r.Addr()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReceiver(t *testing.T) {
	three := request(t, []int{2, 1})
	tests := []struct {
		name     string
		decode   bool
		mode     Mode
		path     string
		body     []byte
		header   map[string]string
		wantCode int
		want     ReceiverStats
	}{
		{"counts spans", false, Available, TracesPath, three, nil, http.StatusOK,
			ReceiverStats{Spans: 3, Requests: 1, Bytes: int64(len(three))}},
		{"decodes spans", true, Available, TracesPath, three, nil, http.StatusOK,
			ReceiverStats{Spans: 3, Requests: 1, Bytes: int64(len(three))}},
		{"gzip body", false, Available, TracesPath, gzipped(t, three), map[string]string{"Content-Encoding": "gzip"}, http.StatusOK,
			ReceiverStats{Spans: 3, Requests: 1, Bytes: int64(len(gzipped(t, three)))}},
		{"unavailable", false, Unavailable, TracesPath, three, nil, http.StatusServiceUnavailable,
			ReceiverStats{Failed: 1}},
		{"malformed", false, Available, TracesPath, []byte{0x0a, 0x09}, nil, http.StatusBadRequest,
			ReceiverStats{Failed: 1, Malformed: 1}},
		{"malformed for the decoder", true, Available, TracesPath, []byte{0x0a, 0x02, 0x0a, 0x05}, nil, http.StatusBadRequest,
			ReceiverStats{Failed: 1, Malformed: 1}},
		{"unknown encoding", false, Available, TracesPath, three, map[string]string{"Content-Encoding": "br"}, http.StatusBadRequest,
			ReceiverStats{Failed: 1, Malformed: 1}},
		{"wrong path", false, Available, "/v1/logs", three, nil, http.StatusNotFound, ReceiverStats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReceiver(ReceiverConfig{Decode: tt.decode})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.SetMode(tt.mode); err != nil {
				t.Fatal(err)
			}
			// Leaving the outage marks the time of recovery; these cases
			// look at the counters only.
			code, err := post(t, newClient(t), r, tt.path, tt.body, tt.header)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("status %d, want %d", code, tt.wantCode)
			}
			got := r.Stats()
			got.Resumed = 0
			if tt.want.Requests > 0 {
				tt.want.PeakConcurrent = 1
			}
			if got != tt.want {
				t.Errorf("stats %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReceiverRefusesAndRecovers(t *testing.T) {
	r, err := NewReceiver(ReceiverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := newClient(t)
	body := request(t, []int{4})
	// A kept-alive connection exists before the outage: it must be closed
	// too, or the client would keep delivering through it.
	if code, err := post(t, c, r, TracesPath, body, nil); err != nil || code != http.StatusOK {
		t.Fatalf("before the outage: %d, %v", code, err)
	}
	if err := r.SetMode(Refusing); err != nil {
		t.Fatal(err)
	}
	// The first attempt may go out on the kept-alive connection just
	// closed and fail with EOF; the next must dial and be refused.
	if _, err := post(t, c, r, TracesPath, body, nil); err == nil {
		t.Fatal("during the outage: a request succeeded")
	}
	if _, err := post(t, c, r, TracesPath, body, nil); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("during the outage: error %v, want connection refused", err)
	}
	if got := r.Stats().Resumed; got != 0 {
		t.Errorf("Resumed = %v before any recovery, want 0", got)
	}
	if err := r.SetMode(Available); err != nil {
		t.Fatal(err)
	}
	if got := r.Stats().Resumed; got >= 0 {
		t.Errorf("Resumed = %v before any success after the recovery, want negative", got)
	}
	if code, err := post(t, c, r, TracesPath, body, nil); err != nil || code != http.StatusOK {
		t.Fatalf("after the outage: %d, %v", code, err)
	}
	st := r.Stats()
	if st.Spans != 8 || st.Requests != 2 || st.Resumed < 0 {
		t.Errorf("stats %+v, want 8 spans in 2 requests and a resumption", st)
	}
}

func TestReceiverLatency(t *testing.T) {
	clock := clockwork.NewFakeClock()
	r, err := NewReceiver(ReceiverConfig{Latency: 20 * time.Millisecond, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := newClient(t)
	done := make(chan int, 1)
	go func() {
		code, err := post(t, c, r, TracesPath, request(t, []int{1}), nil)
		if err != nil {
			code = -1
		}
		done <- code
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the answer never waited on the clock: %v", err)
	}
	if got := r.Stats().Spans; got != 0 {
		t.Fatalf("%d spans counted before the latency elapsed", got)
	}
	clock.Advance(20 * time.Millisecond)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	if got := r.Stats().Spans; got != 1 {
		t.Errorf("%d spans counted, want 1", got)
	}
}

func TestReceiverClosed(t *testing.T) {
	r, err := NewReceiver(ReceiverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := r.SetMode(Unavailable); err == nil {
		t.Error("SetMode after Close succeeded")
	}
}

func TestReceiverMaxConcurrent(t *testing.T) {
	clock := clockwork.NewFakeClock()
	r, err := NewReceiver(ReceiverConfig{Latency: 20 * time.Millisecond, MaxConcurrent: 1, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := newClient(t)
	body := request(t, []int{2})
	done := make(chan int, 1)
	go func() {
		code, err := post(t, c, r, TracesPath, body, nil)
		if err != nil {
			code = -1
		}
		done <- code
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the first answer never waited on the clock: %v", err)
	}
	// The only place is taken: the second request is refused at once.
	if code, err := post(t, c, r, TracesPath, body, nil); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("second request: %d, %v; want 503", code, err)
	}
	clock.Advance(20 * time.Millisecond)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("first request: status %d, want 200", code)
	}
	// The place is free again: a third request is served.
	go func() {
		code, err := post(t, c, r, TracesPath, body, nil)
		if err != nil {
			code = -1
		}
		done <- code
	}()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the third answer never waited on the clock: %v", err)
	}
	clock.Advance(20 * time.Millisecond)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("third request: status %d, want 200", code)
	}
	st := r.Stats()
	want := ReceiverStats{Spans: 4, Requests: 2, Failed: 1, Refused: 1, PeakConcurrent: 1, Bytes: 2 * int64(len(body))}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestReceiverH2C(t *testing.T) {
	r, err := NewReceiver(ReceiverConfig{H2C: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	body := request(t, []int{2})
	resp, err := h2cClient().Post("http://"+r.Addr()+TracesPath, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || r.Stats().Spans != 2 {
		t.Fatalf("%s %d, %+v", resp.Proto, resp.StatusCode, r.Stats())
	}
}
