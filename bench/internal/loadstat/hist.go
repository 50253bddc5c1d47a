package loadstat

import (
	"math"
	"math/bits"
)

// Histogram counts non-negative values (microseconds of latency) in
// log-linear buckets: exact below 2*subBuckets, then subBuckets buckets per
// power of two, so a percentile is reported with at most 1/subBuckets
// (about 3%) relative error. Record does not allocate.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	max    uint64
}

const (
	subBits    = 5
	subBuckets = 1 << subBits // 32
	// values up to 2^40 µs (~12 days); larger ones land in the last bucket.
	maxExp     = 40
	numBuckets = (maxExp-subBits)*subBuckets + 2*subBuckets
)

func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	msb := bits.Len64(v) - 1 // >= subBits+1
	shift := msb - subBits
	idx := shift*subBuckets + int(v>>shift) // v>>shift in [32, 64)
	if idx >= numBuckets {
		return numBuckets - 1
	}
	return idx
}

// bucketBounds returns the smallest and largest value of bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < 2*subBuckets {
		return uint64(i), uint64(i)
	}
	shift := i/subBuckets - 1
	top := uint64(i - shift*subBuckets) // in [32, 64)
	lo = top << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one value.
func (h *Histogram) Record(v uint64) {
	h.counts[bucketOf(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

// Merge adds the counts of o.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded value.
func (h *Histogram) Max() uint64 { return h.max }

// Quantile returns the q-quantile (0 < q <= 1) by the nearest-rank method:
// the smallest recorded value v such that at least ceil(q*n) values are <= v,
// reported as the upper bound of its bucket (never below the true value, and
// never above the maximum). It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			_, hi := bucketBounds(i)
			if hi > h.max {
				hi = h.max
			}
			return hi
		}
	}
	return h.max
}
