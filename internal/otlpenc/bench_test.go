package otlpenc

import (
	"runtime"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

const benchBatch = 512

// perSpan reports ns/span and allocs/span for a benchmark whose every
// iteration handles spans spans. Call it after the timed loop; start is the
// malloc count read before the loop.
func perSpan(b *testing.B, start uint64, spans int) {
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := float64(b.N) * float64(spans)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
	b.ReportMetric(float64(ms.Mallocs-start)/n, "allocs/span")
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// BenchmarkEncode encodes a batch of 512 server spans with eight
// attributes each into one request and releases it.
func BenchmarkEncode(b *testing.B) {
	spans := otlptest.Spans(benchBatch)
	enc := NewEncoder()
	var out []*Request
	out, _ = enc.Encode(spans, 0, out) // warm the caches and the pool
	out[0].Release()
	b.ReportAllocs()
	b.ResetTimer()
	start := mallocs()
	for b.Loop() {
		out, _ = enc.Encode(spans, 0, out[:0])
		b.SetBytes(int64(len(out[0].Bytes())))
		out[0].Release()
	}
	perSpan(b, start, benchBatch)
}

// BenchmarkEncodeSDKSpans is BenchmarkEncode over spans recorded from a
// real TracerProvider. The SDK's snapshots copy themselves on every method
// call, which makes reading them dearer than reading tracetest stubs.
func BenchmarkEncodeSDKSpans(b *testing.B) {
	spans := otlptest.SDKSpans(benchBatch)
	enc := NewEncoder()
	var out []*Request
	b.ReportAllocs()
	start := mallocs()
	for b.Loop() {
		out, _ = enc.Encode(spans, 0, out[:0])
		out[0].Release()
	}
	perSpan(b, start, benchBatch)
}

// BenchmarkEncodeSplit is BenchmarkEncode with requests capped at 16 KiB.
func BenchmarkEncodeSplit(b *testing.B) {
	spans := otlptest.Spans(benchBatch)
	enc := NewEncoder()
	var out []*Request
	b.ReportAllocs()
	start := mallocs()
	for b.Loop() {
		out, _ = enc.Encode(spans, 16<<10, out[:0])
		for _, r := range out {
			r.Release()
		}
	}
	perSpan(b, start, benchBatch)
}

// BenchmarkReference converts the same batch to the generated tracepb
// structs and marshals them with proto.Marshal, the shape of the stock
// exporter's work. The stock exporter itself is measured in the bench
// module.
func BenchmarkReference(b *testing.B) {
	spans := otlptest.Spans(benchBatch)
	b.ReportAllocs()
	start := mallocs()
	for b.Loop() {
		body, err := proto.Marshal(reference(spans))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
	}
	perSpan(b, start, benchBatch)
}
