package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

// TestScenarioSmoke runs a short, light load through both pipelines, with
// a healthy backend and through an outage, and checks what the comparison
// relies on: the receiver counts what the pipelines sent, and our exporter
// accounts for every span it was handed. It asserts behaviour only; how
// much is delivered depends on the machine and is left to the benchmarks.
func TestScenarioSmoke(t *testing.T) {
	healthy := scenario.Scenario{Name: "healthy", Duration: time.Second}
	outage := scenario.Scenario{
		Name: "outage", Duration: time.Second,
		Outage: scenario.Unavailable, OutageStart: 200 * time.Millisecond, OutageFor: 300 * time.Millisecond,
	}
	tests := []struct {
		name     string
		sc       scenario.Scenario
		shutdown time.Duration
		// complete: the shutdown has time to send everything, so what was
		// handed to the exporter is exactly what arrived.
		complete bool
	}{
		{"healthy", healthy, time.Minute, true},
		// Spans that failed during the outage wait for a retry longer than
		// the shutdown deadline allows: they are abandoned, and counted.
		{"outage", outage, 500 * time.Millisecond, false},
	}
	for _, tt := range tests {
		for _, kind := range tt.sc.Pipelines(scenario.Kinds) {
			t.Run(tt.name+"/"+string(kind), func(t *testing.T) {
				res, err := scenario.Run(context.Background(), tt.sc, kind, scenario.RunConfig{
					Rate:            20_000,
					ShutdownTimeout: tt.shutdown,
					Decode:          true,
				})
				if err != nil {
					t.Fatal(err)
				}
				if res.Unsettled {
					t.Fatal("the pipeline was still running after the settle timeout")
				}
				t.Logf("ended %d, handed %d, delivered %d, receiver %+v", res.Ended, res.Handed, res.Delivered, res.Receiver)
				if res.Ended == 0 {
					t.Fatal("no span ended")
				}
				// Through an outage, how much gets through before the
				// shutdown deadline depends on the machine's speed: only
				// a complete run must deliver.
				if tt.complete && res.Delivered == 0 {
					t.Fatalf("ended %d, delivered none", res.Ended)
				}
				if res.Receiver.Malformed != 0 {
					t.Errorf("receiver saw %d malformed requests", res.Receiver.Malformed)
				}
				if res.Handed > res.Ended || res.Delivered > res.Handed {
					t.Errorf("ended %d ≥ handed %d ≥ delivered %d does not hold", res.Ended, res.Handed, res.Delivered)
				}
				if tt.complete {
					if res.ShutdownErr != "" {
						t.Fatalf("shutdown: %s", res.ShutdownErr)
					}
					if res.Delivered != res.Handed {
						t.Errorf("delivered %d, want every span handed to the exporter (%d)", res.Delivered, res.Handed)
					}
				}
				if kind == scenario.Ours {
					checkAccounting(t, res, tt.complete)
				}
			})
		}
	}
}

// TestOverloadSmoke runs a light load against a backend that serves two
// requests at once and refuses the rest with 503, through the stock
// pipeline, ours and ours with a fixed pool of two workers. It asserts
// behaviour only: the receiver never serves more than its capacity, a
// fixed pool of that size is never refused, every refusal is counted, and
// our exporter accounts for every span. How much is delivered and how
// often the adaptive limit overshoots depend on the machine's speed and
// are left to the compare command.
func TestOverloadSmoke(t *testing.T) {
	const capacity = 2
	sc := scenario.Scenario{
		Name: "overload", Duration: time.Second,
		Latency: 20 * time.Millisecond, MaxConcurrent: capacity,
	}
	kinds := sc.Pipelines(scenario.Kinds)
	if len(kinds) != 3 || kinds[2] != scenario.OursFixed {
		t.Fatalf("overload pipelines %v, want stock, ours and the fixed pool", kinds)
	}
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			res, err := scenario.Run(context.Background(), sc, kind, scenario.RunConfig{
				Rate:            20_000,
				ShutdownTimeout: time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Unsettled {
				t.Fatal("the pipeline was still running after the settle timeout")
			}
			rs := res.Receiver
			t.Logf("ended %d, handed %d, delivered %d, receiver %+v, watch %+v", res.Ended, res.Handed, res.Delivered, rs, res.Watch)
			if res.Ended == 0 {
				t.Fatal("no span ended")
			}
			if res.ShutdownErr != "" {
				t.Fatalf("shutdown: %s", res.ShutdownErr)
			}
			if rs.PeakConcurrent > capacity {
				t.Errorf("the receiver served %d requests at once, more than its %d", rs.PeakConcurrent, capacity)
			}
			if rs.Refused > rs.Failed || rs.Malformed != 0 {
				t.Errorf("refused %d, failed %d, malformed %d: refusals must be among the failures, and nothing malformed",
					rs.Refused, rs.Failed, rs.Malformed)
			}
			if res.Delivered > res.Handed || res.Handed > res.Ended {
				t.Errorf("ended %d ≥ handed %d ≥ delivered %d does not hold", res.Ended, res.Handed, res.Delivered)
			}
			if got := scenario.RefusedPct(rs); got < 0 || got > 100 {
				t.Errorf("refused share %v%%", got)
			}
			switch kind {
			case scenario.Stock:
				// One export at a time never exceeds a capacity of two.
				if rs.Refused != 0 {
					t.Errorf("stock: %d requests refused, want none", rs.Refused)
				}
				return
			case scenario.OursFixed:
				// A pool as large as the capacity is never refused.
				if rs.Refused != 0 {
					t.Errorf("a fixed pool of %d: %d requests refused, want none", capacity, rs.Refused)
				}
			}
			checkAccounting(t, res, false)
			st := res.Exporter
			// The shutdown had time to finish every attempt: each answer
			// the receiver gave, success or refusal, is an attempt the
			// exporter counted.
			if answers := rs.Requests + rs.Failed; st.Requests < answers {
				t.Errorf("exporter counted %d attempts, the receiver answered %d", st.Requests, answers)
			}
			if st.Exported != res.Delivered {
				t.Errorf("exported %d, receiver counted %d", st.Exported, res.Delivered)
			}
		})
	}
}

// checkAccounting checks our exporter's books after a run.
func checkAccounting(t *testing.T, res *scenario.Result, complete bool) {
	t.Helper()
	st := res.Exporter
	if st == nil {
		t.Fatal("no exporter stats")
	}
	t.Logf("exporter %+v", *st)
	if st.Accepted != res.Handed {
		t.Errorf("accepted %d, want the %d spans handed to ExportSpans", st.Accepted, res.Handed)
	}
	if got := st.Exported + st.Dropped.Total() + st.Queued + st.InFlight; got != st.Accepted {
		t.Errorf("exported %d + dropped %d + queued %d + in flight %d = %d, want accepted %d",
			st.Exported, st.Dropped.Total(), st.Queued, st.InFlight, got, st.Accepted)
	}
	if st.Queued != 0 || st.InFlight != 0 {
		t.Errorf("after shutdown: %d queued, %d in flight; want none", st.Queued, st.InFlight)
	}
	// The receiver counts a request before it answers; the exporter counts
	// it exported once the answer arrives. A request abandoned at the
	// deadline in between is counted by the receiver only.
	if st.Exported > res.Delivered {
		t.Errorf("exported %d, but the receiver counted only %d", st.Exported, res.Delivered)
	}
	if complete {
		if st.Exported != res.Delivered || st.Dropped.Total() != 0 {
			t.Errorf("exported %d, dropped %+v; want all %d delivered and none dropped",
				st.Exported, st.Dropped, res.Delivered)
		}
	}
}

// TestSpoolSmoke runs an outage that the memory budget cannot hold
// through ours with and without a disk spool. Without, the excess is
// dropped as queue_full; with, it goes to disk and everything handed to
// the exporter reaches the receiver once the backend is back. The budget
// is small enough that the spool must be used whatever the machine's
// speed.
func TestSpoolSmoke(t *testing.T) {
	sc := scenario.Scenario{
		Name: "outage", Outage: scenario.Unavailable,
		OutageStart: 200 * time.Millisecond, OutageFor: 1500 * time.Millisecond,
		Duration: 2500 * time.Millisecond, Spool: true,
	}
	kinds := sc.Pipelines([]scenario.Kind{scenario.Ours})
	if len(kinds) != 2 || kinds[1] != scenario.OursSpool {
		t.Fatalf("spool pipelines %v, want ours and ours with a spool", kinds)
	}
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			// At 10,000 spans/s the quarter of the budget that waits for
			// the disk holds 150 ms of spans: a batch the writer cannot
			// take in time is dropped, as the caller never waits for the
			// disk, and at 30,000 spans/s a busy machine's stalls did.
			res, err := scenario.Run(context.Background(), sc, kind, scenario.RunConfig{
				Rate:            10_000,
				MemoryBudget:    2 << 20,
				ShutdownTimeout: time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.ShutdownErr != "" || res.Unsettled {
				t.Fatalf("shutdown: %q, unsettled %v", res.ShutdownErr, res.Unsettled)
			}
			st := res.Exporter
			t.Logf("ended %d, handed %d, delivered %d, watch %+v", res.Ended, res.Handed, res.Delivered, res.Watch)
			if st.Accepted != res.Handed {
				t.Errorf("accepted %d, want the %d spans handed to ExportSpans", st.Accepted, res.Handed)
			}
			if got := st.Exported + st.Dropped.Total() + st.Queued + st.Spooled + st.InFlight; got != st.Accepted {
				t.Errorf("books do not balance: %+v", *st)
			}
			if kind == scenario.Ours {
				if st.Dropped.QueueFull == 0 {
					t.Errorf("memory-only: nothing dropped as queue_full through an outage of %s at a 2 MiB budget", sc.OutageFor)
				}
				return
			}
			if res.Watch.PeakSpooled == 0 || res.Watch.PeakSpoolBytes == 0 {
				t.Errorf("the spool was never used: %+v", res.Watch)
			}
			if st.Dropped.Total() != 0 || st.Spooled != 0 || st.Exported != res.Handed || res.Delivered < res.Handed {
				t.Errorf("handed %d, exported %d, delivered %d, dropped %+v, left spooled %d; want all delivered",
					res.Handed, st.Exported, res.Delivered, st.Dropped, st.Spooled)
			}
		})
	}
}
