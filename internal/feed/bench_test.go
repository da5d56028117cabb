package feed

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkDeliveryLatency50Watchers measures the time from the return of a
// committed write to its arrival at each of 50 watchers, on SQLite. It
// reports the 50th and 99th percentile over all deliveries.
func BenchmarkDeliveryLatency50Watchers(b *testing.B) {
	const watchers = 50
	s := newStore(b)
	f := runFeed(b, s, Options{})
	start := currentRevision(b, s)
	if err := f.WaitForRevision(b.Context(), start); err != nil {
		b.Fatal(err)
	}
	type arrival struct {
		rev int64
		at  time.Time
	}
	arrivals := make(chan arrival, watchers*64)
	var wg sync.WaitGroup
	for range watchers {
		w := watch(b, f, WatchOptions{After: start})
		wg.Go(func() {
			for ev := range w.Events() {
				if ev.Type != Progress {
					arrivals <- arrival{ev.Revision, time.Now()}
				}
			}
		})
	}
	b.Cleanup(wg.Wait)
	latencies := make([]time.Duration, 0, b.N*watchers)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		o := create(b, s, "ns", fmt.Sprintf("o%d", i), nil)
		committed := time.Now()
		for range watchers {
			a := <-arrivals
			if a.rev != o.Revision {
				b.Fatalf("got revision %d, want %d", a.rev, o.Revision)
			}
			latencies = append(latencies, max(a.at.Sub(committed), 0))
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
