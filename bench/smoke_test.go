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
		for _, kind := range scenario.Kinds {
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
