package bench_test

// Parity and speed of internal/otlpenc against the stock OTLP pipeline:
// the stock otlptrace exporter (tracetransform + proto.Marshal) and the
// tracekeeper encoder are given the same spans.

import (
	"context"
	"runtime"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/bench/internal/encodecost"
	"github.com/tracekeeper/tracekeeper/bench/internal/otlpparity"
	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
)

// stockHTTP starts a loopback capture server and the stock OTLP/HTTP
// exporter sending to it without retries; both are closed with the test.
func stockHTTP(t *testing.T, opts ...otlptracehttp.Option) (*otlptrace.Exporter, *otlpparity.Server) {
	t.Helper()
	srv := otlpparity.NewServer()
	t.Cleanup(srv.Close)
	opts = append([]otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(srv.URL + "/v1/traces"),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	}, opts...)
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp, srv
}

// mustDecode reads body with read, failing the test on error.
func mustDecode(t *testing.T, read func([]byte) (*coltracepb.ExportTraceServiceRequest, error), body []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	req, err := read(body)
	if err != nil {
		t.Fatal(err)
	}
	return otlpparity.Normalize(req)
}

// TestEncodeParityWithStock exports the same random spans through the stock
// otlptracehttp exporter to a loopback server and through the encoder, one
// request per ExportSpans call, and requires the decoded requests to be
// proto.Equal once resources are put in the same order.
func TestEncodeParityWithStock(t *testing.T) {
	stock, srv := stockHTTP(t)
	enc := otlpenc.NewEncoder()
	for seed := range uint64(9) {
		spans := otlpparity.RandomSpans(seed, 40+int(seed)*30)
		if seed == 8 {
			// The SDK's own snapshots, which the encoder reads in place.
			spans = otlpparity.BenchSpans(100)
		}
		if err := stock.ExportSpans(context.Background(), spans); err != nil {
			t.Fatalf("seed %d: stock export: %v", seed, err)
		}
		bodies, types := srv.Take()
		if len(bodies) != 1 || types[0] != "application/x-protobuf" {
			t.Fatalf("seed %d: the server got %d requests (%v)", seed, len(bodies), types)
		}
		reqs, res := enc.Encode(spans, 0, nil)
		if len(reqs) != 1 || res != (otlpenc.Result{}) {
			t.Fatalf("seed %d: %d requests, %+v", seed, len(reqs), res)
		}
		want := mustDecode(t, otlpparity.Decode, bodies[0])
		got := mustDecode(t, otlpparity.Decode, reqs[0].Bytes())
		reqs[0].Release()
		if !proto.Equal(want, got) {
			t.Fatalf("seed %d: the encoder's request differs from the stock exporter's", seed)
		}
	}
}

// TestEncodeJSONParityWithStock checks otlpenc.AppendJSON against the
// stock exporter: read back, it must equal the request the stock exporter
// sends as protobuf, and also the one it sends with EncodingJSON, except
// that the stock JSON encoder drops empty bytes values.
func TestEncodeJSONParityWithStock(t *testing.T) {
	stockPB, srvPB := stockHTTP(t)
	stockJSON, srvJSON := stockHTTP(t, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	enc := otlpenc.NewEncoder()
	for seed := range uint64(4) {
		spans := otlpparity.RandomSpans(100+seed, 50)
		for _, exp := range []*otlptrace.Exporter{stockPB, stockJSON} {
			if err := exp.ExportSpans(context.Background(), spans); err != nil {
				t.Fatalf("seed %d: stock export: %v", seed, err)
			}
		}
		pb, pbTypes := srvPB.Take()
		js, jsTypes := srvJSON.Take()
		if len(pb) != 1 || len(js) != 1 || jsTypes[0] != "application/json" {
			t.Fatalf("seed %d: the servers got %v and %v", seed, pbTypes, jsTypes)
		}
		reqs, _ := enc.Encode(spans, 0, nil)
		line, err := otlpenc.AppendJSON(nil, reqs[0].Bytes())
		reqs[0].Release()
		if err != nil {
			t.Fatal(err)
		}
		got := mustDecode(t, otlpparity.DecodeJSON, line)
		if !proto.Equal(mustDecode(t, otlpparity.Decode, pb[0]), got) {
			t.Fatalf("seed %d: the encoder's OTLP/JSON differs from the stock protobuf request", seed)
		}
		if !proto.Equal(otlpparity.ClearEmptyBytes(mustDecode(t, otlpparity.DecodeJSON, js[0])), otlpparity.ClearEmptyBytes(got)) {
			t.Fatalf("seed %d: the encoder's OTLP/JSON differs from the stock OTLP/JSON", seed)
		}
	}
}

// TestEncodeInvalidUTF8 shows what one bad string does: the stock exporter
// fails the whole batch, the encoder repairs the string and sends every
// span.
func TestEncodeInvalidUTF8(t *testing.T) {
	spans := otlpparity.RandomSpans(7, 20)
	bad := tracetest.SpanStubFromReadOnlySpan(spans[3])
	bad.Attributes = append(bad.Attributes, attribute.String("user.name", "J\xf6rg"))
	spans[3] = bad.Snapshot()

	stock, _ := stockHTTP(t)
	if err := stock.ExportSpans(context.Background(), spans); err == nil {
		t.Error("the stock exporter accepted invalid UTF-8")
	}
	reqs, res := otlpenc.NewEncoder().Encode(spans, 0, nil)
	defer reqs[0].Release()
	if res.Repaired != 1 || reqs[0].Spans() != len(spans) {
		t.Errorf("Repaired = %d, Spans = %d; want 1, %d", res.Repaired, reqs[0].Spans(), len(spans))
	}
}

// BenchmarkEncode measures turning a batch of 512 spans with eight
// attributes each, recorded from a real TracerProvider, into OTLP protobuf
// bytes:
//
//   - stock-transform: the stock otlptrace.Exporter.ExportSpans with a client
//     that does nothing, which is the stock tracetransform.Spans alone;
//   - stock: the same with a client that proto.Marshal's the request as
//     otlptracehttp does before sending: the stock exporter's whole
//     encoding cost, HTTP left out;
//   - tracekeeper: otlpenc.Encoder.Encode into one pooled request, released
//     after each batch.
//
// Each reports ns/span and allocs/span.
func BenchmarkEncode(b *testing.B) {
	spans := otlpparity.BenchSpans(512)
	ctx := context.Background()
	stock := func(marshal bool) func(*testing.B) {
		return func(b *testing.B) {
			exp, err := otlptrace.New(ctx, encodecost.MarshalClient{Marshal: marshal})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = exp.Shutdown(ctx) }()
			perSpan(b, len(spans), func() {
				if err := exp.ExportSpans(ctx, spans); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
	b.Run("stock-transform", stock(false))
	b.Run("stock", stock(true))
	b.Run("tracekeeper", func(b *testing.B) {
		enc := otlpenc.NewEncoder()
		var out []*otlpenc.Request
		perSpan(b, len(spans), func() {
			out, _ = enc.Encode(spans, 0, out[:0])
			for _, r := range out {
				r.Release()
			}
		})
	})
}

// perSpan times op, which handles n spans, and reports ns/span and
// allocs/span.
func perSpan(b *testing.B, n int, op func()) {
	op() // warm caches and pools
	b.ReportAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	start := ms.Mallocs
	b.ResetTimer()
	for b.Loop() {
		op()
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	total := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/span")
	b.ReportMetric(float64(ms.Mallocs-start)/total, "allocs/span")
}

// BenchmarkEncodePaired measures the ratio BenchmarkEncode is quoted for,
// stock (tracetransform + proto.Marshal) against tracekeeper, from runs
// that alternate in one process (see package encodecost): every iteration
// is a pair of turns, one per side, the side that goes first alternating;
// a turn starts with a garbage collection and one untimed batch, then
// times encodecost.SampleBatches batches of the same 512 spans back to
// back by the thread's CPU time. Reported are the median and spread of the pairs' ratios
// (ratio-median, ratio-min, ratio-max), the median time per span of each
// side (stock-ns/span, ours-ns/span) and their allocations per span. At
// least ten pairs run whatever b.N is; ns/op is the time of one pair. The
// compare command runs the same measurement for the README.
func BenchmarkEncodePaired(b *testing.B) {
	ctx := context.Background()
	p, err := encodecost.New(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Close(ctx) }()
	b.ResetTimer()
	res, err := p.Run(ctx, b.N)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.RatioMin, "ratio-min")
	b.ReportMetric(res.RatioMax, "ratio-max")
	b.ReportMetric(res.RatioMedian, "ratio-median")
	b.ReportMetric(res.StockNs, "stock-ns/span")
	b.ReportMetric(res.OursNs, "ours-ns/span")
	b.ReportMetric(res.StockAllocs, "stock-allocs/span")
	b.ReportMetric(res.OursAllocs, "ours-allocs/span")
	b.ReportMetric(float64(res.Pairs), "pairs")
}
