package scenario

import (
	"math/bits"
	"time"
)

// Buckets of a Histogram: values below 2^subBits+1 get a bucket each, then
// every power of two is cut into 2^subBits buckets of equal width, so a
// recorded value is known to within 1/2^subBits (about 3%).
const (
	subBits  = 5
	subCount = 1 << subBits
	nBuckets = (65 - subBits) * subCount
)

// Histogram records durations with a relative error of about 3% and no
// allocation per value. The zero value is empty and ready to use. A
// Histogram is not safe for concurrent use: give each goroutine its own and
// Merge them.
type Histogram struct {
	counts [nBuckets]uint64
	n      uint64
	max    time.Duration
}

// bucketOf returns the bucket that holds v.
func bucketOf(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return shift*subCount + int(v>>shift)
}

// bucketMax returns the largest value bucket i holds.
func bucketMax(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	m := uint64(i%subCount + subCount)
	return (m+1)<<shift - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns a value at least as large as the q-quantile of the
// recorded values (0 ≤ q ≤ 1) and at most about 3% larger: the upper bound
// of the bucket that holds it, capped at Max. It returns 0 when nothing was
// recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	// rank is the 1-based position of the quantile in the sorted values.
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) || rank == 0 {
		rank++
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketMax(i)), h.max)
		}
	}
	return h.max
}
