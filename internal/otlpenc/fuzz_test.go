package otlpenc

import (
	"bytes"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// fuzzSpans derives one to eight spans from fuzz input: its first byte
// says how many, the rest drives the kit's generator with invalid UTF-8
// and every extreme an encoder must survive.
func fuzzSpans(data []byte) []sdktrace.ReadOnlySpan {
	n := 1
	if len(data) > 0 {
		n += int(data[0] % 8)
		data = data[1:]
	}
	g := otlptest.NewFuzzRandom(data)
	g.InvalidUTF8, g.Extremes = true, true
	return g.Spans(n)
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
		spans := fuzzSpans(data)
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
		spans := fuzzSpans(s)
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
