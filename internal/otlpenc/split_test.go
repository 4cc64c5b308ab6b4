package otlpenc

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// encodeAll encodes spans into one request and returns a copy of its bytes.
func encodeAll(t testing.TB, spans []sdktrace.ReadOnlySpan) []byte {
	t.Helper()
	reqs, _ := NewEncoder().Encode(spans, 0, nil)
	if len(reqs) != 1 {
		t.Fatalf("got %d requests", len(reqs))
	}
	defer reqs[0].Release()
	return bytes.Clone(reqs[0].Bytes())
}

// spansOf returns the original spans of a decoded request, found by span id.
func spansOf(req *coltracepb.ExportTraceServiceRequest, byID map[trace.SpanID]sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range flatten(req) {
		out = append(out, byID[trace.SpanID(s.SpanId)])
	}
	return out
}

func TestSplit(t *testing.T) {
	for _, n := range []int{2, 3, 4, 7, 24, 200} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			spans := mixedBatch(n)
			byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
			for _, s := range spans {
				byID[s.SpanContext().SpanID()] = s
			}
			body := encodeAll(t, spans)
			a, b, err := Split(body)
			if err != nil {
				t.Fatal(err)
			}
			reqA, reqB := decode(t, a), decode(t, b)
			if got, want := len(flatten(reqA)), n-n/2; got != want {
				t.Errorf("first half has %d spans, want %d", got, want)
			}
			// Each half is what the reference makes of its spans, and
			// together they hold every span once, in order.
			spansA, spansB := spansOf(reqA, byID), spansOf(reqB, byID)
			assertEqual(t, reference(spansA), reqA)
			assertEqual(t, reference(spansB), reqB)
			whole := flatten(decode(t, body))
			halves := append(flatten(reqA), flatten(reqB)...)
			if len(halves) != len(whole) {
				t.Fatalf("halves hold %d spans, want %d", len(halves), len(whole))
			}
			for i := range whole {
				assertEqual(t, whole[i], halves[i])
			}
			if na, _ := CountSpans(a); na != len(spansA) {
				t.Errorf("CountSpans(a) = %d, want %d", na, len(spansA))
			}
		})
	}
}

func TestSplitDownToSingleSpans(t *testing.T) {
	spans := mixedBatch(37)
	queue := [][]byte{encodeAll(t, spans)}
	var singles []*coltracepb.ExportTraceServiceRequest
	for len(queue) > 0 {
		body := queue[0]
		queue = queue[1:]
		a, b, err := Split(body)
		if errors.Is(err, ErrTooFewSpans) {
			singles = append(singles, decode(t, body))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		queue = append(queue, a, b)
	}
	if len(singles) != len(spans) {
		t.Fatalf("got %d single-span requests, want %d", len(singles), len(spans))
	}
	for _, req := range singles {
		s := flatten(req)[0]
		i := int(spanIDNumber(s.SpanId)) - 1
		assertEqual(t, reference(spans[i:i+1]), req)
	}
}

func spanIDNumber(id []byte) uint64 {
	var n uint64
	for _, b := range id {
		n = n<<8 | uint64(b)
	}
	return n
}

func TestSplitKeepsUnknownEnvelopeFields(t *testing.T) {
	span := func(name string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, 5, protowire.BytesType), name)
	}
	unknown := func(num protowire.Number) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), 7)
	}
	var ss []byte
	ss = append(ss, unknown(99)...) // before the spans, numbered after them
	for _, name := range []string{"a", "b", "c"} {
		ss = protowire.AppendBytes(protowire.AppendTag(ss, 2, protowire.BytesType), span(name))
	}
	var rs []byte
	rs = protowire.AppendBytes(protowire.AppendTag(rs, 2, protowire.BytesType), ss)
	rs = append(rs, unknown(42)...)
	body := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)

	a, b, err := Split(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, half := range [][]byte{a, b} {
		req := decode(t, half)
		if len(req.ResourceSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans) != 1 {
			t.Fatalf("unexpected shape: %v", req)
		}
		if len(req.ResourceSpans[0].ProtoReflect().GetUnknown()) == 0 ||
			len(req.ResourceSpans[0].ScopeSpans[0].ProtoReflect().GetUnknown()) == 0 {
			t.Error("an unknown envelope field was lost")
		}
	}
	if n, _ := CountSpans(a); n != 2 {
		t.Errorf("first half has %d spans, want 2", n)
	}
}

func TestSplitAndCountErrors(t *testing.T) {
	one := encodeAll(t, otlptest.Spans(1))
	tests := []struct {
		name   string
		body   []byte
		count  int
		splitE error
		countE error
	}{
		{name: "empty", body: nil, count: 0, splitE: ErrTooFewSpans},
		{name: "one span", body: one, count: 1, splitE: ErrTooFewSpans},
		{name: "truncated", body: one[:len(one)-3], splitE: ErrMalformed, countE: ErrMalformed},
		{name: "bad tag", body: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, splitE: ErrMalformed, countE: ErrMalformed},
		{name: "field 1 as varint", body: []byte{1 << 3, 5}, splitE: ErrMalformed, countE: ErrMalformed},
		{name: "scope_spans as fixed32", body: []byte{0x0a, 5, 2<<3 | 5, 1, 2, 3, 4}, splitE: ErrMalformed, countE: ErrMalformed},
		{name: "span as varint", body: []byte{0x0a, 4, 0x12, 2, 2 << 3, 1}, splitE: ErrMalformed, countE: ErrMalformed},
		{name: "length past the end", body: []byte{0x0a, 100, 0}, splitE: ErrMalformed, countE: ErrMalformed},
		{name: "unknown top-level field", body: append([]byte{2<<3 | 0, 1}, one...), count: 1, splitE: ErrTooFewSpans},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := CountSpans(tt.body)
			if !errors.Is(err, tt.countE) || (tt.countE == nil && err != nil) {
				t.Errorf("CountSpans error = %v, want %v", err, tt.countE)
			}
			if err == nil && n != tt.count {
				t.Errorf("CountSpans = %d, want %d", n, tt.count)
			}
			if _, _, err := Split(tt.body); !errors.Is(err, tt.splitE) {
				t.Errorf("Split error = %v, want %v", err, tt.splitE)
			}
		})
	}
}
