package exporter_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/exporter"
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
	refuse := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr
	}
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
