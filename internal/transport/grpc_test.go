package transport

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

type traceServer struct {
	coltracepb.UnimplementedTraceServiceServer
	export func(context.Context, *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error)
}

func (s *traceServer) Export(ctx context.Context, r *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	return s.export(ctx, r)
}

func startGRPC(t *testing.T, export func(context.Context, *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error), opts ...grpc.ServerOption) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	coltracepb.RegisterTraceServiceServer(srv, &traceServer{export: export})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func TestGRPCSendsRequestMetadataAndGzip(t *testing.T) {
	want := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Name: strings.Repeat("a", 1000), TraceId: make([]byte, 16), SpanId: make([]byte, 8)}}}},
	}}}
	body, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		req *coltracepb.ExportTraceServiceRequest
		md  metadata.MD
	}
	got := make(chan seen, 1)
	payloads := make(chan *stats.InPayload, 1)
	observe := grpc.StatsHandler(payloadHandler(payloads))
	addr := startGRPC(t, func(ctx context.Context, r *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got <- seen{r, md}
		return &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 1, ErrorMessage: "nope"}}, nil
	}, observe)
	c, err := NewGRPC(GRPCConfig{Target: addr, Insecure: true, Gzip: true, Headers: map[string]string{"api-key": "k"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Send(context.Background(), &Body{Parts: [][]byte{body[:7], body[7:]}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rejected != 1 || resp.Message != "nope" {
		t.Fatalf("response %+v", resp)
	}
	s := <-got
	if !proto.Equal(s.req, want) {
		t.Fatalf("server got %v", s.req)
	}
	if v := s.md.Get("api-key"); len(v) != 1 || v[0] != "k" {
		t.Fatalf("metadata %v", s.md)
	}
	// The span name compresses well: a compressed request is much smaller
	// on the wire than decoded.
	if p := <-payloads; p.CompressedLength >= p.Length {
		t.Fatalf("request not compressed: %d bytes on the wire for %d decoded", p.CompressedLength, p.Length)
	}
}

func TestGRPCClassifies(t *testing.T) {
	withRetryInfo := func(c codes.Code, d time.Duration) error {
		st, err := status.New(c, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, tc := range []struct {
		name     string
		err      error
		kind     Kind
		throttle time.Duration
	}{
		{"unavailable", status.Error(codes.Unavailable, "x"), Retryable, 0},
		{"unavailable with retry info", withRetryInfo(codes.Unavailable, 3*time.Second), Retryable, 3 * time.Second},
		{"deadline", status.Error(codes.DeadlineExceeded, "x"), Retryable, 0},
		{"aborted", status.Error(codes.Aborted, "x"), Retryable, 0},
		{"out of range", status.Error(codes.OutOfRange, "x"), Retryable, 0},
		{"data loss", status.Error(codes.DataLoss, "x"), Retryable, 0},
		{"exhausted with retry info", withRetryInfo(codes.ResourceExhausted, 2*time.Second), Retryable, 2 * time.Second},
		{"exhausted without retry info", status.Error(codes.ResourceExhausted, "too big"), TooLarge, 0},
		{"invalid argument", status.Error(codes.InvalidArgument, "x"), Permanent, 0},
		{"unauthenticated", status.Error(codes.Unauthenticated, "x"), Permanent, 0},
		{"internal", status.Error(codes.Internal, "x"), Permanent, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startGRPC(t, func(context.Context, *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
				return nil, tc.err
			})
			c, err := NewGRPC(GRPCConfig{Target: addr, Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Send(context.Background(), &Body{})
			var te *Error
			if !errors.As(err, &te) || te.Kind != tc.kind || te.Throttle != tc.throttle {
				t.Fatalf("got %v (%+v), want kind %v throttle %v", err, te, tc.kind, tc.throttle)
			}
		})
	}
}

func TestGRPCUnreachableIsRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := NewGRPC(GRPCConfig{Target: addr, Insecure: true, Headers: map[string]string{"authorization": "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Send(context.Background(), &Body{})
	var te *Error
	if !errors.As(err, &te) || te.Kind != Retryable {
		t.Fatalf("got %v, want retryable", err)
	}
	if contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks a header value: %v", err)
	}
}

// payloadHandler reports the server's view of each request payload.
type payloadHandler chan *stats.InPayload

func (h payloadHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (h payloadHandler) HandleRPC(_ context.Context, s stats.RPCStats) {
	if p, ok := s.(*stats.InPayload); ok {
		select {
		case h <- p:
		default:
		}
	}
}
func (h payloadHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (h payloadHandler) HandleConn(context.Context, stats.ConnStats) {}

// A RetryInfo delay below zero asks for no delay: the throttle is never
// negative.
func TestGRPCNegativeRetryInfoIsNoDelay(t *testing.T) {
	for _, d := range []*durationpb.Duration{{Seconds: -3}, {Nanos: -1}, {Seconds: math.MinInt64}} {
		st, err := status.New(codes.Unavailable, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: d})
		if err != nil {
			t.Fatal(err)
		}
		if e := classifyGRPC(st.Err(), Redactor(nil)); e.Kind != Retryable || e.Throttle != 0 {
			t.Errorf("RetryInfo %v: kind %v, throttle %v; want retryable, no delay", d, e.Kind, e.Throttle)
		}
	}
}
