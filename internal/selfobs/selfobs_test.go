package selfobs_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/tracekeeper/tracekeeper/internal/selfobs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Value
				}
			}
		}
	}
	return out
}

func TestRetiredRegistrationReportsOnceMore(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	b := selfobs.New(mp, "test", "test")
	c := b.Counter("x.count", "{x}", "x")
	g := b.Gauge("x.held", "{x}", "x")
	n := int64(0)
	reg := b.Observe(func(o metric.Observer) {
		o.ObserveInt64(c, n)
		o.ObserveInt64(g, 2*n)
	}, c, g)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}

	n = 3
	if got := collect(t, reader); got["x.count"] != 3 || got["x.held"] != 6 {
		t.Fatalf("before retiring: %v", got)
	}
	n = 5 // what the component's shutdown counted
	reg.Retire()
	if got := collect(t, reader); got["x.count"] != 5 || got["x.held"] != 10 {
		t.Fatalf("first collection after retiring must see the final figures: %v", got)
	}
	// The next collection, right after, sees nothing, though the callback
	// is removed asynchronously, by a goroutine that goleak checks ends.
	if got, ok := collect(t, reader)["x.count"]; ok {
		t.Fatalf("the second collection after retiring reports %d", got)
	}
}

// A collection that began before Retire is not the final one: the one
// after it reports the final figures.
func TestRetireDuringACollection(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	b := selfobs.New(mp, "test", "test")
	c := b.Counter("x.count", "{x}", "x")
	var n atomic.Int64
	var reg *selfobs.Registration
	reg = b.Observe(func(o metric.Observer) {
		o.ObserveInt64(c, n.Load())
		if n.Load() == 3 {
			n.Store(5) // the component shuts down during the collection
			reg.Retire()
		}
	}, c)
	n.Store(3)
	if got := collect(t, reader); got["x.count"] != 3 {
		t.Fatalf("during the shutdown: %v", got)
	}
	if got := collect(t, reader); got["x.count"] != 5 {
		t.Fatalf("the collection after Retire must see the final figures: %v", got)
	}
	if got, ok := collect(t, reader)["x.count"]; ok {
		t.Fatalf("the second collection after retiring reports %d", got)
	}
}

func TestErrorsAreJoinedAndPrefixed(t *testing.T) {
	b := selfobs.New(noop.NewMeterProvider(), "test", "widget")
	if b.Err() != nil {
		t.Fatal("no error expected from the no-op provider")
	}
	b.Add(errors.New("first"))
	b.Add(nil)
	b.Add(errors.New("second"))
	err := b.Err()
	if err == nil || !strings.HasPrefix(err.Error(), "widget: self-metrics unavailable: ") ||
		!strings.Contains(err.Error(), "first") || !strings.Contains(err.Error(), "second") {
		t.Fatalf("got %v", err)
	}
}

func TestInvalidInstrumentNameIsRecorded(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	b := selfobs.New(mp, "test", "widget")
	_ = b.Counter("1 not a valid name", "{x}", "x")
	if b.Err() == nil {
		t.Fatal("an invalid instrument name must be reported")
	}
}
