package scenario_test

import (
	"fmt"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

func ExampleCountSpans() {
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{
			{Spans: []*tracepb.Span{{Name: "GET /"}, {Name: "SELECT"}}},
			{Spans: []*tracepb.Span{{Name: "publish"}}},
		},
	}}}
	body, err := proto.Marshal(req)
	if err != nil {
		panic(err)
	}
	n, err := scenario.CountSpans(body)
	fmt.Println(n, err)
	// Output: 3 <nil>
}

func ExampleHistogram() {
	var h scenario.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	fmt.Println("p50 ≥", h.Quantile(0.5))
	fmt.Println("p99 ≥", h.Quantile(0.99))
	fmt.Println("max =", h.Max())
	// Output:
	// p50 ≥ 507.903µs
	// p99 ≥ 999.423µs
	// max = 1ms
}

func ExampleStandard() {
	for _, sc := range scenario.Standard(5*time.Second, 2*time.Second) {
		fmt.Printf("%-15s %-16s load for %s\n", sc.Name, sc.Label(), sc.Duration)
	}
	// Output:
	// latency-0ms     0s latency       load for 5s
	// latency-20ms    20ms latency     load for 5s
	// latency-100ms   100ms latency    load for 5s
	// latency-500ms   500ms latency    load for 5s
	// latency-1s      1s latency       load for 5s
	// outage-503      503 for 2s       load for 10s
	// outage-refused  refused for 2s   load for 10s
	// overload-4      4 at once, 100ms latency, 503 beyond load for 5s
}
