package report_test

import (
	"os"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/report"
	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
	"github.com/tracekeeper/tracekeeper/exporter"
)

func ExampleText() {
	sc := scenario.Standard(5*time.Second, 2*time.Second)[2] // 100 ms of latency
	stock := &scenario.Result{
		Scenario: sc, Pipeline: scenario.Stock,
		Offered: 1_000_000, Ended: 1_000_000, Handed: 24_064, Delivered: 24_064,
		Usage: scenario.Usage{CPU: 4 * time.Second, PeakLiveHeap: 12 << 20},
	}
	ours := &scenario.Result{
		Scenario: sc, Pipeline: scenario.Ours,
		Offered: 1_000_000, Ended: 1_000_000, Handed: 1_000_000, Delivered: 1_000_000,
		Usage:    scenario.Usage{CPU: 5 * time.Second, PeakLiveHeap: 20 << 20},
		Exporter: &exporter.Stats{Accepted: 1_000_000, Exported: 1_000_000, MemoryBudget: 32 << 20},
		Watch: scenario.Watch{
			Samples: 250, EndLimit: 48, PeakLimit: 64, RoundTrip: 101 * time.Millisecond, Budget: 32 << 20,
		},
	}
	for _, r := range []*scenario.Result{stock, ours} {
		r.End.Record(2 * time.Microsecond)
	}
	if err := report.Text(os.Stdout, []*scenario.Result{stock, ours}); err != nil {
		panic(err)
	}
	// Output:
	// scenario       backend        delivered stock  delivered ours  ours/stock  p99 End stock  p99 End ours  ours/stock  CPU/delivered stock  CPU/delivered ours  ours/stock  peak heap stock  peak heap ours  ours heap/budget  ours limit end/peak  ours RTT
	// latency-100ms  100ms latency  2.41%            100.0%          41.6×       2.00 µs        2.00 µs       1.00×       166 µs               5.00 µs             0.03×       12.0 MiB         20.0 MiB        0.62×             48 / 64              101 ms
	//
	// scenario       pipeline     offered    ended      dropped by BSP queue  handed to exporter  delivered  exporter drops  left at deadline  books balance  resumed after outage
	// latency-100ms  stock        1,000,000  1,000,000  975,936               24,064              24,064     0 (unreported)  –                 –              –
	// latency-100ms  tracekeeper  1,000,000  1,000,000  0                     1,000,000           1,000,000  0               0                 yes            –
}
