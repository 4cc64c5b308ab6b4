package otlpenc

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// fuzzSource hands out values taken from fuzz input; once the input is
// used up it hands out zeros.
type fuzzSource struct{ data []byte }

func (f *fuzzSource) byte() byte {
	if len(f.data) == 0 {
		return 0
	}
	b := f.data[0]
	f.data = f.data[1:]
	return b
}

func (f *fuzzSource) intn(n int) int { return int(f.byte()) % n }
func (f *fuzzSource) bool() bool     { return f.byte()&1 == 1 }

func (f *fuzzSource) uint64() uint64 {
	var b [8]byte
	for i := range b {
		b[i] = f.byte()
	}
	return binary.LittleEndian.Uint64(b[:])
}

var fuzzWords = []string{"", "service.name", "GET /users/{id}", "é", "\xff", "a\xc3", "日本語", "x"}

// string returns a few raw bytes of input, often not valid UTF-8, or a word
// that other values may share.
func (f *fuzzSource) string() string {
	if f.bool() {
		return fuzzWords[f.intn(len(fuzzWords))]
	}
	n := f.intn(16)
	if n > len(f.data) {
		n = len(f.data)
	}
	s := string(f.data[:n])
	f.data = f.data[n:]
	return s
}

func (f *fuzzSource) value(depth int) attribute.Value {
	n := f.intn(4)
	switch f.intn(12) {
	case 1:
		return attribute.BoolValue(f.bool())
	case 2:
		return attribute.Int64Value(int64(f.uint64()))
	case 3:
		return attribute.Float64Value(math.Float64frombits(f.uint64()))
	case 4:
		return attribute.StringValue(f.string())
	case 5:
		v := make([]bool, n)
		for i := range v {
			v[i] = f.bool()
		}
		return attribute.BoolSliceValue(v)
	case 6:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(f.uint64())
		}
		return attribute.Int64SliceValue(v)
	case 7:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(f.uint64())
		}
		return attribute.Float64SliceValue(v)
	case 8:
		v := make([]string, n)
		for i := range v {
			v[i] = f.string()
		}
		return attribute.StringSliceValue(v)
	case 9:
		return attribute.ByteSliceValue([]byte(f.string()))
	case 10:
		if depth < 2 {
			v := make([]attribute.Value, n)
			for i := range v {
				v[i] = f.value(depth + 1)
			}
			return attribute.SliceValue(v...)
		}
	case 11:
		if depth < 2 {
			return attribute.MapValue(f.attrs(depth+1, n)...)
		}
	}
	return attribute.Value{}
}

func (f *fuzzSource) attrs(depth, n int) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, n)
	for i := range kvs {
		kvs[i] = attribute.KeyValue{Key: attribute.Key(f.string()), Value: f.value(depth)}
	}
	return kvs
}

func (f *fuzzSource) time() time.Time {
	switch f.intn(4) {
	case 0:
		return time.Time{}
	case 1:
		return epoch.Add(time.Duration(f.uint64() % uint64(time.Hour)))
	default:
		return time.Unix(0, int64(f.uint64()))
	}
}

var fuzzStates = func() []trace.TraceState {
	var out []trace.TraceState
	for _, s := range []string{"", "a=1", "vendor=opaque,ot=th:8;rv:ab"} {
		ts, err := trace.ParseTraceState(s)
		if err != nil {
			panic(err)
		}
		out = append(out, ts)
	}
	return out
}()

func (f *fuzzSource) spanContext() trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	binary.LittleEndian.PutUint64(tid[:], f.uint64())
	binary.LittleEndian.PutUint64(sid[:], f.uint64())
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(f.byte()),
		TraceState: fuzzStates[f.intn(len(fuzzStates))], Remote: f.bool(),
	})
}

func (f *fuzzSource) count() int {
	switch f.intn(8) {
	case 0:
		return -int(f.byte())
	case 1:
		return math.MaxInt
	default:
		return f.intn(3)
	}
}

// spans derives up to eight spans over a few resources and scopes.
func (f *fuzzSource) spans() []sdktrace.ReadOnlySpan {
	resources := []*resource.Resource{nil, resA}
	scopes := []instrumentation.Scope{{}, scopeA}
	for range 2 {
		resources = append(resources, resource.NewWithAttributes(f.string(), f.attrs(0, f.intn(3))...))
		scopes = append(scopes, instrumentation.Scope{
			Name: f.string(), Version: f.string(), SchemaURL: f.string(),
			Attributes: attribute.NewSet(f.attrs(0, f.intn(3))...),
		})
	}
	spans := make([]sdktrace.ReadOnlySpan, 1+f.intn(8))
	for i := range spans {
		if f.intn(16) == 0 {
			continue // nil span
		}
		s := tracetest.SpanStub{
			Name:                 f.string(),
			SpanContext:          f.spanContext(),
			Parent:               f.spanContext(),
			SpanKind:             trace.SpanKind(f.intn(7)),
			StartTime:            f.time(),
			EndTime:              f.time(),
			Attributes:           f.attrs(0, f.intn(6)),
			Status:               sdktrace.Status{Code: codes.Code(f.intn(4)), Description: f.string()},
			DroppedAttributes:    f.count(),
			DroppedEvents:        f.count(),
			DroppedLinks:         f.count(),
			Resource:             resources[f.intn(len(resources))],
			InstrumentationScope: scopes[f.intn(len(scopes))],
		}
		for range f.intn(3) {
			s.Events = append(s.Events, sdktrace.Event{
				Name: f.string(), Time: f.time(), Attributes: f.attrs(0, f.intn(3)), DroppedAttributeCount: f.count(),
			})
		}
		for range f.intn(3) {
			s.Links = append(s.Links, sdktrace.Link{
				SpanContext: f.spanContext(), Attributes: f.attrs(0, f.intn(3)), DroppedAttributeCount: f.count(),
			})
		}
		spans[i] = s.Snapshot()
	}
	return spans
}

// unrolled returns one ResourceSpans per span, each with a single
// ScopeSpans holding that span, so spans can be compared with their
// envelopes.
func unrolled(req *coltracepb.ExportTraceServiceRequest) []*tracepb.ResourceSpans {
	var out []*tracepb.ResourceSpans
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out = append(out, &tracepb.ResourceSpans{
					Resource:  rs.Resource,
					SchemaUrl: rs.SchemaUrl,
					ScopeSpans: []*tracepb.ScopeSpans{{
						Scope: ss.Scope, SchemaUrl: ss.SchemaUrl, Spans: []*tracepb.Span{s},
					}},
				})
			}
		}
	}
	return out
}

var fuzzSeeds = [][]byte{
	nil,
	[]byte("a few bytes"),
	bytes.Repeat([]byte{0xff}, 64),
	bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, 40),
	bytes.Repeat([]byte("\x0b\x0a\x09\x08\xc3\x28"), 100),
	[]byte("\x07\x07\x07\x07\x07\x07\x07\x07\x0a\x0a\x0a\x0a\x0b\x0b\x0b\x0b\xfe\xfd\xfc"),
}

func FuzzEncode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(byte(0), s)
		f.Add(byte(37), s)
	}
	enc := NewEncoder()
	f.Fuzz(func(t *testing.T, limit byte, data []byte) {
		src := &fuzzSource{data: data}
		spans := src.spans()
		var conv converter
		want := conv.request(spans)
		n := countNonNil(spans)

		maxBytes := 0
		if limit > 0 {
			maxBytes = 60 + int(limit)*8
		}
		reqs, res := enc.Encode(spans, maxBytes, nil)
		defer func() {
			for _, r := range reqs {
				r.Release()
			}
		}()
		if n == 0 {
			if len(reqs) != 0 || res != (Result{}) {
				t.Fatalf("%d requests, %+v for no spans", len(reqs), res)
			}
			return
		}
		if maxBytes == 0 {
			if len(reqs) != 1 || res.TooLarge != 0 {
				t.Fatalf("%d requests, %+v", len(reqs), res)
			}
			body := reqs[0].Bytes()
			got := decode(t, body)
			assertEqual(t, want, got)
			if res.Repaired != conv.repaired {
				t.Errorf("Repaired = %d, reference repaired %d", res.Repaired, conv.repaired)
			}
			if c, err := CountSpans(body); err != nil || c != n || reqs[0].Spans() != n {
				t.Errorf("CountSpans = %d, %v; Spans() = %d; want %d", c, err, reqs[0].Spans(), n)
			}
			if n >= 2 {
				a, b, err := Split(body)
				if err != nil {
					t.Fatal(err)
				}
				halves := append(unrolled(decode(t, a)), unrolled(decode(t, b))...)
				whole := unrolled(got)
				if len(halves) != len(whole) {
					t.Fatalf("halves hold %d spans, want %d", len(halves), len(whole))
				}
				for i := range whole {
					assertEqual(t, whole[i], halves[i])
				}
			}
			js, err := AppendJSON(nil, body)
			if err != nil {
				t.Fatal(err)
			}
			assertEqual(t, got, fromOTLPJSON(t, js))
			return
		}
		// With a limit: every request fits, and the spans sent are the
		// reference's, in order, less those reported too large.
		whole := unrolled(want)
		var sent []*tracepb.ResourceSpans
		total := 0
		for _, r := range reqs {
			if len(r.Bytes()) > maxBytes {
				t.Fatalf("request of %d bytes exceeds %d", len(r.Bytes()), maxBytes)
			}
			sent = append(sent, unrolled(decode(t, r.Bytes()))...)
			total += r.Spans()
		}
		if len(sent) != n-res.TooLarge || total != len(sent) {
			t.Fatalf("%d spans sent, Spans() total %d, %d too large, of %d", len(sent), total, res.TooLarge, n)
		}
		j := 0
		for _, s := range sent {
			for j < len(whole) && !proto.Equal(whole[j], s) {
				j++
			}
			if j == len(whole) {
				t.Fatal("a sent span is not in the reference, or out of order")
			}
			j++
		}
	})
}

func FuzzSplit(f *testing.F) {
	for _, s := range fuzzSeeds {
		spans := (&fuzzSource{data: s}).spans()
		reqs, _ := NewEncoder().Encode(spans, 0, nil)
		for _, r := range reqs {
			f.Add(bytes.Clone(r.Bytes()))
			r.Release()
		}
	}
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := CountSpans(body)
		a, b, splitErr := Split(body)
		if err != nil {
			if splitErr == nil {
				t.Fatalf("Split succeeded where CountSpans failed: %v", err)
			}
			return
		}
		if n < 2 {
			if splitErr == nil {
				t.Fatal("Split succeeded with fewer than two spans")
			}
			return
		}
		if splitErr != nil {
			t.Fatalf("Split: %v", splitErr)
		}
		na, errA := CountSpans(a)
		nb, errB := CountSpans(b)
		if errA != nil || errB != nil || na+nb != n || na != n-n/2 {
			t.Fatalf("halves hold %d (%v) + %d (%v) spans, want %d", na, errA, nb, errB, n)
		}
		_, _ = AppendJSON(nil, body) // must not panic
	})
}
