package tracekeeper_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// These tests run the exporter the way a service does: spans are ended on a
// real sdktrace.TracerProvider whose BatchSpanProcessor hands them to the
// exporter, which sends them over loopback HTTP to a receiver that decodes
// every request as an OTLP ExportTraceServiceRequest.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait of a test so that a regression fails the
// test instead of hanging it. It is a bound, never an expectation of speed.
const testTimeout = 60 * time.Second

func boundedContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------
// The loopback OTLP/HTTP receiver.

// answer lets a test script the receiver. It is called for every request
// with the request's number (from 1) and its decompressed body; it returns
// true when it has written the answer itself. Otherwise the receiver decodes
// the body, keeps it, and answers 200.
type answer func(n int, body []byte, w http.ResponseWriter, r *http.Request) bool

type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	answer  answer
	release chan struct{} // closed to let held requests go
	once    sync.Once
	arrived chan struct{} // one token per request received, never blocks

	mu        sync.Mutex
	requests  int
	gzipped   int
	maxBody   int // largest decompressed body seen
	accepted  []*coltracepb.ExportTraceServiceRequest
	badHeader []string
}

func newReceiver(t *testing.T, a answer) *receiver {
	t.Helper()
	rcv := &receiver{
		t:       t,
		answer:  a,
		release: make(chan struct{}),
		arrived: make(chan struct{}, 1<<16),
	}
	rcv.srv = httptest.NewServer(http.HandlerFunc(rcv.serve))
	if !strings.HasPrefix(rcv.srv.URL, "http://127.0.0.1:") {
		t.Fatalf("receiver is not on loopback: %s", rcv.srv.URL)
	}
	// Cleanups run last-registered first: held requests are released,
	// then the server, which waits for its handlers, is closed.
	t.Cleanup(rcv.srv.Close)
	t.Cleanup(rcv.unblock)
	return rcv
}

func (rcv *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	gz := r.Header.Get("Content-Encoding") == "gzip"
	if err == nil && gz {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(body)); err == nil {
			body, err = io.ReadAll(zr)
		}
	}
	if err != nil {
		rcv.t.Errorf("receiver: reading the body: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rcv.mu.Lock()
	rcv.requests++
	n := rcv.requests
	if gz {
		rcv.gzipped++
	}
	rcv.maxBody = max(rcv.maxBody, len(body))
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" ||
		r.Header.Get("Content-Type") != "application/x-protobuf" {
		rcv.badHeader = append(rcv.badHeader, fmt.Sprintf("%s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type")))
	}
	rcv.mu.Unlock()
	select {
	case rcv.arrived <- struct{}{}:
	default:
	}

	if rcv.answer != nil && rcv.answer(n, body, w, r) {
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		rcv.t.Errorf("receiver: request %d is not an ExportTraceServiceRequest: %v", n, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rcv.mu.Lock()
	rcv.accepted = append(rcv.accepted, &msg)
	rcv.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// unblock releases every request held by hold, now and later.
func (rcv *receiver) unblock() { rcv.once.Do(func() { close(rcv.release) }) }

// hold keeps a request until the test calls unblock or the client gives
// up, then answers 503 so that nothing held is ever counted as accepted.
func (rcv *receiver) hold(w http.ResponseWriter, r *http.Request) {
	select {
	case <-rcv.release:
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

// waitArrival waits until the receiver has received a request.
func (rcv *receiver) waitArrival(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-rcv.arrived:
	case <-ctx.Done():
		t.Fatalf("no request reached the receiver: %v", ctx.Err())
	}
}

func (rcv *receiver) url() string { return rcv.srv.URL + "/v1/traces" }

func (rcv *receiver) hostport() string { return strings.TrimPrefix(rcv.srv.URL, "http://") }

type receiverStats struct {
	requests, accepted, gzipped, maxBody int
	badHeader                            []string
}

func (rcv *receiver) stats() receiverStats {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return receiverStats{rcv.requests, len(rcv.accepted), rcv.gzipped, rcv.maxBody, slices.Clone(rcv.badHeader)}
}

// spans returns every span the receiver accepted, by span id, failing the
// test if one arrived twice.
func (rcv *receiver) spans(t *testing.T) map[string]wireSpan {
	t.Helper()
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	out := make(map[string]wireSpan)
	for _, req := range rcv.accepted {
		for _, rs := range req.GetResourceSpans() {
			res := renderResource(renderAnyKVs(rs.GetResource().GetAttributes()), rs.GetSchemaUrl())
			for _, ss := range rs.GetScopeSpans() {
				sc := ss.GetScope()
				scope := renderScope(sc.GetName(), sc.GetVersion(), ss.GetSchemaUrl(), renderAnyKVs(sc.GetAttributes()))
				for _, sp := range ss.GetSpans() {
					ws := fromWire(res, scope, sp)
					if _, dup := out[ws.SpanID]; dup {
						t.Errorf("span %s %q delivered more than once", ws.SpanID, ws.Name)
					}
					out[ws.SpanID] = ws
				}
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// A comparable form of a span, built either from what the SDK recorded or
// from what arrived on the wire. Values carry their type, so an int that
// arrives as a string, or a byte slice as a string, does not compare equal.

type wireSpan struct {
	Resource, Scope   string
	TraceID, SpanID   string
	ParentSpanID      string
	TraceState        string
	Flags             uint32
	Name              string
	Kind              int32
	Start, End        uint64
	Attributes        []string
	DroppedAttributes uint32
	Events            []string
	DroppedEvents     uint32
	Links             []string
	DroppedLinks      uint32
	StatusCode        int32
	StatusMessage     string
}

// OTLP SpanFlags bits that say whether the parent (or linked) context is
// known to be remote, and whether it is.
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// repaired is what a string looks like once the exporter has replaced each
// invalid UTF-8 sequence with U+FFFD.
func repaired(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func renderResource(attrs []string, schema string) string {
	return fmt.Sprintf("schema=%q attrs=%v", schema, attrs)
}

func renderScope(name, version, schema string, attrs []string) string {
	return fmt.Sprintf("name=%q version=%q schema=%q attrs=%v", name, version, schema, attrs)
}

// expected builds the comparable form of a span the SDK ended.
func expected(s sdktrace.ReadOnlySpan) wireSpan {
	sc, parent := s.SpanContext(), s.Parent()
	flags := uint32(sc.TraceFlags()) | flagHasIsRemote
	if parent.IsRemote() {
		flags |= flagIsRemote
	}
	ws := wireSpan{
		Resource:          renderResource(renderKVs(s.Resource().Attributes()), s.Resource().SchemaURL()),
		TraceID:           sc.TraceID().String(),
		SpanID:            sc.SpanID().String(),
		TraceState:        sc.TraceState().String(),
		Flags:             flags,
		Name:              repaired(s.Name()),
		Kind:              wireKind(s.SpanKind()),
		Start:             uint64(s.StartTime().UnixNano()),
		End:               uint64(s.EndTime().UnixNano()),
		Attributes:        renderKVs(s.Attributes()),
		DroppedAttributes: uint32(s.DroppedAttributes()),
		DroppedEvents:     uint32(s.DroppedEvents()),
		DroppedLinks:      uint32(s.DroppedLinks()),
		StatusCode:        wireStatus(s.Status().Code),
		StatusMessage:     repaired(s.Status().Description),
	}
	is := s.InstrumentationScope()
	ws.Scope = renderScope(is.Name, is.Version, is.SchemaURL, renderKVs(is.Attributes.ToSlice()))
	if parent.SpanID().IsValid() {
		ws.ParentSpanID = parent.SpanID().String()
	}
	for _, ev := range s.Events() {
		ws.Events = append(ws.Events, renderEvent(uint64(ev.Time.UnixNano()), repaired(ev.Name),
			renderKVs(ev.Attributes), uint32(ev.DroppedAttributeCount)))
	}
	for _, l := range s.Links() {
		lf := uint32(l.SpanContext.TraceFlags()) | flagHasIsRemote
		if l.SpanContext.IsRemote() {
			lf |= flagIsRemote
		}
		ws.Links = append(ws.Links, renderLink(l.SpanContext.TraceID().String(), l.SpanContext.SpanID().String(),
			lf, renderKVs(l.Attributes), uint32(l.DroppedAttributeCount)))
	}
	return ws
}

// fromWire builds the comparable form of a span received by the backend.
func fromWire(res, scope string, sp *tracepb.Span) wireSpan {
	ws := wireSpan{
		Resource:          res,
		Scope:             scope,
		TraceID:           hex.EncodeToString(sp.GetTraceId()),
		SpanID:            hex.EncodeToString(sp.GetSpanId()),
		TraceState:        sp.GetTraceState(),
		Flags:             sp.GetFlags(),
		Name:              sp.GetName(),
		Kind:              int32(sp.GetKind()),
		Start:             sp.GetStartTimeUnixNano(),
		End:               sp.GetEndTimeUnixNano(),
		Attributes:        renderAnyKVs(sp.GetAttributes()),
		DroppedAttributes: sp.GetDroppedAttributesCount(),
		DroppedEvents:     sp.GetDroppedEventsCount(),
		DroppedLinks:      sp.GetDroppedLinksCount(),
		StatusCode:        int32(sp.GetStatus().GetCode()),
		StatusMessage:     sp.GetStatus().GetMessage(),
	}
	if len(sp.GetParentSpanId()) > 0 {
		ws.ParentSpanID = hex.EncodeToString(sp.GetParentSpanId())
	}
	for _, ev := range sp.GetEvents() {
		ws.Events = append(ws.Events, renderEvent(ev.GetTimeUnixNano(), ev.GetName(),
			renderAnyKVs(ev.GetAttributes()), ev.GetDroppedAttributesCount()))
	}
	for _, l := range sp.GetLinks() {
		ws.Links = append(ws.Links, renderLink(hex.EncodeToString(l.GetTraceId()), hex.EncodeToString(l.GetSpanId()),
			l.GetFlags(), renderAnyKVs(l.GetAttributes()), l.GetDroppedAttributesCount()))
	}
	return ws
}

func renderEvent(t uint64, name string, attrs []string, dropped uint32) string {
	return fmt.Sprintf("time=%d name=%q attrs=%v dropped=%d", t, name, attrs, dropped)
}

func renderLink(tid, sid string, flags uint32, attrs []string, dropped uint32) string {
	return fmt.Sprintf("%s/%s flags=%#x attrs=%v dropped=%d", tid, sid, flags, attrs, dropped)
}

// wireKind maps an SDK span kind to the OTLP Span.SpanKind number.
func wireKind(k trace.SpanKind) int32 {
	switch k {
	case trace.SpanKindInternal:
		return int32(tracepb.Span_SPAN_KIND_INTERNAL)
	case trace.SpanKindServer:
		return int32(tracepb.Span_SPAN_KIND_SERVER)
	case trace.SpanKindClient:
		return int32(tracepb.Span_SPAN_KIND_CLIENT)
	case trace.SpanKindProducer:
		return int32(tracepb.Span_SPAN_KIND_PRODUCER)
	case trace.SpanKindConsumer:
		return int32(tracepb.Span_SPAN_KIND_CONSUMER)
	}
	return int32(tracepb.Span_SPAN_KIND_UNSPECIFIED)
}

// wireStatus maps an SDK status code to the OTLP Status.StatusCode number.
func wireStatus(c codes.Code) int32 {
	switch c {
	case codes.Ok:
		return int32(tracepb.Status_STATUS_CODE_OK)
	case codes.Error:
		return int32(tracepb.Status_STATUS_CODE_ERROR)
	}
	return int32(tracepb.Status_STATUS_CODE_UNSET)
}

// renderKVs renders SDK attributes as sorted "key=type:value" strings; the
// order of attributes carries no meaning in OTLP.
func renderKVs(kvs []attribute.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, repaired(string(kv.Key))+"="+renderValue(kv.Value))
	}
	slices.Sort(out)
	return out
}

func renderValue(v attribute.Value) string {
	list := func(n int, item func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = item(i)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	switch v.Type() {
	case attribute.EMPTY:
		return "empty"
	case attribute.BOOL:
		return "bool:" + strconv.FormatBool(v.AsBool())
	case attribute.INT64:
		return "int:" + strconv.FormatInt(v.AsInt64(), 10)
	case attribute.FLOAT64:
		return "double:" + strconv.FormatFloat(v.AsFloat64(), 'g', -1, 64)
	case attribute.STRING:
		return "string:" + strconv.Quote(repaired(v.AsString()))
	case attribute.BYTESLICE:
		return "bytes:" + hex.EncodeToString(v.AsByteSlice())
	case attribute.BOOLSLICE:
		s := v.AsBoolSlice()
		return list(len(s), func(i int) string { return renderValue(attribute.BoolValue(s[i])) })
	case attribute.INT64SLICE:
		s := v.AsInt64Slice()
		return list(len(s), func(i int) string { return renderValue(attribute.Int64Value(s[i])) })
	case attribute.FLOAT64SLICE:
		s := v.AsFloat64Slice()
		return list(len(s), func(i int) string { return renderValue(attribute.Float64Value(s[i])) })
	case attribute.STRINGSLICE:
		s := v.AsStringSlice()
		return list(len(s), func(i int) string { return renderValue(attribute.StringValue(s[i])) })
	case attribute.SLICE:
		s := v.AsSlice()
		return list(len(s), func(i int) string { return renderValue(s[i]) })
	case attribute.MAP:
		return "{" + strings.Join(renderKVs(v.AsMap()), ",") + "}"
	}
	return "unknown:" + v.Type().String()
}

func renderAnyKVs(kvs []*commonpb.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.GetKey()+"="+renderAny(kv.GetValue()))
	}
	slices.Sort(out)
	return out
}

func renderAny(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case nil:
		return "empty"
	case *commonpb.AnyValue_BoolValue:
		return "bool:" + strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return "int:" + strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return "double:" + strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_StringValue:
		return "string:" + strconv.Quote(x.StringValue)
	case *commonpb.AnyValue_BytesValue:
		return "bytes:" + hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		parts := make([]string, len(x.ArrayValue.GetValues()))
		for i, e := range x.ArrayValue.GetValues() {
			parts[i] = renderAny(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *commonpb.AnyValue_KvlistValue:
		return "{" + strings.Join(renderAnyKVs(x.KvlistValue.GetValues()), ",") + "}"
	}
	return fmt.Sprintf("unknown:%T", v.GetValue())
}

// compareSpans fails the test unless got holds exactly the spans of want.
func compareSpans(t *testing.T, want []sdktrace.ReadOnlySpan, got map[string]wireSpan) {
	t.Helper()
	const maxReports = 5
	reports := 0
	wantIDs := make(map[string]bool, len(want))
	for _, s := range want {
		w := expected(s)
		wantIDs[w.SpanID] = true
		g, ok := got[w.SpanID]
		switch {
		case !ok:
			t.Errorf("span %s %q never arrived", w.SpanID, w.Name)
			reports++
		case !reflect.DeepEqual(w, g):
			t.Errorf("span %s arrived different:\n%s", w.SpanID, diffSpans(w, g))
			reports++
		}
		if reports >= maxReports {
			t.Fatalf("more differences left unreported")
		}
	}
	for id, g := range got {
		if !wantIDs[id] {
			t.Errorf("span %s %q arrived but was not expected", id, g.Name)
		}
	}
}

// diffSpans lists the fields in which two spans differ.
func diffSpans(want, got wireSpan) string {
	var b strings.Builder
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := range wv.NumField() {
		w, g := wv.Field(i).Interface(), gv.Field(i).Interface()
		if !reflect.DeepEqual(w, g) {
			fmt.Fprintf(&b, "  %s:\n    want %v\n    got  %v\n", wv.Type().Field(i).Name, w, g)
		}
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// The pipeline under test.

type pipeline struct {
	tp  *sdktrace.TracerProvider
	exp *exporter.Exporter
	rec *tracetest.SpanRecorder
}

// newPipeline builds a TracerProvider with a recorder and a
// BatchSpanProcessor over an exporter configured by opts. Both are shut
// down when the test ends (a second Shutdown is harmless).
func newPipeline(t *testing.T, opts []exporter.Option, bspOpts []sdktrace.BatchSpanProcessorOption, tpOpts ...sdktrace.TracerProviderOption) *pipeline {
	t.Helper()
	p := &pipeline{exp: exporter.New(opts...), rec: tracetest.NewSpanRecorder()}
	tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p.rec), sdktrace.WithBatcher(p.exp, bspOpts...))
	p.tp = sdktrace.NewTracerProvider(tpOpts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := p.tp.Shutdown(ctx); err != nil {
			t.Errorf("TracerProvider.Shutdown: %v", err)
		}
	})
	return p
}

// flush delivers every ended span. TracerProvider.ForceFlush only hands
// the BatchSpanProcessor's spans to ExportSpans, which queues them and
// returns before anything is sent; Exporter.ForceFlush then waits until
// those queued spans have been sent or dropped. Either one alone leaves
// spans on their way when it returns.
func (p *pipeline) flush(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := p.tp.ForceFlush(ctx); err != nil {
		t.Fatalf("TracerProvider.ForceFlush: %v", err)
	}
	if err := p.exp.ForceFlush(ctx); err != nil {
		t.Fatalf("Exporter.ForceFlush: %v", err)
	}
}

// sampled returns the ended spans the BatchSpanProcessor was given: the
// sampled ones. Spans that were only recorded reach the recorder but not
// the exporter.
func (p *pipeline) sampled() []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range p.rec.Ended() {
		if s.SpanContext().IsSampled() {
			out = append(out, s)
		}
	}
	return out
}

// checkAccounting checks that the exporter's figures add up and that it
// accepted every sampled span that was ended, and returns them.
func (p *pipeline) checkAccounting(t *testing.T) exporter.Stats {
	t.Helper()
	s := p.exp.Stats()
	checkInvariant(t, s)
	if n := int64(len(p.sampled())); s.Accepted != n {
		t.Errorf("exporter accepted %d spans, %d sampled spans were ended: %+v", s.Accepted, n, s)
	}
	return s
}

func checkInvariant(t *testing.T, s exporter.Stats) {
	t.Helper()
	if s.Accepted != s.Exported+s.Dropped.Total()+s.Queued+s.InFlight {
		t.Errorf("Accepted != Exported + Dropped + Queued + InFlight: %+v", s)
	}
}

// endSpans ends n plain spans named name, attr i carrying their index.
func endSpans(tr trace.Tracer, name string, n int) {
	for i := range n {
		_, s := tr.Start(context.Background(), name, trace.WithAttributes(attribute.Int("i", i)))
		s.End()
	}
}

// reportedDrops adds up the spans the fallback logger reported dropped for
// reason, checking that each report is an error entry naming the cause.
func reportedDrops(logs *observer.ObservedLogs, reason exporter.Reason) int64 {
	var n int64
	for _, e := range logs.All() {
		fields := e.ContextMap()
		v, ok := fields[string(reason)].(int64)
		if !ok {
			continue
		}
		if c, _ := fields[string(reason)+"_cause"].(string); e.Level != zapcore.ErrorLevel || c == "" {
			return -1 // a drop must be reported as an error, with its cause
		}
		n += v
	}
	return n
}

func observedLogger(level zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(level)
	return zap.New(core), logs
}

// fastRetry is a retry budget measured in milliseconds, so that tests of
// failing backends end quickly.
var fastRetry = exporter.RetryConfig{
	Enabled:         true,
	InitialInterval: 5 * time.Millisecond,
	MaxInterval:     10 * time.Millisecond,
	MaxElapsedTime:  50 * time.Millisecond,
}

// ---------------------------------------------------------------------------
// 1. Everything arrives, intact.

// recordOnlyDebug records spans whose name starts with "debug" without
// sampling them, and samples the others, keeping the parent's trace state.
type recordOnlyDebug struct{}

func (recordOnlyDebug) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	d := sdktrace.RecordAndSample
	if strings.HasPrefix(p.Name, "debug") {
		d = sdktrace.RecordOnly
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
}

func (recordOnlyDebug) Description() string { return "recordOnlyDebug" }

// allTypes returns one attribute of every type the API offers.
func allTypes(i int) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Bool("bool", i%2 == 0),
		attribute.Int("int", i),
		attribute.Int64("int64", int64(i)<<40|1),
		attribute.Float64("float64", float64(i)/3),
		attribute.String("string", "order-"+strconv.Itoa(i)),
		attribute.String("string.empty", ""),
		attribute.BoolSlice("bool.slice", []bool{true, false, i%3 == 0}),
		attribute.IntSlice("int.slice", []int{i, -i, 0}),
		attribute.Int64Slice("int64.slice", []int64{int64(i) << 33, -1}),
		attribute.Float64Slice("float64.slice", []float64{0.5, -2.25, float64(i)}),
		attribute.StringSlice("string.slice", []string{"a", "", "c-" + strconv.Itoa(i)}),
		attribute.ByteSlice("bytes", []byte{0, 1, byte(i), 0xff}),
		attribute.Slice("mixed.slice", attribute.StringValue("x"), attribute.IntValue(i), attribute.BoolValue(true),
			attribute.SliceValue(attribute.Float64Value(1.5))),
		attribute.Map("map", attribute.String("k", "v"), attribute.Int("n", i),
			attribute.Map("nested", attribute.Bool("deep", true))),
		{Key: "empty"},
	}
}

func TestSpansArriveIntact(t *testing.T) {
	for _, tc := range []struct {
		name        string
		compression exporter.Compression
	}{
		{"uncompressed", exporter.NoCompression},
		{"gzip", exporter.GzipCompression},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := boundedContext(t)
			rcv := newReceiver(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
				if r.Header.Get("X-Api-Key") != "secret-key" {
					http.Error(w, "missing api key", http.StatusUnauthorized)
					return true
				}
				return false
			})
			log, logs := observedLogger(zapcore.WarnLevel)
			res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
				attribute.String("service.name", "checkout"),
				attribute.String("service.version", "2.3.1"),
				attribute.StringSlice("host.ip", []string{"10.0.0.1", "fe80::1"}),
			)
			limits := sdktrace.NewSpanLimits()
			limits.AttributeCountLimit = 24
			limits.EventCountLimit = 3
			limits.LinkCountLimit = 2
			p := newPipeline(t,
				[]exporter.Option{
					exporter.WithEndpointURL(rcv.url()),
					exporter.WithCompression(tc.compression),
					exporter.WithHeaders(map[string]string{"X-Api-Key": "secret-key"}),
					exporter.WithLogger(log),
				}, nil,
				sdktrace.WithResource(res),
				sdktrace.WithSampler(recordOnlyDebug{}),
				sdktrace.WithSpanLimits(limits),
			)

			tracers := []trace.Tracer{
				p.tp.Tracer("github.com/acme/checkout",
					trace.WithInstrumentationVersion("v1.4.2"),
					trace.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0"),
					trace.WithInstrumentationAttributes(attribute.String("team", "payments"))),
				p.tp.Tracer("github.com/acme/inventory", trace.WithInstrumentationVersion("v0.9.0")),
				p.tp.Tracer("github.com/acme/db",
					trace.WithSchemaURL("https://opentelemetry.io/schemas/1.24.0"),
					trace.WithInstrumentationAttributes(attribute.Bool("pooled", true), attribute.Int("shard", 3))),
			}
			ts, err := trace.ParseTraceState("vendor=abc,other=1")
			if err != nil {
				t.Fatal(err)
			}
			remote := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
				SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
				TraceFlags: trace.FlagsSampled,
				TraceState: ts,
				Remote:     true,
			})
			kinds := []trace.SpanKind{trace.SpanKindServer, trace.SpanKindConsumer, trace.SpanKindInternal,
				trace.SpanKindProducer}

			var prev trace.SpanContext
			for i := range 100 {
				for j, tr := range tracers {
					parentCtx := context.Background()
					if i%5 == 0 {
						parentCtx = trace.ContextWithRemoteSpanContext(parentCtx, remote)
					}
					links := []trace.Link{{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.String("link.kind", "remote")}}}
					if prev.IsValid() {
						links = append(links, trace.Link{SpanContext: prev, Attributes: []attribute.KeyValue{attribute.Int("link.index", i)}})
					}
					ctx, root := tr.Start(parentCtx, fmt.Sprintf("request %d/%d", j, i),
						trace.WithSpanKind(kinds[(i+j)%len(kinds)]),
						trace.WithAttributes(allTypes(i)...),
						trace.WithLinks(links...))
					root.AddEvent("cache miss", trace.WithAttributes(attribute.String("key", "user:"+strconv.Itoa(i)),
						attribute.Int64Slice("sizes", []int64{1, 2, 3})))
					if i%33 == 0 {
						// More attributes, events and links than the limits:
						// the SDK counts the excess as dropped.
						for k := range 30 {
							root.SetAttributes(attribute.Int("extra."+strconv.Itoa(k), k))
						}
						for k := range 5 {
							root.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", k)))
						}
						root.AddLink(trace.Link{SpanContext: remote})
					}

					_, child := tr.Start(ctx, "SELECT orders", trace.WithSpanKind(trace.SpanKindClient),
						trace.WithAttributes(attribute.String("db.system", "postgresql")))
					if i%7 == 0 {
						child.RecordError(errors.New("connection reset"))
						child.SetStatus(codes.Error, "payment declined")
					}
					child.End()
					if i%10 == 0 {
						_, dbg := tr.Start(ctx, "debug probe")
						dbg.End()
					}
					if i%4 == 0 {
						root.SetStatus(codes.Ok, "")
					}
					prev = root.SpanContext()
					root.End()
				}
			}

			p.flush(ctx, t)
			want := p.sampled()
			if len(want) != 600 || len(p.rec.Ended()) != 630 {
				t.Fatalf("the SDK ended %d spans, %d sampled; want 630 and 600", len(p.rec.Ended()), len(want))
			}
			var withDrops int
			for _, s := range want {
				if s.DroppedAttributes() > 0 && s.DroppedEvents() > 0 && s.DroppedLinks() > 0 {
					withDrops++
				}
			}
			if withDrops == 0 {
				t.Fatal("no span exceeds the span limits: the dropped counts go untested")
			}
			compareSpans(t, want, rcv.spans(t))

			s := p.checkAccounting(t)
			if s.Exported != 600 || s.Dropped.Total() != 0 || s.Queued != 0 || s.InFlight != 0 {
				t.Errorf("stats %+v, want all 600 spans exported", s)
			}
			rs := rcv.stats()
			if len(rs.badHeader) > 0 {
				t.Errorf("malformed requests: %v", rs.badHeader)
			}
			wantGzipped := 0
			if tc.compression == exporter.GzipCompression {
				wantGzipped = rs.requests
			}
			if rs.requests == 0 || rs.gzipped != wantGzipped {
				t.Errorf("%d of %d requests gzipped with compression %v", rs.gzipped, rs.requests, tc.compression)
			}
			if s.Requests != int64(rs.requests) {
				t.Errorf("exporter counted %d requests, the receiver saw %d", s.Requests, rs.requests)
			}
			if n := logs.Len(); n != 0 {
				t.Errorf("the fallback logger reported %d entries for a healthy backend: %v", n, logs.All())
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 2. A slow backend never holds up the application.

func TestSlowBackendNeverBlocksSpanEnd(t *testing.T) {
	// Far more spans than the BatchSpanProcessor's queue of 2048 holds.
	const n = 5000
	for _, tc := range []struct {
		name string
		opts []exporter.Option
		// overflow: the exporter's own queue is too small for the backlog,
		// so some spans are dropped with reason queue_full.
		overflow bool
	}{
		{"queue holds the backlog", nil, false},
		{"queue overflows", []exporter.Option{exporter.WithQueueSize(1024), exporter.WithWorkers(1)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := boundedContext(t)
			var rcv *receiver
			rcv = newReceiver(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
				select {
				case <-rcv.release:
					return false // accept once released
				case <-r.Context().Done():
					w.WriteHeader(http.StatusServiceUnavailable)
					return true
				}
			})
			log, _ := observedLogger(zapcore.WarnLevel)
			opts := append([]exporter.Option{
				exporter.WithEndpoint(rcv.hostport()), exporter.WithInsecure(), exporter.WithLogger(log),
				exporter.WithTimeout(testTimeout),
			}, tc.opts...)
			// A blocking BatchSpanProcessor makes span.End wait whenever its
			// queue is full, that is whenever ExportSpans is slow to return;
			// with the default, dropping one, End could not show a wait.
			p := newPipeline(t, opts, []sdktrace.BatchSpanProcessorOption{sdktrace.WithBlocking()})
			tr := p.tp.Tracer("slow-backend")

			ended := make(chan struct{})
			go func() {
				defer close(ended)
				endSpans(tr, "op", n)
			}()
			select {
			case <-ended:
			case <-ctx.Done():
				t.Fatalf("span.End waited on the blocked backend: %d of %d spans ended", len(p.rec.Ended()), n)
			}
			// The BatchSpanProcessor's flush hands everything to the exporter;
			// it too returns while the backend is still blocked.
			if err := p.tp.ForceFlush(ctx); err != nil {
				t.Fatalf("TracerProvider.ForceFlush waited on the blocked backend: %v", err)
			}
			s := p.checkAccounting(t)
			if s.Accepted != n || s.Exported != 0 {
				t.Fatalf("while the backend is blocked: %+v, want %d accepted and none exported", s, n)
			}
			if tc.overflow != (s.Dropped.QueueFull > 0) {
				t.Errorf("queue_full drops %d, want some: %v", s.Dropped.QueueFull, tc.overflow)
			}

			rcv.unblock()
			p.flush(ctx, t)
			s = p.checkAccounting(t)
			got := rcv.spans(t)
			if s.Exported != int64(len(got)) || s.Exported+s.Dropped.QueueFull != n || s.Dropped.Total() != s.Dropped.QueueFull {
				t.Errorf("received %d spans, stats %+v; want every span exported or dropped as queue_full", len(got), s)
			}
			if s.Queued != 0 || s.InFlight != 0 {
				t.Errorf("spans left after the flush: %+v", s)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 3. Nothing listens: spans are dropped, counted and reported.

func TestBackendDown(t *testing.T) {
	ctx := boundedContext(t)
	// A loopback port that was just free: nothing listens on it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	log, logs := observedLogger(zapcore.WarnLevel)
	var replay bytes.Buffer
	p := newPipeline(t, []exporter.Option{
		exporter.WithEndpoint(addr), exporter.WithInsecure(), exporter.WithLogger(log),
		exporter.WithRetry(fastRetry), exporter.WithWorkers(2), exporter.WithDroppedSpansWriter(&replay),
	}, nil)
	const n = 120
	endSpans(p.tp.Tracer("down"), "op", n)
	p.flush(ctx, t)

	s := p.checkAccounting(t)
	if s.Dropped.RetriesExhausted != n || s.Exported != 0 || s.Dropped.Total() != n {
		t.Errorf("stats %+v, want all %d spans dropped as retries_exhausted", s, n)
	}
	if s.Retries == 0 {
		t.Errorf("no retry within a %v budget: %+v", fastRetry.MaxElapsedTime, s)
	}
	if err := p.tp.Shutdown(ctx); err != nil {
		t.Fatalf("TracerProvider.Shutdown: %v", err)
	}

	// The reports are aggregated: their counts add up to the drops, each
	// with the cause.
	if reported := reportedDrops(logs, exporter.ReasonRetriesExhausted); reported != n {
		t.Errorf("the fallback logger reported %d spans dropped as retries_exhausted, want %d; entries: %v", reported, n, logs.All())
	}

	// Every dropped span was written out as replayable OTLP/JSON.
	replayed := 0
	sc := bufio.NewScanner(&replay)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var msg coltracepb.ExportTraceServiceRequest
		if err := protojson.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatalf("dropped-spans line %d: %v", replayed, err)
		}
		for _, rs := range msg.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				replayed += len(ss.GetSpans())
			}
		}
	}
	if replayed != n {
		t.Errorf("%d spans written to the dropped-spans writer, want %d", replayed, n)
	}
}

// ---------------------------------------------------------------------------
// 4. Throttling is honoured and then everything is delivered.

func TestThrottledThenAccepted(t *testing.T) {
	ctx := boundedContext(t)
	rcv := newReceiver(t, func(n int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	log, _ := observedLogger(zapcore.WarnLevel)
	p := newPipeline(t, []exporter.Option{
		exporter.WithEndpointURL(rcv.url()), exporter.WithLogger(log),
		// The computed delays are far shorter than the server's Retry-After
		// of one second, which must win; the budget leaves room for it.
		exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond,
			MaxInterval: 10 * time.Millisecond, MaxElapsedTime: 30 * time.Second}),
	}, nil)
	const n = 40
	endSpans(p.tp.Tracer("throttled"), "op", n)
	p.flush(ctx, t)

	s := p.checkAccounting(t)
	got := rcv.spans(t)
	if s.Exported != n || len(got) != n || s.Dropped.Total() != 0 {
		t.Errorf("received %d spans, stats %+v; want all %d exported", len(got), s, n)
	}
	if s.Retries < 1 || rcv.stats().requests < 2 {
		t.Errorf("stats %+v, %d requests; want the throttled request retried", s, rcv.stats().requests)
	}
	compareSpans(t, p.sampled(), got)
}

// ---------------------------------------------------------------------------
// 5. Requests too large for the backend are split; a span too large for any
// request is dropped alone.

func TestTooLargeRequests(t *testing.T) {
	const (
		n          = 100
		serverMax  = 4 << 10 // the receiver answers 413 above this size
		requestMax = 8 << 10 // WithMaxRequestSize in the second case
	)
	for _, tc := range []struct {
		name string
		opts []exporter.Option
		// hugePayload is the size of the attribute that makes one span
		// too large.
		hugePayload int
		// serverRefuses: the receiver answers 413 for bodies above
		// serverMax; otherwise it accepts anything.
		serverRefuses bool
	}{
		{"backend answers 413", nil, 2 * serverMax, true},
		{"above WithMaxRequestSize", []exporter.Option{exporter.WithMaxRequestSize(requestMax)}, 2 * requestMax, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := boundedContext(t)
			rcv := newReceiver(t, func(_ int, body []byte, w http.ResponseWriter, _ *http.Request) bool {
				if tc.serverRefuses && len(body) > serverMax {
					http.Error(w, "request entity too large", http.StatusRequestEntityTooLarge)
					return true
				}
				return false
			})
			log, _ := observedLogger(zapcore.WarnLevel)
			// One worker and small batches from the BatchSpanProcessor: the
			// worker joins queued batches into one request, which the split
			// must take apart again, across resources and scopes.
			opts := append([]exporter.Option{exporter.WithEndpoint(rcv.hostport()), exporter.WithInsecure(),
				exporter.WithLogger(log), exporter.WithRetry(fastRetry), exporter.WithWorkers(1)}, tc.opts...)
			p := newPipeline(t, opts, []sdktrace.BatchSpanProcessorOption{sdktrace.WithMaxExportBatchSize(16)})
			tracers := []trace.Tracer{
				p.tp.Tracer("large/a", trace.WithInstrumentationVersion("v1")),
				p.tp.Tracer("large/b", trace.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0")),
			}
			pad := strings.Repeat("p", 200)
			var hugeID string
			for i := range n {
				payload := pad
				if i == n/2 {
					payload = strings.Repeat("h", tc.hugePayload)
				}
				_, s := tracers[i%2].Start(ctx, "op", trace.WithAttributes(attribute.Int("i", i), attribute.String("payload", payload)))
				if i == n/2 {
					hugeID = s.SpanContext().SpanID().String()
				}
				s.End()
			}
			p.flush(ctx, t)

			var want []sdktrace.ReadOnlySpan
			for _, s := range p.sampled() {
				if s.SpanContext().SpanID().String() != hugeID {
					want = append(want, s)
				}
			}
			got := rcv.spans(t)
			compareSpans(t, want, got)
			s := p.checkAccounting(t)
			if s.Exported != n-1 || s.Dropped.TooLarge != 1 || s.Dropped.Total() != 1 {
				t.Errorf("stats %+v, want %d exported and the huge span dropped as too_large", s, n-1)
			}
			rs := rcv.stats()
			if tc.serverRefuses && rs.requests <= rs.accepted {
				t.Errorf("the receiver refused nothing (%d requests): the test did not exercise splitting", rs.requests)
			}
			if !tc.serverRefuses && rs.maxBody > requestMax {
				t.Errorf("a request of %d bytes exceeds WithMaxRequestSize(%d)", rs.maxBody, requestMax)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 6. Backends that fail in other ways.

func TestBackendFailures(t *testing.T) {
	const n = 30
	for _, tc := range []struct {
		name   string
		answer func(rcv *receiver) answer
		opts   []exporter.Option
		check  func(t *testing.T, s exporter.Stats, logs *observer.ObservedLogs)
	}{
		{
			name: "500 is permanent",
			answer: func(*receiver) answer {
				return func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
					http.Error(w, "internal error", http.StatusInternalServerError)
					return true
				}
			},
			check: func(t *testing.T, s exporter.Stats, _ *observer.ObservedLogs) {
				if s.Dropped.PermanentError != n || s.Retries != 0 || s.Exported != 0 {
					t.Errorf("stats %+v, want %d dropped as permanent_error without retries", s, n)
				}
			},
		},
		{
			name: "partial success",
			answer: func(*receiver) answer {
				return func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
					b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{
						RejectedSpans: 3, ErrorMessage: "spans older than the retention",
					}})
					w.Header().Set("Content-Type", "application/x-protobuf")
					_, _ = w.Write(b)
					return true
				}
			},
			check: func(t *testing.T, s exporter.Stats, logs *observer.ObservedLogs) {
				if s.Dropped.Rejected != 3 || s.Exported != n-3 || s.Dropped.Total() != 3 {
					t.Errorf("stats %+v, want 3 rejected and %d exported", s, n-3)
				}
				if got := reportedDrops(logs, exporter.ReasonRejected); got != 3 {
					t.Errorf("the fallback logger reported %d rejected spans, want 3: %v", got, logs.All())
				}
			},
		},
		{
			// A 2xx answer means the backend took the request: the spans
			// count as exported. A body that is not an
			// ExportTraceServiceResponse cannot report a partial success and
			// is only reported as a warning.
			name: "garbage 200 body is exported",
			answer: func(*receiver) answer {
				return func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
					w.WriteHeader(http.StatusOK)
					_, _ = w.Write([]byte{0xff, 0xff, 0xff, 0x07, 'n', 'o', 't', ' ', 'o', 't', 'l', 'p'})
					return true
				}
			},
			check: func(t *testing.T, s exporter.Stats, logs *observer.ObservedLogs) {
				if s.Exported != n || s.Dropped.Total() != 0 {
					t.Errorf("stats %+v, want %d exported", s, n)
				}
				if logs.FilterLevelExact(zapcore.WarnLevel).Len() == 0 {
					t.Errorf("the unreadable answer was not reported: %v", logs.All())
				}
			},
		},
		{
			name: "hanging backend times out",
			answer: func(rcv *receiver) answer {
				return func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool { rcv.hold(w, r); return true }
			},
			opts: []exporter.Option{exporter.WithTimeout(100 * time.Millisecond), exporter.WithRetry(exporter.RetryConfig{
				Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsedTime: 50 * time.Millisecond,
			})},
			check: func(t *testing.T, s exporter.Stats, _ *observer.ObservedLogs) {
				if s.Dropped.RetriesExhausted != n || s.Exported != 0 {
					t.Errorf("stats %+v, want %d dropped as retries_exhausted", s, n)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := boundedContext(t)
			var rcv *receiver
			rcv = newReceiver(t, func(i int, body []byte, w http.ResponseWriter, r *http.Request) bool {
				return tc.answer(rcv)(i, body, w, r)
			})
			log, logs := observedLogger(zapcore.WarnLevel)
			opts := append([]exporter.Option{exporter.WithEndpointURL(rcv.url()), exporter.WithLogger(log),
				exporter.WithRetry(fastRetry)}, tc.opts...)
			p := newPipeline(t, opts, nil)
			endSpans(p.tp.Tracer("failures"), "op", n)
			p.flush(ctx, t)
			s := p.checkAccounting(t)
			if s.Queued != 0 || s.InFlight != 0 {
				t.Errorf("spans left after the flush: %+v", s)
			}
			if err := p.tp.Shutdown(ctx); err != nil {
				t.Errorf("TracerProvider.Shutdown: %v", err)
			}
			tc.check(t, s, logs)
		})
	}
}

func TestShutdownWithCancelledContextWhileBackendHangs(t *testing.T) {
	ctx := boundedContext(t)
	var rcv *receiver
	rcv = newReceiver(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		rcv.hold(w, r)
		return true
	})
	log, logs := observedLogger(zapcore.WarnLevel)
	p := newPipeline(t, []exporter.Option{
		exporter.WithEndpointURL(rcv.url()), exporter.WithLogger(log), exporter.WithTimeout(testTimeout),
	}, nil)
	const n = 50
	endSpans(p.tp.Tracer("shutdown"), "op", n)
	if err := p.tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.waitArrival(ctx, t)

	// TracerProvider.Shutdown returns at once, without reaching its
	// processors, when its context is already done; a service that wants
	// the exporter to give up shuts it down directly.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.exp.Shutdown(cancelled)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Exporter.Shutdown = %v, want an error wrapping context.Canceled", err)
	}
	s := p.checkAccounting(t)
	if s.Dropped.Shutdown != n || s.Exported != 0 || s.Queued != 0 || s.InFlight != 0 {
		t.Errorf("stats %+v, want all %d spans dropped as shutdown", s, n)
	}
	// The provider's own shutdown finds the exporter already shut down.
	if err := p.tp.Shutdown(ctx); err != nil {
		t.Errorf("TracerProvider.Shutdown after Exporter.Shutdown: %v", err)
	}
	if reported := reportedDrops(logs, exporter.ReasonShutdown); reported != n {
		t.Errorf("the fallback logger reported %d spans dropped at shutdown, want %d: %v", reported, n, logs.All())
	}
}

// ---------------------------------------------------------------------------
// 7. Invalid UTF-8 is repaired, not fatal to the batch.

func TestInvalidUTF8IsRepaired(t *testing.T) {
	ctx := boundedContext(t)
	rcv := newReceiver(t, nil) // proto.Unmarshal refuses invalid UTF-8 in strings
	log, _ := observedLogger(zapcore.WarnLevel)
	p := newPipeline(t, []exporter.Option{exporter.WithEndpoint(rcv.hostport()), exporter.WithInsecure(),
		exporter.WithLogger(log)}, nil)
	tr := p.tp.Tracer("utf8")
	const n = 20
	var badID string
	for i := range n {
		name, user := "op", "jörg"
		if i == n/2 {
			name, user = "caf\xe9 order", "j\xf6rg\xff" // Latin-1 bytes, as a careless client sends them
		}
		_, s := tr.Start(ctx, name, trace.WithAttributes(attribute.String("user", user), attribute.Int("i", i)))
		if i == n/2 {
			badID = s.SpanContext().SpanID().String()
		}
		s.End()
	}
	p.flush(ctx, t)

	got := rcv.spans(t)
	compareSpans(t, p.sampled(), got)
	bad := got[badID]
	if bad.Name != "caf\uFFFD order" || !slices.Contains(bad.Attributes, "user=string:"+strconv.Quote("j\uFFFDrg\uFFFD")) {
		t.Errorf("invalid UTF-8 not repaired: name %q, attributes %v", bad.Name, bad.Attributes)
	}
	s := p.checkAccounting(t)
	if s.Exported != n || s.Dropped.Total() != 0 {
		t.Errorf("stats %+v, want all %d spans exported", s, n)
	}
	if s.Repaired != 2 {
		t.Errorf("Repaired = %d, want 2 (the span name and the attribute value)", s.Repaired)
	}
}

// ---------------------------------------------------------------------------

// Example shows the exporter in a TracerProvider, with a loopback server
// standing in for an OpenTelemetry Collector.
func Example() {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer collector.Close()

	exp := exporter.New(exporter.WithEndpointURL(collector.URL + "/v1/traces"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	tracer := tp.Tracer("example")

	ctx := context.Background()
	for range 3 {
		_, span := tracer.Start(ctx, "work")
		span.End()
	}

	// Before the process exits: hand the batched spans to the exporter, then
	// wait for them to be sent.
	_ = tp.ForceFlush(ctx)
	_ = exp.ForceFlush(ctx)
	s := exp.Stats()
	fmt.Printf("accepted %d, exported %d, dropped %d\n", s.Accepted, s.Exported, s.Dropped.Total())
	_ = tp.Shutdown(ctx)
	// Output: accepted 3, exported 3, dropped 0
}
