package scenario

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	values := []uint64{0, 1, 2, 31, 32, 63, 64, 65, 66, 127, 128, 129, 1000, 1023, 1024, 1025,
		uint64(time.Millisecond), uint64(time.Second), uint64(time.Hour), math.MaxInt64}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, rng.Uint64N(math.MaxInt64)>>rng.UintN(63))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, nBuckets)
		}
		hi := bucketMax(i)
		if hi < v {
			t.Errorf("bucketMax(bucketOf(%d)) = %d, below the value", v, hi)
		}
		if i > 0 && bucketMax(i-1) >= v {
			t.Errorf("value %d also fits bucket %d below its own %d", v, i-1, i)
		}
		if err := float64(hi-v) / float64(max(v, 1)); err > 1.0/subCount {
			t.Errorf("bucket of %d reaches %d: relative error %.3f", v, hi, err)
		}
	}
}

func TestQuantile(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration // the quantile's exact value; the bucket may exceed it by 1/32
	}{
		{"empty", nil, 0.99, 0},
		{"one value", []time.Duration{5 * us}, 0.5, 5 * us},
		{"median of three", []time.Duration{1 * us, 2 * us, 100 * us}, 0.5, 2 * us},
		{"p99 of 100", append(repeat(99, us), time.Millisecond), 0.99, us},
		{"p99 of 101", append(repeat(99, us), time.Millisecond, time.Millisecond), 0.99, time.Millisecond},
		{"max", []time.Duration{3, 7, 11}, 1, 11},
		{"min", []time.Duration{3, 7, 11}, 0, 3},
		{"negative counts as zero", []time.Duration{-5}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Quantile(tt.q)
			if got < tt.want || float64(got-tt.want) > float64(tt.want)/subCount {
				t.Errorf("Quantile(%v) = %v, want %v (+1/%d)", tt.q, got, tt.want, subCount)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	if a.Count() != all.Count() || a.Max() != all.Max() {
		t.Fatalf("merged count %d max %v, want %d and %v", a.Count(), a.Max(), all.Count(), all.Max())
	}
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged Quantile(%v) = %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	d := time.Duration(0)
	for b.Loop() {
		h.Record(d)
		d += 37
	}
}
