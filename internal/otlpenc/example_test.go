package otlpenc_test

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
)

// exampleSpans returns n finished spans of one service.
func exampleSpans(n int) []sdktrace.ReadOnlySpan {
	res := resource.NewSchemaless(attribute.String("service.name", "checkout"))
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	spans := make([]sdktrace.ReadOnlySpan, n)
	for i := range spans {
		spans[i] = tracetest.SpanStub{
			Name: "GET /cart",
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 15: byte(i + 1)},
				SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 7: byte(i + 1)},
				TraceFlags: trace.FlagsSampled,
			}),
			SpanKind:             trace.SpanKindServer,
			StartTime:            start,
			EndTime:              start.Add(12 * time.Millisecond),
			Attributes:           []attribute.KeyValue{attribute.Int("http.response.status_code", 500)},
			Status:               sdktrace.Status{Code: codes.Error, Description: "upstream timeout"},
			Resource:             res,
			InstrumentationScope: instrumentation.Scope{Name: "net/http"},
		}.Snapshot()
	}
	return spans
}

func ExampleEncoder_Encode() {
	enc := otlpenc.NewEncoder()

	// Cap each request at 1 KiB: the batch is cut between spans.
	reqs, res := enc.Encode(exampleSpans(10), 1024, nil)
	for _, r := range reqs {
		fmt.Printf("%d spans in %d bytes\n", r.Spans(), len(r.Bytes()))
		r.Release() // after the send, or the drop
	}
	fmt.Printf("repaired %d, too large %d\n", res.Repaired, res.TooLarge)
	// Output:
	// 7 spans in 909 bytes
	// 3 spans in 417 bytes
	// repaired 0, too large 0
}

func ExampleSplit() {
	reqs, _ := otlpenc.NewEncoder().Encode(exampleSpans(5), 0, nil)
	defer reqs[0].Release()

	// The server answered 413: send the request as two halves.
	a, b, err := otlpenc.Split(reqs[0].Bytes())
	if err != nil {
		panic(err)
	}
	na, _ := otlpenc.CountSpans(a)
	nb, _ := otlpenc.CountSpans(b)
	fmt.Println(na, nb)
	// Output:
	// 3 2
}

func ExampleAppendJSON() {
	reqs, _ := otlpenc.NewEncoder().Encode(exampleSpans(1), 0, nil)
	defer reqs[0].Release()

	line, err := otlpenc.AppendJSON(nil, reqs[0].Bytes())
	if err != nil {
		panic(err)
	}
	fmt.Println(string(line))
	// Output:
	// {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeSpans":[{"scope":{"name":"net/http"},"spans":[{"traceId":"4bf92f35000000000000000000000001","spanId":"00f067aa00000001","name":"GET /cart","kind":2,"startTimeUnixNano":"1772366400000000000","endTimeUnixNano":"1772366400012000000","attributes":[{"key":"http.response.status_code","value":{"intValue":"500"}}],"status":{"message":"upstream timeout","code":2},"flags":257}]}]}]}
}
