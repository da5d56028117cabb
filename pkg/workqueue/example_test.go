package workqueue_test

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setpoint/setpoint/pkg/workqueue"
)

// A worker pool: each key is handled by one worker at a time, and a key that
// fails is retried with a growing delay until it succeeds.
func Example() {
	q := workqueue.New[string](workqueue.Options{})
	attempts := map[string]int{}
	var mu sync.Mutex
	reconcile := func(key string) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[key]++
		if attempts[key] < 3 {
			return errors.New("not yet")
		}
		return nil
	}

	var wg sync.WaitGroup
	finished := make(chan string)
	for range 2 {
		wg.Go(func() {
			for {
				key, shutdown := q.Get()
				if shutdown {
					return
				}
				if err := reconcile(key); err != nil {
					q.AddRateLimited(key)
				} else {
					q.Forget(key)
					finished <- key
				}
				q.Done(key)
			}
		})
	}

	q.Add("default/web")
	q.Add("default/web") // deduplicated: still one key
	fmt.Println(<-finished, attempts["default/web"])
	q.ShutDown()
	wg.Wait()
	// Output: default/web 3
}

// Metrics are registered by the caller, on the registry of its choice.
func ExampleNewMetrics() {
	reg := prometheus.NewRegistry()
	metrics := workqueue.NewMetrics()
	reg.MustRegister(metrics)

	q := workqueue.New[string](workqueue.Options{Name: "deployments", Metrics: metrics})
	defer q.ShutDown()
	q.Add("default/web")

	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == "workqueue_depth" {
			fmt.Println(f.GetMetric()[0].GetLabel()[0].GetValue(), f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	// Output: deployments 1
}
