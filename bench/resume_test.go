package bench_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// resumeOutage is how long the backend is down in BenchmarkResumeAfterOutage.
const resumeOutage = 2 * time.Second

// BenchmarkResumeAfterOutage measures how long delivery takes to resume
// once a backend that was down for resumeOutage is back: the time from
// the restarted receiver's first accept to its first request, while the
// program keeps exporting a span every 20 ms. It reports resume-ms (the
// mean) and worst-ms. grpc-default-backoff restores gRPC's own connect
// backoff (1s growing ×1.6 to 2 min) through WithDialOption instead of
// the exporter's (100 ms growing to 1 s): what keeps both prompt is that a
// failed call makes a connection in backoff try again at once.
func BenchmarkResumeAfterOutage(b *testing.B) {
	for _, tc := range []struct {
		name string
		grpc bool
		opts []exporter.Option
	}{
		{"http", false, []exporter.Option{exporter.WithProtocol(exporter.ProtocolHTTPProtobuf)}},
		{"grpc", true, []exporter.Option{exporter.WithProtocol(exporter.ProtocolGRPC)}},
		{"grpc-default-backoff", true, []exporter.Option{exporter.WithProtocol(exporter.ProtocolGRPC),
			exporter.WithDialOption(grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: 20 * time.Second}))}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var total, worst time.Duration
			for range b.N {
				d := resumeOnce(b, tc.grpc, tc.opts)
				total += d
				worst = max(worst, d)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "resume-ms")
			b.ReportMetric(float64(worst.Milliseconds()), "worst-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// flakyReceiver is an OTLP receiver, HTTP or gRPC, that can be stopped
// and restarted on the same address.
type flakyReceiver struct {
	grpc bool
	addr string

	mu    sync.Mutex
	first chan struct{} // closed at the first request since start
	stop  func()
}

func (r *flakyReceiver) got() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.first:
	default:
		close(r.first)
	}
}

func (r *flakyReceiver) Export(context.Context, *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.got()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// start listens on the receiver's address (a free one the first time)
// and returns the channel closed at the first request.
func (r *flakyReceiver) start(b *testing.B) <-chan struct{} {
	b.Helper()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 100 { // the port may linger a moment after the stop
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		b.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.mu.Lock()
	r.first = make(chan struct{})
	first := r.first
	r.mu.Unlock()
	if r.grpc {
		srv := grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(srv, traceService{r: r})
		go func() { _ = srv.Serve(ln) }()
		r.stop = srv.Stop
	} else {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { r.got() }), ReadHeaderTimeout: time.Second}
		go func() { _ = srv.Serve(ln) }()
		r.stop = func() { _ = srv.Close() }
	}
	return first
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *flakyReceiver
}

func (s traceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	return s.r.Export(ctx, req)
}

func resumeOnce(b *testing.B, grpcProto bool, opts []exporter.Option) time.Duration {
	b.Helper()
	r := &flakyReceiver{grpc: grpcProto}
	up := r.start(b)
	exp := exporter.New(append(opts, exporter.WithEndpoint(r.addr), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()))...)
	span := tracetest.SpanStub{Name: "op"}.Snapshot()
	stop, fed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(fed)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = exp.ExportSpans(context.Background(), []sdktrace.ReadOnlySpan{span})
			}
		}
	}()
	wait := func(ch <-chan struct{}) {
		select {
		case <-ch:
		case <-time.After(time.Minute):
			b.Fatal("no delivery within a minute")
		}
	}
	wait(up)
	r.stop()
	time.Sleep(resumeOutage)
	back := r.start(b)
	t0 := time.Now()
	wait(back)
	d := time.Since(t0)
	close(stop)
	<-fed
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = exp.Shutdown(ctx)
	r.stop()
	return d
}
