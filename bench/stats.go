package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of values by the
// nearest-rank method: the smallest value such that at least p percent of
// the values are at or below it. It returns NaN for no values and does not
// change values.
func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// median is the 50th percentile of values; for an even count it is the
// lower of the two middle values.
func median(values []float64) float64 { return percentile(values, 50) }

// millis converts d to fractional milliseconds, the unit of every latency
// in the report.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rate is n operations in d, per second.
func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// micros converts d to fractional microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
