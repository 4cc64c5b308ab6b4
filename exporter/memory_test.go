package exporter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// liveHeap is the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryBudgetBoundsTheHeap offers three times the memory budget to an
// exporter whose backend never answers, or refuses every connection, and
// checks that the heap the exporter holds (queued batches, requests in
// flight with their compressed bodies, connections) stays within the
// budget plus 20%.
func TestMemoryBudgetBoundsTheHeap(t *testing.T) {
	hang := func(t *testing.T) string {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(func() { close(release); srv.Close() })
		return strings.TrimPrefix(srv.URL, "http://")
	}
	refuse := func(t *testing.T) string { return otlptest.RefusedAddr(t) }
	configs := []struct {
		name   string
		budget int
		opts   []exporter.Option
	}{
		{"defaults", 32 << 20, nil},
		{"gzip", 32 << 20, []exporter.Option{exporter.WithCompression(exporter.GzipCompression)}},
		{"small", 4 << 20, []exporter.Option{exporter.WithMemoryBudget(4 << 20), exporter.WithWorkers(2), exporter.WithMaxRequestSize(256 << 10)}},
	}
	spans := otlptest.Spans(512)
	for _, backend := range []struct {
		name string
		addr func(*testing.T) string
	}{{"hanging", hang}, {"refused", refuse}} {
		for _, c := range configs {
			t.Run(backend.name+"/"+c.name, func(t *testing.T) {
				addr := backend.addr(t)
				base := liveHeap()
				opts := append([]exporter.Option{exporter.WithEndpoint(addr), exporter.WithInsecure(),
					exporter.WithLogger(zap.NewNop()), exporter.WithTimeout(time.Minute)}, c.opts...)
				exp := exporter.New(opts...)
				var peak uint64
				var held int64
				for i := 0; exp.Stats().Dropped.QueueFull < 3*int64(c.budget)/330 || i < 10; i++ {
					_ = exp.ExportSpans(context.Background(), spans)
					if i%64 == 0 {
						if h := liveHeap(); h > base {
							peak = max(peak, h-base)
						}
						st := exp.Stats()
						held = max(held, st.QueueBytes+st.InFlightBytes)
					}
				}
				if h := liveHeap(); h > base {
					peak = max(peak, h-base)
				}
				st := exp.Stats()
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				_ = exp.Shutdown(ctx)
				cancel()
				t.Logf("heap +%.1f MiB, held at most %.1f MiB, budget %d MiB, limit %d, accepted %d, dropped %d",
					float64(peak)/(1<<20), float64(held)/(1<<20), c.budget>>20, st.ConcurrencyLimit, st.Accepted, st.Dropped.Total())
				// Each request in flight is counted 16 KiB, within an
				// eighth of the budget: that caps the concurrency.
				if most := int64(c.budget) / 8 / (16 << 10); st.ConcurrencyLimit > most {
					t.Errorf("concurrency limit %d, more than the %d requests an eighth of the budget allows", st.ConcurrencyLimit, most)
				}
				if limit := 1.2 * float64(c.budget); float64(peak) > limit {
					t.Errorf("live heap rose %s above where it started, more than the budget of %d MiB + 20%%",
						fmt.Sprintf("%.1f MiB", float64(peak)/(1<<20)), c.budget>>20)
				}
			})
		}
	}
}

// TestRetryWaitGivesItsSlotBack has an adaptive limit of one request in
// flight and a backend that refuses one batch with 503 every time, with a
// backoff of an hour: while that batch waits to retry, the next one goes
// out on the slot it gave back. A fixed pool of one worker keeps its
// request through the wait instead.
func TestRetryWaitGivesItsSlotBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   exporter.Option
		sends bool
	}{
		{"adaptive", exporter.WithMaxConcurrency(1), true},
		{"fixed pool", exporter.WithWorkers(1), false},
	} {
		t.Run(tc.name, func(t *testing.T) { retryWait(t, tc.opt, tc.sends) })
	}
}

func retryWait(t *testing.T, opt exporter.Option, sends bool) {
	rcv := otlptest.NewHTTP(t, func(_ int, body []byte, w http.ResponseWriter, _ *http.Request) bool {
		if n, _ := otlpenc.CountSpans(body); n == 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		opt,
		exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: time.Hour, MaxInterval: time.Hour, MaxElapsedTime: 2 * time.Hour}))
	ctx := context.Background()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	threeThenFive(wctx, t, exp, rcv)
	// Adaptive, the 5 go out while the 3 wait; a fixed pool's one worker
	// waits with the 3 and the 5 stay queued.
	wantExported := 0
	if sends {
		wantExported = 5
		for rcv.Spans() < 5 {
			if err := rcv.WaitRequests(wctx, rcv.Requests()+1); err != nil {
				t.Fatalf("the second batch was not sent while the first waited to retry: %v", err)
			}
		}
	}
	// The Shutdown deadline drops whatever is left.
	sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_ = exp.Shutdown(sctx)
	scancel()
	_ = exp.Shutdown(ctx)
	st := exp.Stats()
	if st.Exported != int64(wantExported) || st.Dropped.Total() != int64(8-wantExported) {
		t.Fatalf("exported %d, dropped %+v; want %d exported and the rest dropped at the deadline", st.Exported, st.Dropped, wantExported)
	}
	if !sends && rcv.Requests() != 1 {
		t.Fatalf("%d requests; the one worker sent another while it waited to retry", rcv.Requests())
	}
}

// threeThenFive exports a batch of 3 spans, waits for the receiver to
// see its request, then exports a batch of 5.
func threeThenFive(ctx context.Context, t *testing.T, exp *exporter.Exporter, rcv *otlptest.HTTP) {
	t.Helper()
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(3))
	if err := rcv.WaitRequests(ctx, 1); err != nil {
		t.Fatal(err)
	}
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(5))
}

// TestRetryTakesAlongWhatWasQueued has a pool of one worker whose first
// request, of 3 spans, is refused with 503 once 5 more spans are queued:
// the retry carries all 8 in one request.
func TestRetryTakesAlongWhatWasQueued(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gz], func(t *testing.T) {
			queued := make(chan struct{})
			rcv := otlptest.NewHTTP(t, func(n int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
				if n != 1 {
					return false
				}
				select {
				case <-queued:
				case <-r.Context().Done():
				}
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			})
			opts := []exporter.Option{exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
				exporter.WithWorkers(1),
				exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsedTime: time.Minute})}
			if gz {
				opts = append(opts, exporter.WithCompression(exporter.GzipCompression))
			}
			exp := exporter.New(opts...)
			wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			threeThenFive(wctx, t, exp, rcv)
			close(queued)
			if err := rcv.WaitRequests(wctx, 2); err != nil {
				t.Fatal(err)
			}
			if err := exp.Shutdown(wctx); err != nil {
				t.Fatal(err)
			}
			got := rcv.Received()
			if len(got) != 2 {
				t.Fatalf("%d requests, want the refused one and its retry", len(got))
			}
			// The receiver reads only one gzip stream: a retry that took
			// along more data is still one.
			if got[1].Gzipped != gz {
				t.Fatalf("retry gzipped %v, want %v", got[1].Gzipped, gz)
			}
			if n, err := otlpenc.CountSpans(got[1].Body); err != nil || n != 8 {
				t.Fatalf("the retry carried %d spans (%v), want the 3 refused and the 5 queued meanwhile", n, err)
			}
			if st := exp.Stats(); st.Exported != 8 || st.Dropped.Total() != 0 || rcv.Spans() != 8 || st.QueueBytes+st.InFlightBytes != 0 {
				t.Fatalf("exported %d, dropped %+v, received %d, %d bytes held; want all 8 and nothing held", st.Exported, st.Dropped, rcv.Spans(), st.QueueBytes+st.InFlightBytes)
			}
		})
	}
}
