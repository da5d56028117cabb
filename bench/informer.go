package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// informerSync starts opts.rounds fresh dynamic informers on the widgets
// of the bench namespace, one after another, and reports the median time
// from starting one until it has synced: what a controller waits for at
// start-up. The time includes client-go decoding the objects, the same
// work for any server.
func informerSync(ctx context.Context, e *env, rep *Report) error {
	rounds := make([]float64, 0, e.opts.rounds)
	for range e.opts.rounds {
		took, err := syncInformer(ctx, e, e.opts.objects)
		if err != nil {
			return err
		}
		rounds = append(rounds, millis(took))
	}
	rep.addRounds("informer", fmt.Sprintf("dynamic informer synced, %s objects", formatNumber(float64(e.opts.objects), 0)), rounds, "ms", nil)
	return nil
}

// syncInformer runs one informer until it has synced, checks that its
// cache holds want objects, and returns how long the sync took.
func syncInformer(ctx context.Context, e *env, want int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(e.clients.dyn, 0, nsBench, nil)
	informer := factory.ForResource(widgetGVR).Informer()
	// The first list or watch error ends the sync: client-go would retry
	// it forever.
	failed := make(chan error, 1)
	if err := informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		select {
		case failed <- err:
		default:
		}
	}); err != nil {
		return 0, fmt.Errorf("informer error handler: %w", err)
	}
	start := time.Now()
	stop := make(chan struct{})
	factory.Start(stop)
	defer factory.Shutdown() // waits for the informer, which close(stop) ends
	defer close(stop)
	// Polled every millisecond: cache.WaitForCacheSync polls every 100.
	for !informer.HasSynced() {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("informer not synced: %w", ctx.Err())
		case err := <-failed:
			return 0, fmt.Errorf("informer list or watch: %w", err)
		case <-time.After(time.Millisecond):
		}
	}
	took := time.Since(start)
	if got := len(informer.GetStore().ListKeys()); got != want {
		return 0, fmt.Errorf("informer synced %d objects, want %d", got, want)
	}
	return took, nil
}
