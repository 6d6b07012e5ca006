package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the nearest-rank q-quantile (0 < q ≤ 1) of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// dist summarises durations: p50, p99, min and max, in milliseconds.
type dist struct {
	N                  int
	P50, P99, Min, Max float64
}

func summarise(d []time.Duration) dist {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return dist{}
	}
	return dist{N: len(s), P50: ms(percentile(s, 0.50)), P99: ms(percentile(s, 0.99)), Min: ms(s[0]), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
