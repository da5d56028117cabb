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
		err     error
	}
	arrivals := make(chan arrival, watchers)
	// The readers forward events until the benchmark ends, even when it
	// has stopped reading arrivals after a failure.
	var readers sync.WaitGroup
	done := make(chan struct{})
	b.Cleanup(func() {
		close(done)
		readers.Wait()
	})
	for i := range watchers {
		w := watch(b, f, WatchOptions{After: start})
		readers.Go(func() {
			for {
				var a arrival
				select {
				case ev, ok := <-w.Events():
					switch {
					case !ok:
						a = arrival{watcher: i, err: fmt.Errorf("watcher ended: %w", w.Err())}
					case ev.Type == Progress:
						continue
					default:
						a = arrival{watcher: i, rev: ev.Revision, at: time.Now()}
					}
				case <-done:
					return
				}
				select {
				case arrivals <- a:
				case <-done:
					return
				}
				if a.err != nil {
					return
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
				var missing []int
				for w, ok := range got {
					if !ok {
						missing = append(missing, w)
					}
				}
				b.Fatalf("event %d: revision %d not delivered within %v to watchers %v", i, o.Revision, deliveryDeadline, missing)
			}
			if a.err != nil {
				b.Fatalf("event %d: watcher %d: %v", i, a.watcher, a.err)
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
