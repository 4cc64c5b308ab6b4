package processor

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect returns the int64 data points of every metric, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string][]metricdata.DataPoint[int64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]metricdata.DataPoint[int64]{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != meterName {
			t.Fatalf("scope = %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic {
					t.Fatalf("%s is not monotonic", m.Name)
				}
				out[m.Name] = d.DataPoints
			case metricdata.Gauge[int64]:
				out[m.Name] = d.DataPoints
			default:
				t.Fatalf("%s has data of type %T", m.Name, m.Data)
			}
		}
	}
	return out
}

func point(t *testing.T, pts []metricdata.DataPoint[int64], kvs ...attribute.KeyValue) int64 {
	t.Helper()
	want := attribute.NewSet(kvs...)
	for _, p := range pts {
		if p.Attributes.Equals(&want) {
			return p.Value
		}
	}
	t.Fatalf("no point with attributes %v in %v", want.Encoded(attribute.DefaultEncoder()), pts)
	return 0
}

func TestGuardMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	p := newWrapping(t, WithMeterProvider(mp), WithValueLimit(1), WithSpanNameLimit(1), WithMaxKeys(3))

	p.span("op", []attribute.KeyValue{attribute.String("user", "a"), attribute.String("url.path", "/u/1")})
	p.span("op", []attribute.KeyValue{attribute.String("user", "b"), attribute.String("url.path", "/u/2")})
	p.span("other", []attribute.KeyValue{attribute.String("k3", "x"), attribute.String("k4", "y")})

	got := collect(t, reader)
	target := func(s string) attribute.KeyValue { return attribute.String(attrTarget, s) }
	checks := []struct {
		name string
		pts  []metricdata.DataPoint[int64]
		kvs  []attribute.KeyValue
		want int64
	}{
		{metricReplaced, got[metricReplaced], []attribute.KeyValue{target("attribute"), attribute.String(attrKey, "user"), attribute.String(attrReason, reasonValueLimit)}, 1},
		{metricReplaced, got[metricReplaced], []attribute.KeyValue{target("attribute"), attribute.String(attrKey, OverflowValue), attribute.String(attrReason, reasonKeyLimit)}, 1},
		{metricReplaced, got[metricReplaced], []attribute.KeyValue{target("span.name"), attribute.String(attrKey, "test"), attribute.String(attrReason, reasonValueLimit)}, 1},
		{metricNormalized, got[metricNormalized], []attribute.KeyValue{target("attribute")}, 2},
		{metricNormalized, got[metricNormalized], []attribute.KeyValue{target("span.name")}, 0},
		{metricMarked, got[metricMarked], nil, 2},
		{metricKeys, got[metricKeys], []attribute.KeyValue{target("attribute")}, 3},
		{metricKeys, got[metricKeys], []attribute.KeyValue{target("span.name")}, 1},
		{metricValues, got[metricValues], []attribute.KeyValue{target("attribute")}, 3},
		{metricValues, got[metricValues], []attribute.KeyValue{target("span.name")}, 1},
		{metricResets, got[metricResets], nil, 0},
	}
	for _, c := range checks {
		if v := point(t, c.pts, c.kvs...); v != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.kvs, v, c.want)
		}
	}

	// The first collection after Shutdown sees the final counts; then
	// the callback is removed, by a goroutine goleak checks ends.
	p.span("op", []attribute.KeyValue{attribute.String("user", "c")})
	if err := p.guard.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.span("op", []attribute.KeyValue{attribute.String("user", "d")}) // ignored
	got = collect(t, reader)
	if v := point(t, got[metricReplaced], target("attribute"), attribute.String(attrKey, "user"), attribute.String(attrReason, reasonValueLimit)); v != 2 {
		t.Fatalf("replaced{user} after shutdown = %d, want the final 2", v)
	}
	for i := 0; len(collect(t, reader)) != 0; i++ {
		if i == 10000 {
			t.Fatal("metrics still reported long after shutdown")
		}
		runtime.Gosched()
	}
}

// TestGuardMetricKeysBounded overflows more keys than get their own series
// and checks that the rest are folded into key=OverflowValue.
func TestGuardMetricKeysBounded(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	const keys = maxMetricKeys + 20 // below the SDK limit of 128 attributes per span
	p := newWrapping(t, WithMeterProvider(mp), WithValueLimit(1), WithMaxKeys(keys))
	for v := range 2 {
		attrs := make([]attribute.KeyValue, 0, keys)
		for k := range keys {
			attrs = append(attrs, attribute.Int("key"+strconv.Itoa(k), v))
		}
		p.span("op", attrs)
	}
	pts := collect(t, reader)[metricReplaced]
	if len(pts) != maxMetricKeys+1 {
		t.Fatalf("replaced has %d series, want %d", len(pts), maxMetricKeys+1)
	}
	rest := point(t, pts, attribute.String(attrTarget, "attribute"), attribute.String(attrKey, OverflowValue), attribute.String(attrReason, reasonValueLimit))
	if rest != keys-maxMetricKeys {
		t.Fatalf("folded series = %d, want %d", rest, keys-maxMetricKeys)
	}
	if st := p.guard.Stats(); st.ReplacedOverLimit != keys {
		t.Fatalf("stats = %+v", st)
	}
}
