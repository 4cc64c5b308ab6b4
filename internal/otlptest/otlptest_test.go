package otlptest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a testing.TB that keeps what a helper reports instead of
// failing the test; Fatalf ends the goroutine, as testing's does.
type recorder struct {
	testing.TB
	errors []string
	fatal  bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.fatal = true
	runtime.Goexit()
}

// reported runs f with a recorder on a goroutine of its own and returns
// what f reported.
func reported(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// export sends spans through the exporter to a fresh receiver and returns
// the receiver once they have all arrived.
func export(t *testing.T, spans []sdktrace.ReadOnlySpan, opts ...exporter.Option) *otlptest.HTTP {
	t.Helper()
	rcv := otlptest.NewHTTP(t, nil)
	exp := exporter.New(append([]exporter.Option{exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(),
		exporter.WithLogger(zap.NewNop())}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exp.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rcv.Spans(); got != len(spans) {
		t.Fatalf("the receiver accepted %d spans, want %d", got, len(spans))
	}
	return rcv
}

// fixtures are spans that use every attribute type, events and a link.
func fixtures() []sdktrace.ReadOnlySpan {
	spans := otlptest.Spans(10)
	for i, s := range spans {
		stub := tracetest.SpanStubFromReadOnlySpan(s)
		stub.Attributes = append(stub.Attributes, otlptest.AllTypes(i)...)
		stub.Events = []sdktrace.Event{{Name: "retry", Time: time.Unix(100, 5), Attributes: otlptest.AllTypes(i)}}
		stub.Links = []sdktrace.Link{{SpanContext: spans[(i+1)%len(spans)].SpanContext()}}
		spans[i] = stub.Snapshot()
	}
	return spans
}

func TestCompareSpansAcceptsWhatTheExporterSent(t *testing.T) {
	for _, comp := range []exporter.Compression{exporter.NoCompression, exporter.GzipCompression} {
		t.Run(comp.String(), func(t *testing.T) {
			want := fixtures()
			rcv := export(t, want, exporter.WithCompression(comp))
			otlptest.CompareSpans(t, want, otlptest.FromRequests(t, rcv.Accepted()))

			reqs := rcv.Received()
			if len(reqs) == 0 {
				t.Fatal("no request recorded")
			}
			for _, r := range reqs {
				if r.Method != http.MethodPost || r.Path != "/v1/traces" || r.ContentType != "application/x-protobuf" ||
					r.Gzipped != (comp == exporter.GzipCompression) {
					t.Errorf("request recorded as %s %s %q gzipped=%v", r.Method, r.Path, r.ContentType, r.Gzipped)
				}
				if err := proto.Unmarshal(r.Body, &coltracepb.ExportTraceServiceRequest{}); err != nil {
					t.Errorf("the recorded body is not the decompressed request: %v", err)
				}
			}
			if rcv.Requests() != len(reqs) || rcv.Unreadable() != 0 {
				t.Errorf("Requests %d, Unreadable %d, %d recorded", rcv.Requests(), rcv.Unreadable(), len(reqs))
			}
		})
	}
}

func TestCompareSpansFindsAChangedAttribute(t *testing.T) {
	want := fixtures()
	rcv := export(t, want)
	accepted := rcv.Accepted()
	changed := accepted[0].ResourceSpans[0].ScopeSpans[0].Spans[3]
	for _, kv := range changed.Attributes {
		if kv.Key == "int" {
			// The same number, sent as a string.
			kv.Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "3"}}
		}
	}
	got := otlptest.FromRequests(t, accepted)
	r := reported(t, func(tb testing.TB) { otlptest.CompareSpans(tb, want, got) })
	id := otlptest.Expect(want[3]).SpanID
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], id) || !strings.Contains(r.errors[0], "Attributes:") ||
		!strings.Contains(r.errors[0], `int=string:"3"`) || strings.Contains(r.errors[0], "Name:") {
		t.Fatalf("want one report of span %s naming the attribute, got %q", id, r.errors)
	}
	if d := otlptest.DiffSpans(otlptest.Expect(want[3]), got[id]); !strings.HasPrefix(d, "  Attributes:\n") {
		t.Errorf("DiffSpans = %q", d)
	}
	if d := otlptest.DiffSpans(otlptest.Expect(want[2]), got[otlptest.Expect(want[2]).SpanID]); d != "" {
		t.Errorf("DiffSpans of equal spans = %q", d)
	}
}

func TestCompareSpansFindsMissingExtraAndDuplicateSpans(t *testing.T) {
	want := fixtures()
	rcv := export(t, want)
	got := otlptest.FromRequests(t, rcv.Accepted())

	r := reported(t, func(tb testing.TB) { otlptest.CompareSpans(tb, want[1:], got) })
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "arrived but was not expected") {
		t.Errorf("an unexpected span: got %q", r.errors)
	}
	delete(got, otlptest.Expect(want[0]).SpanID)
	r = reported(t, func(tb testing.TB) { otlptest.CompareSpans(tb, want, got) })
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "never arrived") {
		t.Errorf("a missing span: got %q", r.errors)
	}
	r = reported(t, func(tb testing.TB) { otlptest.CompareSpans(tb, want, map[string]otlptest.WireSpan{}) })
	if !r.fatal || len(r.errors) != 6 {
		t.Errorf("nothing arrived: want five reports and a stop, got %q", r.errors)
	}
	twice := append(rcv.Accepted(), rcv.Accepted()[0])
	r = reported(t, func(tb testing.TB) { otlptest.FromRequests(tb, twice) })
	if len(r.errors) == 0 || !strings.Contains(r.errors[0], "delivered more than once") {
		t.Errorf("a span delivered twice: got %q", r.errors)
	}
}

func TestHTTPScriptsWaitsAndHolds(t *testing.T) {
	var rcv *otlptest.HTTP
	rcv = otlptest.NewHTTP(t, func(n int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			rcv.Hold(w, r)
			return true
		}
		return !rcv.Wait(r)
	})
	post := func() chan int {
		code := make(chan int, 1)
		go func() {
			resp, err := http.Post(rcv.URL(), "application/x-protobuf", strings.NewReader(""))
			if err != nil {
				t.Error(err)
				code <- 0
				return
			}
			_ = resp.Body.Close()
			code <- resp.StatusCode
		}()
		return code
	}
	first := post()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rcv.WaitRequests(ctx, 1); err != nil {
		t.Fatal(err)
	}
	second := post()
	if err := rcv.WaitRequests(ctx, 2); err != nil {
		t.Fatal(err)
	}
	rcv.Unblock()
	// Held, then answered 503; waited, then accepted (an empty body is an
	// empty request).
	if a, b := <-first, <-second; a != http.StatusServiceUnavailable || b != http.StatusOK {
		t.Fatalf("answers %d and %d, want 503 and 200", a, b)
	}
	if rcv.Requests() != 2 || len(rcv.Accepted()) != 1 {
		t.Fatalf("%d requests, %d accepted", rcv.Requests(), len(rcv.Accepted()))
	}
	short, stop := context.WithCancel(context.Background())
	stop()
	if err := rcv.WaitRequests(short, 3); err == nil {
		t.Fatal("WaitRequests for a request that never comes returned nil")
	}
}

func TestCaptureKeepsAnyBody(t *testing.T) {
	var c otlptest.Capture
	srv := httptest.NewServer(&c)
	defer srv.Close()
	for _, ct := range []string{"application/json", "application/x-protobuf"} {
		resp, err := http.Post(srv.URL, ct, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	bodies, types := c.Take()
	if len(bodies) != 2 || string(bodies[0]) != "{}" || !reflect.DeepEqual(types, []string{"application/json", "application/x-protobuf"}) {
		t.Fatalf("took %q, %v", bodies, types)
	}
	if bodies, _ := c.Take(); len(bodies) != 0 {
		t.Fatalf("a second Take returned %d bodies", len(bodies))
	}
}

func stubs(spans []sdktrace.ReadOnlySpan) []tracetest.SpanStub {
	out := make([]tracetest.SpanStub, len(spans))
	for i, s := range spans {
		if s != nil {
			out[i] = tracetest.SpanStubFromReadOnlySpan(s)
		}
	}
	return out
}

func TestRandomIsReproducible(t *testing.T) {
	if !reflect.DeepEqual(stubs(otlptest.RandomSpans(3, 50)), stubs(otlptest.NewRandom(3).Spans(50))) {
		t.Fatal("the same seed drew different spans")
	}
	if reflect.DeepEqual(stubs(otlptest.RandomSpans(3, 50)), stubs(otlptest.RandomSpans(4, 50))) {
		t.Fatal("two seeds drew the same spans")
	}
	data := []byte("some fuzz input that runs out soon")
	if !reflect.DeepEqual(stubs(otlptest.NewFuzzRandom(data).Spans(20)), stubs(otlptest.NewFuzzRandom(data).Spans(20))) {
		t.Fatal("the same fuzz input drew different spans")
	}
	// Used-up input is all zeros and must not stall the generator.
	if n := len(otlptest.NewFuzzRandom(nil).Spans(100)); n != 100 {
		t.Fatalf("%d spans from no input", n)
	}
}

func TestRandomDrawsEveryCase(t *testing.T) {
	valid := func(s sdktrace.ReadOnlySpan) bool {
		ok := utf8.ValidString(s.Name())
		for _, kv := range s.Attributes() {
			ok = ok && utf8.ValidString(string(kv.Key)) && (kv.Value.Type() != attribute.STRING || utf8.ValidString(kv.Value.AsString()))
		}
		return ok
	}
	types := map[attribute.Type]bool{}
	for _, s := range otlptest.RandomSpans(1, 500) {
		if s == nil || !valid(s) {
			t.Fatal("the default draw holds a nil span or invalid UTF-8")
		}
		for _, kv := range s.Attributes() {
			types[kv.Value.Type()] = true
		}
	}
	if len(types) != 12 {
		t.Errorf("the default draw uses %d attribute types, want all 12: %v", len(types), types)
	}
	g := otlptest.NewRandom(1)
	g.InvalidUTF8, g.Extremes = true, true
	var nils, invalid, negative int
	for _, s := range g.Spans(500) {
		switch {
		case s == nil:
			nils++
			continue
		case !valid(s):
			invalid++
		}
		if s.DroppedAttributes() < 0 {
			negative++
		}
	}
	if nils == 0 || invalid == 0 || negative == 0 {
		t.Errorf("with InvalidUTF8 and Extremes: %d nil spans, %d with invalid UTF-8, %d negative counts; want some of each",
			nils, invalid, negative)
	}
}
