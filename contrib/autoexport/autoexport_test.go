package autoexport_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	tkautoexport "github.com/tracekeeper/tracekeeper/contrib/autoexport"
	"github.com/tracekeeper/tracekeeper/exporter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// receiver keeps the content type and span count of every request.
type receiver struct {
	mu    sync.Mutex
	types []string
	spans int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var msg coltracepb.ExportTraceServiceRequest
	n := 0
	if req.Header.Get("Content-Type") == "application/x-protobuf" && proto.Unmarshal(body, &msg) == nil {
		for _, rs := range msg.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				n += len(ss.Spans)
			}
		}
	}
	r.mu.Lock()
	r.types = append(r.types, req.Header.Get("Content-Type"))
	r.spans += n
	r.mu.Unlock()
}

func TestSelectedByEnvironment(t *testing.T) {
	for _, tc := range []struct {
		protocol, contentType string
	}{
		{"http/protobuf", "application/x-protobuf"},
		{"http/json", "application/json"},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			rcv := &receiver{}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			t.Setenv("OTEL_TRACES_EXPORTER", tkautoexport.Name)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.protocol)

			exp, err := autoexport.NewSpanExporter(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ours, ok := exp.(*exporter.Exporter)
			if !ok {
				t.Fatalf("OTEL_TRACES_EXPORTER=tracekeeper gave a %T", exp)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
			for range 10 {
				_, s := tp.Tracer("t").Start(context.Background(), "op")
				s.End()
			}
			if err := tp.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if s := ours.Stats(); s.Exported != 10 {
				t.Fatalf("stats %+v", s)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.types) != 1 || rcv.types[0] != tc.contentType {
				t.Fatalf("requests with content types %v, want one %s", rcv.types, tc.contentType)
			}
			if tc.protocol == "http/protobuf" && rcv.spans != 10 {
				t.Fatalf("received %d spans", rcv.spans)
			}
		})
	}
}

func TestTheNameIsTaken(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering tracekeeper again did not panic: the blank import did not register it")
		}
	}()
	autoexport.RegisterSpanExporter(tkautoexport.Name, func(context.Context) (sdktrace.SpanExporter, error) { return nil, nil })
}
