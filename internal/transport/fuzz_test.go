package transport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fuzzSecrets are configured header values as credentials are written:
// a token, an Authorization value with a space, and one with obs-text.
var fuzzSecrets = []string{"s3cret-token-0123", "Basic dXNlcjpwYXNzd29yZA==", "tok\xffen-4567"}

// leaks reports whether out shows the secret: as it is, or, when the
// backend echoed it in one of in, as a message excerpt would print it.
func leaks(out, secret string, in ...string) bool {
	if strings.Contains(out, secret) {
		return true
	}
	for _, s := range in {
		if strings.Contains(s, secret) && strings.Contains(out, strings.ToValidUTF8(secret, "\uFFFD")) {
			return true
		}
	}
	return false
}

func fuzzMarshal(f *testing.F, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzHTTPResponse feeds the OTLP/HTTP client answers of any status,
// Retry-After, Content-Type, Location and body. Whatever they hold, Send
// must not panic; an accepted request reports the partial success the
// body holds, in the format its content type says, or a note about the
// body; a refusal is classified by its status alone; a retry delay is
// never negative, and is the one asked for (saturated, for a huge one);
// and no error nor message shows a configured header value, even when
// the backend echoes it.
func FuzzHTTPResponse(f *testing.F) {
	partial := fuzzMarshal(f, &coltracepb.ExportTraceServiceResponse{
		PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 3, ErrorMessage: "bad spans"},
	})
	echo := fuzzMarshal(f, &coltracepb.ExportTraceServiceResponse{
		PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: -1, ErrorMessage: "bad key s3cret-token-0123"},
	})
	st := fuzzMarshal(f, &spb.Status{Code: 3, Message: "invalid request"})
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		status                 uint16
		reason, retryAfter, ct string
		location               string
		body                   []byte
	}{
		{200, "OK", "", "", "", nil},
		{200, "OK", "", "application/x-protobuf", "", partial},
		{200, "OK", "", "application/json", "", []byte(`{"partialSuccess":{"rejectedSpans":"2","errorMessage":"x"}}`)},
		{200, "OK", "", "application/json", "", []byte(`{"partialSuccess":{"rejectedSpans":-9223372036854775808}}`)},
		{200, "OK", "", "", "", echo},
		{200, "OK", "", "", "", []byte{0xff, 0xff, 0xff}},
		{429, "Too Many Requests", "7", "", "", nil},
		{503, "Service Unavailable", " 10 ", "text/plain", "", []byte("slow down")},
		{503, "Service Unavailable", "-1", "", "", nil},
		{502, "Bad Gateway", date, "", "", nil},
		{504, "Gateway Timeout", "soon", "", "", nil},
		{413, "Request Entity Too Large", "", "", "", nil},
		{400, "Bad Request", "", "", "", st},
		{400, "Bad Request", "", "application/json", "", []byte(`{"code":3,"message":"unknown field"}`)},
		{401, "Unauthorized", "", "", "", []byte("bad credentials: Basic dXNlcjpwYXNzd29yZA==" + strings.Repeat(" padding", 30))},
		{500, "Internal Server Error", "", "", "", []byte("\x00oops\n")},
		{404, "Not Found", "", "", "", nil},
		{415, "Unsupported Media Type", "", "application/grpc", "", nil},
		{302, "Found", "", "", "https://other.example/v1/traces?token=abc", nil},
		{307, "Temporary Redirect", "", "", "/s3cret-token-0123", nil},
		{401, "s3cret-token-0123", "", "", "", nil},
	} {
		for _, secret := range []byte{0, 1} {
			f.Add(tc.status, tc.reason, tc.retryAfter, tc.ct, tc.location, tc.body, secret)
		}
	}
	f.Fuzz(func(t *testing.T, code uint16, reason, retryAfter, ct, location string, body []byte, which byte) {
		secret := fuzzSecrets[int(which)%len(fuzzSecrets)]
		sc := int(code)
		if sc < 100 || sc > 999 {
			sc = 100 + sc%900
		}
		a := &answer{status: sc, reason: reason, header: http.Header{}, body: body, proto2: which&0x80 != 0}
		for k, v := range map[string]string{"Retry-After": retryAfter, "Content-Type": ct, "Location": location} {
			if v != "" {
				a.header.Set(k, v)
			}
		}
		c := NewHTTP(HTTPConfig{URL: "http://collector.example:4318/v1/traces", Headers: map[string]string{"Authorization": secret},
			JSON: which&0x40 != 0, Client: &http.Client{Transport: a}})
		defer c.Close()
		spans := []byte{0x0a, 0x00} // one empty ResourceSpans
		before := time.Now()
		resp, err := c.Send(context.Background(), &Body{Parts: [][]byte{spans}})
		after := time.Now()
		if err == nil {
			if a.status < 200 || a.status >= 300 {
				t.Fatalf("status %d accepted: %+v", a.status, resp)
			}
			if resp.Status != a.status || resp.Code != strconv.Itoa(a.status) {
				t.Fatalf("status %d reported as %d %q", a.status, resp.Status, resp.Code)
			}
			// The rejected spans are what the body says, as it is: the
			// sender bounds them by the spans it sent.
			var msg coltracepb.ExportTraceServiceResponse
			var uerr error
			if strings.HasPrefix(ct, "application/json") {
				uerr = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, &msg)
			} else {
				uerr = proto.Unmarshal(body, &msg)
			}
			if uerr != nil && (resp.Rejected != 0 || !strings.Contains(resp.Message, "not an ExportTraceServiceResponse")) {
				t.Fatalf("an unreadable body gave %+v", resp)
			}
			if uerr == nil && resp.Rejected != msg.GetPartialSuccess().GetRejectedSpans() {
				t.Fatalf("rejected %d, the body says %d", resp.Rejected, msg.GetPartialSuccess().GetRejectedSpans())
			}
			if leaks(resp.Message, secret, string(body)) {
				t.Fatalf("the message shows the header value: %q", resp.Message)
			}
			return
		}
		var te *Error
		if !errors.As(err, &te) {
			t.Fatalf("got %T %v, want *Error", err, err)
		}
		if leaks(err.Error(), secret, reason, location, string(body)) {
			t.Fatalf("the error shows the header value: %q", err)
		}
		if te.Throttle < 0 {
			t.Fatalf("negative retry delay %v for Retry-After %q", te.Throttle, retryAfter)
		}
		if te.Status == 0 {
			// net/http refused the answer itself (a Location it cannot
			// parse): a failure without a status, retried.
			if te.Kind != Retryable || te.Throttle != 0 || a.status < 300 || a.status >= 400 {
				t.Fatalf("status %d: %+v", a.status, te)
			}
			return
		}
		if te.Status != a.status || te.Code != strconv.Itoa(a.status) {
			t.Fatalf("status %d reported as %d %q", a.status, te.Status, te.Code)
		}
		want := Permanent
		switch a.status {
		case 429, 502, 503, 504:
			want = Retryable
		case 413:
			want = TooLarge
		}
		if te.Kind != want {
			t.Fatalf("status %d: kind %v, want %v", a.status, te.Kind, want)
		}
		if want != Retryable {
			if te.Throttle != 0 {
				t.Fatalf("status %d: retry delay %v", a.status, te.Throttle)
			}
			return
		}
		v := a.header.Get("Retry-After")
		if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil || errors.Is(err, strconv.ErrRange) {
			wantD := time.Duration(0)
			switch {
			case secs > int(math.MaxInt64/time.Second):
				wantD = math.MaxInt64
			case secs > 0:
				wantD = time.Duration(secs) * time.Second
			}
			if te.Throttle != wantD {
				t.Fatalf("Retry-After %q: delay %v, want %v", v, te.Throttle, wantD)
			}
		} else if when, err := http.ParseTime(v); err == nil {
			// The delay until the date, as of some time during Send.
			if hi, lo := max(when.Sub(before), 0), max(when.Sub(after), 0); te.Throttle > hi || te.Throttle < lo {
				t.Fatalf("Retry-After %q: delay %v, want within [%v, %v]", v, te.Throttle, lo, hi)
			}
		} else if te.Throttle != 0 {
			t.Fatalf("Retry-After %q: delay %v, want none", v, te.Throttle)
		}
	})
}

// FuzzGRPCStatus classifies any gRPC status, with any details
// (google.rpc.Status as the grpc-status-details-bin trailer carries it),
// as the gRPC client would return it. It must not panic; the code is
// reported as it came; a retry delay is never negative and is the last
// RetryInfo's, none without; and the error never shows a configured
// header value that the message echoes.
func FuzzGRPCStatus(f *testing.F) {
	withRetry := func(c codes.Code, msg string, d *durationpb.Duration) []byte {
		ri, err := anypb.New(&errdetails.RetryInfo{RetryDelay: d})
		if err != nil {
			f.Fatal(err)
		}
		return fuzzMarshal(f, &spb.Status{Code: int32(c), Message: msg, Details: []*anypb.Any{ri}})
	}
	for _, s := range [][]byte{
		nil,
		fuzzMarshal(f, &spb.Status{Code: int32(codes.Unavailable), Message: "x"}),
		withRetry(codes.Unavailable, "slow down", durationpb.New(3*time.Second)),
		withRetry(codes.ResourceExhausted, "slow down", durationpb.New(2*time.Second)),
		withRetry(codes.ResourceExhausted, "quota", &durationpb.Duration{Seconds: 1, Nanos: -5}),
		withRetry(codes.Unavailable, "x", &durationpb.Duration{Seconds: math.MaxInt64}),
		fuzzMarshal(f, &spb.Status{Code: int32(codes.ResourceExhausted), Message: "grpc: received message larger than max (5000000 vs. 4194304)"}),
		fuzzMarshal(f, &spb.Status{Code: int32(codes.ResourceExhausted), Message: "quota exceeded"}),
		fuzzMarshal(f, &spb.Status{Code: int32(codes.Unauthenticated), Message: "bad key s3cret-token-0123"}),
		fuzzMarshal(f, &spb.Status{Code: int32(codes.Unavailable), Message: "connection error: desc = \"transport: authentication handshake failed: tls: first record does not look like a TLS handshake\""}),
		fuzzMarshal(f, &spb.Status{Code: int32(codes.Unimplemented), Message: "unexpected HTTP status code received from server: 404 (Not Found)"}),
		fuzzMarshal(f, &spb.Status{Code: 99, Message: "\x00\u00ff\t"}),
	} {
		f.Add(s, byte(0))
		f.Add(s, byte(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, which byte) {
		secret := fuzzSecrets[int(which)%len(fuzzSecrets)]
		var p spb.Status
		if proto.Unmarshal(data, &p) != nil {
			return // gRPC drops details it cannot read
		}
		err := status.FromProto(&p).Err()
		if err == nil {
			return // OK: not a failure
		}
		e := classifyGRPC(err, Redactor(map[string]string{"authorization": secret}))
		if e.Status != int(codes.Code(p.GetCode())) || e.Code != codeName(codes.Code(p.GetCode())) || e.Err == nil {
			t.Fatalf("code %d reported as %d %q (%v)", p.GetCode(), e.Status, e.Code, e.Err)
		}
		var want time.Duration
		retryInfo := false
		for _, d := range p.GetDetails() {
			var ri errdetails.RetryInfo
			if d.MessageIs(&ri) && d.UnmarshalTo(&ri) == nil {
				retryInfo = true
				want = max(ri.GetRetryDelay().AsDuration(), 0)
			}
		}
		if e.Throttle != want {
			t.Fatalf("retry delay %v, want %v (details %v)", e.Throttle, want, p.GetDetails())
		}
		if e.Paced && e.Kind != TooLarge {
			t.Fatalf("paced %v failure", e.Kind)
		}
		if codes.Code(p.GetCode()) == codes.ResourceExhausted && e.Kind == TooLarge && retryInfo {
			t.Fatal("RESOURCE_EXHAUSTED with RetryInfo taken for too large")
		}
		if leaks(e.Error(), secret, p.GetMessage()) {
			t.Fatalf("the error shows the header value: %q", e.Error())
		}
		_ = fmt.Sprint(e.Type(), Unreceived(e))
	})
}
