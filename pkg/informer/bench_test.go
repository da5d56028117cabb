package informer_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// BenchmarkSync measures an informer's first sync of N ConfigMaps from a
// test server (N from $SETPOINT_BENCH_OBJECTS, default 10,000): the time
// per object from Run to synced, and the heap the cache keeps per object,
// with the objects as served and with their managedFields dropped by a
// Transform.
func BenchmarkSync(b *testing.B) {
	n := 10000
	if s := os.Getenv("SETPOINT_BENCH_OBJECTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("SETPOINT_BENCH_OBJECTS: %v", err)
		}
	}
	srv := setpointtest.Start(b, setpointtest.Options{})
	c := newClient(b, srv)
	fill(b, c, n)
	b.Run("as-served", func(b *testing.B) { benchSync(b, c, n, nil) })
	b.Run("without-managedFields", func(b *testing.B) { benchSync(b, c, n, stripManagedFields) })
}

func benchSync(b *testing.B, c *cmClient, n int, transform func(*corev1.ConfigMap) *corev1.ConfigMap) {
	var total time.Duration
	var heap uint64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		inf := informer.New(c, informer.Options[*corev1.ConfigMap]{Transform: transform})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- inf.Run(ctx) }()
		if err := inf.WaitForSync(ctx); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := len(inf.List()); got != n {
			b.Fatalf("synced %d objects, want %d", got, n)
		}
		heap += after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(n*b.N), "ns/object")
	b.ReportMetric(float64(heap)/float64(n*b.N), "bytes/object")
}

// fill creates n ConfigMaps in namespace a, a few requests at a time.
func fill(b *testing.B, c *cmClient, n int) {
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				_, err := c.Create(context.Background(), &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "cm-" + strconv.Itoa(i), Labels: map[string]string{"app": "bench"}},
					Data:       map[string]string{"key": "value-" + strconv.Itoa(i)},
				}, metav1.CreateOptions{})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}
