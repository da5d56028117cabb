package workqueue

import (
	"flag"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var stressSeed = flag.Uint64("workqueue.seed", 0, "seed of TestStress; 0 picks one from the clock")

// TestStress runs producers and workers on one queue with seeded random
// choices and checks, for every key, that no two workers hold it at once
// and that the last version written before its last add was processed.
// Rerun a failure with -workqueue.seed.
func TestStress(t *testing.T) {
	seed := *stressSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", seed)

	const (
		numKeys      = 64
		numWorkers   = 16
		numProducers = 4
	)
	opsPerProducer := 20000
	if testing.Short() {
		opsPerProducer = 500
	}

	q := New[int](Options{BaseDelay: time.Microsecond, MaxDelay: time.Millisecond})
	defer q.ShutDown()

	var (
		version   [numKeys]atomic.Int64 // bumped before each add
		holders   [numKeys]atomic.Int32 // workers holding the key now
		failing   atomic.Bool           // workers may fail keys
		mu        sync.Mutex            // guards processed
		processed [numKeys]int64        // highest version a worker completed
		progress  = make(chan struct{}, 1)
	)
	failing.Store(true)

	var workers sync.WaitGroup
	for w := range numWorkers {
		rng := rand.New(rand.NewPCG(seed, uint64(1000+w)))
		workers.Go(func() {
			for {
				k, shutdown := q.Get()
				if shutdown {
					return
				}
				if n := holders[k].Add(1); n != 1 {
					t.Errorf("key %d held by %d workers at once", k, n)
				}
				v := version[k].Load()
				if rng.IntN(4) == 0 {
					runtime.Gosched()
				}
				if failing.Load() && rng.IntN(5) == 0 {
					q.AddRateLimited(k)
				} else {
					q.Forget(k)
					mu.Lock()
					processed[k] = max(processed[k], v)
					mu.Unlock()
				}
				holders[k].Add(-1)
				q.Done(k)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}

	var producers sync.WaitGroup
	for p := range numProducers {
		rng := rand.New(rand.NewPCG(seed, uint64(p)))
		producers.Go(func() {
			for range opsPerProducer {
				k := rng.IntN(numKeys)
				version[k].Add(1)
				switch rng.IntN(10) {
				case 0:
					q.AddAfter(k, time.Duration(rng.IntN(200))*time.Microsecond)
				case 1:
					q.AddRateLimited(k)
				default:
					q.Add(k)
				}
				if rng.IntN(8) == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	producers.Wait()
	failing.Store(false)

	// Await the workers catching up with every key's last version.
	deadline := time.After(60 * time.Second)
	for {
		mu.Lock()
		behind := -1
		for k := range numKeys {
			if processed[k] != version[k].Load() {
				behind = k
				break
			}
		}
		mu.Unlock()
		if behind < 0 {
			break
		}
		select {
		case <-progress:
		case <-deadline:
			t.Fatalf("key %d: processed version %d, last added %d", behind, processed[behind], version[behind].Load())
		case <-time.After(100 * time.Millisecond):
			// A key failed after its last add may be in its backoff; look again.
		}
	}
	q.ShutDownWithDrain()
	workers.Wait()
}

// TestStressShutDown shuts a busy queue down and checks every worker returns.
func TestStressShutDown(t *testing.T) {
	q := New[int](Options{BaseDelay: time.Microsecond})
	var workers sync.WaitGroup
	for range 8 {
		workers.Go(func() {
			for {
				k, shutdown := q.Get()
				if shutdown {
					return
				}
				q.AddRateLimited(k)
				q.Add(k + 1)
				q.Done(k)
			}
		})
	}
	q.Add(0)
	for q.Len() == 0 && q.NumRequeues(0) == 0 {
		runtime.Gosched()
	}
	q.ShutDownWithDrain()
	workers.Wait()
	if n := q.Len(); n != 0 {
		t.Fatalf("Len after shutdown = %d", n)
	}
}
