package workqueue

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAddGetDone measures one key's round trip through the queue,
// from parallel goroutines each adding a distinct key and taking one.
func BenchmarkAddGetDone(b *testing.B) {
	for _, bc := range []struct {
		name    string
		metrics *Metrics
	}{{"plain", nil}, {"metrics", NewMetrics()}} {
		b.Run(bc.name, func(b *testing.B) {
			q := New[int](Options{Metrics: bc.metrics})
			defer q.ShutDown()
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					q.Add(int(next.Add(1)))
					k, _ := q.Get()
					q.Done(k)
				}
			})
		})
	}
}

// BenchmarkAddDuplicate measures adding a key that is already queued.
func BenchmarkAddDuplicate(b *testing.B) {
	q := New[string](Options{})
	defer q.ShutDown()
	q.Add("default/web")
	b.ReportAllocs()
	for b.Loop() {
		q.Add("default/web")
	}
}

// BenchmarkAddAfter measures delayed adds into a heap of 10,000 keys.
func BenchmarkAddAfter(b *testing.B) {
	q := New[int](Options{})
	defer q.ShutDown()
	const keys = 10000
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q.AddAfter(i%keys, time.Hour+time.Duration(i%997)*time.Second)
		i++
	}
}
