package encodecost

import (
	"context"
	"testing"
)

// TestRun checks what Run reports, not how fast either side is.
func TestRun(t *testing.T) {
	ctx := context.Background()
	p, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	res, err := p.Run(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Spans != Batch || res.Pairs != MinPairs {
		t.Errorf("spans %d, pairs %d; want %d and %d", res.Spans, res.Pairs, Batch, MinPairs)
	}
	if res.StockNs <= 0 || res.OursNs <= 0 {
		t.Errorf("times %v and %v, want positive", res.StockNs, res.OursNs)
	}
	if !(res.RatioMin <= res.RatioMedian && res.RatioMedian <= res.RatioMax) {
		t.Errorf("ratios min %v, median %v, max %v out of order", res.RatioMin, res.RatioMedian, res.RatioMax)
	}
	// The stock transform allocates for every span; it cannot be free.
	if res.StockAllocs < 1 {
		t.Errorf("stock allocates %v per span, want at least 1", res.StockAllocs)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 3}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
