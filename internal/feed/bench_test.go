package feed

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// deliveryDeadline bounds the wait for one event to reach every watcher.
// go test's -timeout does not apply to benchmarks, so a stalled watcher
// must fail the benchmark instead of hanging it.
const deliveryDeadline = 10 * time.Second

// BenchmarkDeliveryLatency50Watchers measures the time from the return of a
// committed write to its arrival at each of 50 watchers, on SQLite. It
// reports the 50th and 99th percentile over all deliveries (an event that
// arrives before the write returns counts as 0), and checks that every
// watcher receives every event exactly once, in revision order.
func BenchmarkDeliveryLatency50Watchers(b *testing.B) {
	const watchers = 50
	s := newStore(b)
	f := runFeed(b, s, Options{})
	start := currentRevision(b, s)
	if err := f.WaitForRevision(b.Context(), start); err != nil {
		b.Fatal(err)
	}
	type arrival struct {
		watcher int
		rev     int64
		at      time.Time
	}
	// Each round has at most one arrival per watcher in flight, so the
	// readers never block on it, even after the benchmark fails.
	arrivals := make(chan arrival, watchers)
	var readers sync.WaitGroup
	// Registered before the watchers' Stop cleanups so that it runs after
	// them (cleanups run last-in, first-out): the readers end when Stop
	// closes their channels.
	b.Cleanup(readers.Wait)
	for i := range watchers {
		w := watch(b, f, WatchOptions{After: start})
		readers.Go(func() {
			for ev := range w.Events() {
				if ev.Type != Progress {
					arrivals <- arrival{i, ev.Revision, time.Now()}
				}
			}
		})
	}
	latencies := make([]time.Duration, 0, b.N*watchers)
	got := make([]bool, watchers)
	deadline := time.NewTimer(deliveryDeadline)
	defer deadline.Stop()
	// round writes object i and waits until every watcher has received
	// it, recording the latencies if record is set. Every earlier revision
	// reached every watcher in an earlier round, so receiving anything else
	// is a duplicate, a gap or a reordering.
	round := func(i int, record bool) {
		o := create(b, s, "ns", fmt.Sprintf("o%d", i), nil)
		committed := time.Now()
		clear(got)
		deadline.Reset(deliveryDeadline)
		for range watchers {
			var a arrival
			select {
			case a = <-arrivals:
			case <-deadline.C:
				b.Fatalf("event %d: revision %d not delivered to every watcher within %v (delivered: %v)", i, o.Revision, deliveryDeadline, got)
			}
			if a.rev != o.Revision || got[a.watcher] {
				b.Fatalf("event %d: watcher %d got revision %d (already got %d: %v), want %d once", i, a.watcher, a.rev, o.Revision, got[a.watcher], o.Revision)
			}
			got[a.watcher] = true
			if record {
				latencies = append(latencies, max(a.at.Sub(committed), 0))
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		round(i, true)
	}
	b.StopTimer()
	// One more round catches a late duplicate of the last measured event.
	round(b.N, false)
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
