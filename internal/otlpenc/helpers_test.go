package otlpenc

import (
	"encoding/binary"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

var (
	epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	resA = resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "checkout"),
		attribute.String("service.version", "1.4.2"),
		attribute.Int64("process.pid", 4242),
	)
	// resA2 is a different pointer with the attributes of resA and another
	// schema URL: the stock exporter groups it with resA.
	resA2 = resource.NewWithAttributes("https://example.com/other-schema",
		attribute.String("service.name", "checkout"),
		attribute.String("service.version", "1.4.2"),
		attribute.Int64("process.pid", 4242),
	)
	resB     = resource.NewSchemaless(attribute.String("service.name", "payments"))
	resEmpty = resource.Empty()

	scopeA = instrumentation.Scope{Name: "github.com/acme/http", Version: "v1.2.0", SchemaURL: "https://opentelemetry.io/schemas/1.24.0"}
	scopeB = instrumentation.Scope{Name: "github.com/acme/db"}
	scopeC = instrumentation.Scope{
		Name:       "github.com/acme/queue",
		Attributes: attribute.NewSet(attribute.String("queue.kind", "kafka"), attribute.Bool("queue.async", true)),
	}
	// scopeEmptySet differs from the zero Scope only by an empty, non-zero
	// attribute set: the stock exporter sends it as an empty scope message.
	scopeEmptySet = instrumentation.Scope{Attributes: attribute.NewSet()}
)

func traceID(n uint64) trace.TraceID {
	var id trace.TraceID
	binary.BigEndian.PutUint64(id[:8], 0x0af7651916cd43dd)
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

func spanID(n uint64) trace.SpanID {
	var id trace.SpanID
	binary.BigEndian.PutUint64(id[:], n)
	return id
}

func spanContext(n uint64, sampled, remote bool) trace.SpanContext {
	cfg := trace.SpanContextConfig{TraceID: traceID(n), SpanID: spanID(n), Remote: remote}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	return trace.NewSpanContext(cfg)
}

// everyValue holds one attribute of every attribute.Value type, zero and
// edge values included: NaN and infinities, the int64 bounds, an empty
// key, empty and nil slices and maps, a string whose length takes two
// varint bytes. otlptest.AllTypes has every type but none of these edges.
func everyValue() []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Bool("bool.true", true),
		attribute.Bool("bool.false", false),
		attribute.Int64("int.zero", 0),
		attribute.Int64("int.neg", -1),
		attribute.Int64("int.min", math.MinInt64),
		attribute.Int64("int.max", math.MaxInt64),
		attribute.Float64("float.zero", 0),
		attribute.Float64("float.neg", -2.5),
		attribute.Float64("float.nan", math.NaN()),
		attribute.Float64("float.inf", math.Inf(1)),
		attribute.String("string", "value"),
		attribute.String("string.empty", ""),
		attribute.String("string.long", string(make([]byte, 300))),
		attribute.String("", "empty key"),
		attribute.BoolSlice("bools", []bool{true, false, true}),
		attribute.BoolSlice("bools.empty", nil),
		attribute.Int64Slice("ints", []int64{0, 1, -1, math.MaxInt64, 300}),
		attribute.Int64Slice("ints.empty", []int64{}),
		attribute.Float64Slice("floats", []float64{0, 1.5, math.Inf(-1)}),
		attribute.StringSlice("strings", []string{"a", "", "ccc"}),
		attribute.StringSlice("strings.empty", nil),
		attribute.ByteSlice("bytes", []byte{0, 0xff, 'x'}),
		attribute.ByteSlice("bytes.empty", nil),
		{Key: "empty.value"},
		attribute.Slice("slice", attribute.IntValue(1), attribute.StringValue("two"),
			attribute.SliceValue(attribute.BoolValue(true)), attribute.MapValue(attribute.Int("k", 3)), attribute.Value{}),
		attribute.Slice("slice.empty"),
		attribute.Map("map", attribute.String("a", "b"), attribute.Float64("c", 1),
			attribute.Map("nested", attribute.StringSlice("deep", []string{"x", "y"}))),
		attribute.Map("map.empty"),
	}
}
