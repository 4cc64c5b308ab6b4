package otlptest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Attributes8 returns the eight attributes of the project's benchmark
// span, the shape of a typical HTTP server span.
func Attributes8(i int) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("http.request.method", "GET"),
		attribute.String("url.path", "/api/v1/orders"),
		attribute.Int("http.response.status_code", 200),
		attribute.String("server.address", "orders.internal"),
		attribute.Int("server.port", 8080),
		attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
		attribute.Bool("tk.cache_hit", i%2 == 0),
		attribute.Float64("tk.load", 0.75),
	}
}

// AllTypes returns one attribute of every type the attribute API offers,
// nested slices and maps and an empty value included, with values that
// vary with i.
func AllTypes(i int) []attribute.KeyValue {
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

// ids returns the trace and span ids of fixture span i: distinct for i
// below 65536.
func ids(i int) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	var sid trace.SpanID
	tid[0], tid[14], tid[15] = 1, byte(i>>8), byte(i)
	sid[0], sid[6], sid[7] = 1, byte(i>>8), byte(i)
	return tid, sid
}

func fixture(i int, stub tracetest.SpanStub) sdktrace.ReadOnlySpan {
	tid, sid := ids(i)
	stub.SpanContext = trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	})
	stub.StartTime = time.Unix(100, 0)
	stub.EndTime = time.Unix(101, 0)
	return stub.Snapshot()
}

// Spans returns n ended, sampled server spans with distinct ids and the
// eight attributes of Attributes8.
func Spans(n int) []sdktrace.ReadOnlySpan {
	out := make([]sdktrace.ReadOnlySpan, n)
	for i := range out {
		out[i] = fixture(i, tracetest.SpanStub{
			Name:       fmt.Sprintf("op-%d", i%8),
			SpanKind:   trace.SpanKindServer,
			Attributes: Attributes8(i),
		})
	}
	return out
}

// Indexed returns n ended, sampled spans named "op" with distinct ids and
// a single attribute, i, their index: the smallest spans a test can tell
// apart, for tests whose request sizes must stay small.
func Indexed(n int) []sdktrace.ReadOnlySpan {
	out := make([]sdktrace.ReadOnlySpan, n)
	for i := range out {
		out[i] = fixture(i, tracetest.SpanStub{
			Name:       "op",
			Attributes: []attribute.KeyValue{attribute.Int("i", i)},
		})
	}
	return out
}

// SDKSpans records n server spans with the attributes of Attributes8 from
// a real TracerProvider, with one resource and one scope: the snapshots a
// batch span processor hands an exporter, as benchmarks measure them.
func SDKSpans(n int) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(
		resource.NewSchemaless(attribute.String("service.name", "orders"), attribute.String("service.version", "1.4.2"))))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("github.com/acme/http", trace.WithInstrumentationVersion("v1.2.0"))
	for i := range n {
		_, s := tr.Start(context.Background(), "GET /api/v1/orders", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(Attributes8(i)...))
		s.End()
	}
	return rec.Ended()
}
