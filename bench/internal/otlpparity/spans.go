package otlpparity

import (
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// RandomSpans returns n spans drawn from a generator seeded with seed:
// otlptest.RandomSpans, every field of an OTLP span, strings valid UTF-8 as
// the stock exporter requires.
func RandomSpans(seed uint64, n int) []sdktrace.ReadOnlySpan { return otlptest.RandomSpans(seed, n) }

// BenchSpans records n server spans with eight attributes each from a real
// TracerProvider: otlptest.SDKSpans, the snapshots a batch span processor
// hands an exporter.
func BenchSpans(n int) []sdktrace.ReadOnlySpan { return otlptest.SDKSpans(n) }
