package bench_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

var (
	deliveryDuration = flag.Duration("delivery.duration", time.Second,
		"load duration of each latency scenario in BenchmarkDelivery; the outage scenarios run twice as long")
	deliveryRate   = flag.Int("delivery.rate", scenario.DefaultRate, "offered load of BenchmarkDelivery, spans per second")
	deliveryOutage = flag.Duration("delivery.outage", 500*time.Millisecond, "outage length in BenchmarkDelivery")
)

// BenchmarkDelivery runs every delivery scenario through both pipelines:
// a fixed offered load for a fixed time against a loopback receiver with
// added latency or an outage. One iteration is one whole run, so
// -benchtime=1x runs each once; ns/op is the length of a run. The figures
// that matter are reported as metrics, averaged over the iterations:
//
//	delivered%       spans delivered before the shutdown deadline / spans ended
//	dropped%         the rest
//	p99-End-ns       99th percentile of span.End() in the application's goroutines
//	CPU-ns/delivered process CPU time per delivered span (receiver included)
//	peak-live-MiB    largest live heap during the run
//
// The compare command runs the same scenarios at full length.
func BenchmarkDelivery(b *testing.B) {
	for _, sc := range scenario.Standard(*deliveryDuration, *deliveryOutage) {
		for _, kind := range sc.Pipelines(scenario.Kinds) {
			b.Run(sc.Name+"/"+string(kind), func(b *testing.B) {
				var (
					ended, delivered int64
					cpu              time.Duration
					end              scenario.Histogram
					peak             uint64
				)
				for b.Loop() {
					res, err := scenario.Run(context.Background(), sc, kind, scenario.RunConfig{Rate: *deliveryRate})
					if err != nil {
						b.Fatal(err)
					}
					if res.Unsettled {
						b.Fatalf("%s: the pipeline was still running %s after its shutdown deadline",
							kind, scenario.DefaultSettleTimeout)
					}
					ended += res.Ended
					delivered += res.Delivered
					cpu += res.Usage.CPU
					end.Merge(&res.End)
					peak = max(peak, res.Usage.PeakLiveHeap)
				}
				if ended > 0 {
					b.ReportMetric(100*float64(delivered)/float64(ended), "delivered%")
					b.ReportMetric(100*float64(ended-delivered)/float64(ended), "dropped%")
				}
				if delivered > 0 {
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(delivered), "CPU-ns/delivered")
				}
				b.ReportMetric(float64(end.Quantile(0.99).Nanoseconds()), "p99-End-ns")
				b.ReportMetric(float64(peak)/(1<<20), "peak-live-MiB")
			})
		}
	}
}
