package bench

import (
	"math/bits"
	"time"
)

// Histogram counts durations in log-linear buckets: 16 per power of two,
// so a bucket is at most 1/16 (6.25%) wide. Recording never allocates. The
// zero value is empty and ready.
type Histogram struct {
	counts [64 * 16]int64
	n      int64
	max    time.Duration
}

func bucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 16 {
		return int(v)
	}
	e := bits.Len64(v) - 5 // shift that leaves the top 5 bits
	return (e+1)*16 + int(v>>e) - 16
}

// lower returns the smallest duration in bucket i.
func lower(i int) time.Duration {
	if i < 16 {
		return time.Duration(i)
	}
	e := i/16 - 1
	return time.Duration(uint64(16+i%16) << e)
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	h.counts[bucket(d)]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count returns the number of durations recorded.
func (h *Histogram) Count() int64 { return h.n }

// Max returns the largest duration recorded.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the lower bound of the bucket that holds quantile q
// (0 < q <= 1), or 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(lower(i), h.max)
		}
	}
	return h.max
}

// Round3 rounds d to three significant figures (1.23ms, 45.6µs), as
// latencies are printed: a histogram bucket is up to 6% wide, so further
// digits are noise.
func Round3(d time.Duration) time.Duration {
	m := time.Duration(1)
	for d/m >= 1000 {
		m *= 10
	}
	return d.Round(m)
}

// Rounded returns p with every percentile rounded by Round3.
func (p Percentiles) Rounded() Percentiles {
	return Percentiles{P50: Round3(p.P50), P90: Round3(p.P90), P99: Round3(p.P99), P999: Round3(p.P999), Max: Round3(p.Max)}
}
