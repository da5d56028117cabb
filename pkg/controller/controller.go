package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/setpoint/setpoint/pkg/shard"
	"github.com/setpoint/setpoint/pkg/workqueue"
)

// Options tune a Controller. The zero value gives every default.
type Options struct {
	// Name names the controller in logs and metrics, and must be unique
	// within one Metrics. Default: the For kind's Go type name, lowercased
	// (for example "widget").
	Name string
	// Workers is how many reconciles run at once, each for a different key.
	// Default 1.
	Workers int
	// BaseDelay is the first retry delay of a failing key; each further
	// failure doubles it. Default 5ms (the work queue's default).
	BaseDelay time.Duration
	// MaxDelay caps a key's retry delay. Default 1000s (the work queue's
	// default).
	MaxDelay time.Duration
	// RateLimit caps the retries of all keys together, per second, on top
	// of each key's backoff. Default 0: no overall limit.
	RateLimit float64
	// Burst is how many retries may go ahead at once before RateLimit
	// applies. Default 1; ignored without RateLimit.
	Burst int
	// Now is the clock of the work queue's delays, for tests. Default
	// time.Now.
	Now func() time.Time
	// Logger receives reconcile errors and recovered panics. Default
	// slog.Default().
	Logger *slog.Logger
	// Metrics, when set, receives the controller's reconcile outcomes,
	// durations and queue depth. Default: no metrics.
	Metrics *Metrics
	// QueueMetrics, when set, receives the work queue's own metrics (adds,
	// latency, work duration, retries), labelled with Name. Default: none.
	QueueMetrics *workqueue.Metrics
	// Shard, when set, shares the keys among the replicas in its group:
	// this controller reconciles only the keys the member lets it start,
	// drops the others when it dequeues them, and when a new view becomes
	// active enqueues the keys of the For informer's cache it owns. Run the
	// Member too (for example in the same Manager). Default nil: every key.
	Shard *shard.Member
}

// Controller calls a Reconciler for the keys its sources enqueue, from
// Options.Workers goroutines. Build one with For(...).Complete(r).
type Controller struct {
	name    string
	workers int
	do      Reconciler
	queue   *workqueue.Queue[Request]
	sources []Source
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	shard   *shard.Member
	list    func() []Request // the For informer's keys, for Shard
	running atomic.Bool
}

// Name returns the controller's name, as used in logs and metrics.
func (c *Controller) Name() string { return c.name }

// Run waits until every source has synced, then reconciles keys with the
// configured number of workers until ctx ends. It returns nil after ctx ends
// and every in-flight reconcile has returned, or the error that stopped it
// from starting. A Controller runs at most once.
func (c *Controller) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return fmt.Errorf("controller %s: Run called twice", c.name)
	}
	defer c.queue.ShutDown()
	var changed <-chan struct{}
	if c.shard != nil {
		changed = c.shard.Changed()
	}
	for _, src := range c.sources {
		if err := src.WaitForSync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("controller %s: waiting for informers to sync: %w", c.name, err)
		}
	}
	c.log.Info("controller started", "controller", c.name, "workers", c.workers)
	var wg sync.WaitGroup
	if c.shard != nil {
		wg.Go(func() { c.followShard(ctx, changed) })
	}
	for range c.workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	c.log.Info("controller stopped", "controller", c.name)
	return nil
}

// processNext reconciles one key from the queue and reports whether the
// queue is still open. It logs once per key handed out, after the queue is
// done with the key, so a test that reads the log knows the queue's state.
func (c *Controller) processNext(ctx context.Context) bool {
	req, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	if c.shard != nil {
		done, ok := c.shard.Start(req.String())
		if !ok {
			c.queue.Forget(req)
			c.queue.Done(req)
			return true
		}
		defer done()
	}
	start := c.now()
	res, err := c.reconcile(ctx, req)
	outcome := c.settle(req, res, err)
	retries := c.queue.NumRequeues(req)
	c.queue.Done(req)
	if c.metrics != nil {
		c.metrics.observe(c.name, outcome, c.now().Sub(start).Seconds())
	}
	if outcome == OutcomeSuccess || outcome == OutcomeRequeue || outcome == OutcomeRequeueAfter {
		if c.log.Enabled(ctx, slog.LevelDebug) {
			c.log.Debug("reconciled", "controller", c.name, "request", req.String(),
				"outcome", outcome, "retries", retries, "after", res.RequeueAfter)
		}
		return true
	}
	log := c.log.With("controller", c.name, "request", req.String())
	switch outcome {
	case OutcomePanic:
		var p *panicError
		errors.As(err, &p)
		log.Error("reconciler panicked; retrying", "panic", fmt.Sprint(p.value), "retries", retries, "stack", p.stack)
	case OutcomeTerminalError:
		log.Error("reconcile failed; not retrying", "error", err)
	default:
		log.Error("reconcile failed; retrying", "error", err, "retries", retries)
	}
	return true
}

// settle tells the queue what to do with req after a reconcile, and returns
// the outcome.
func (c *Controller) settle(req Request, res Result, err error) string {
	var p *panicError
	switch {
	case errors.As(err, &p):
		c.queue.AddRateLimited(req)
		return OutcomePanic
	case isTerminal(err):
		c.queue.Forget(req)
		return OutcomeTerminalError
	case err != nil:
		c.queue.AddRateLimited(req)
		return OutcomeError
	case res.RequeueAfter > 0:
		c.queue.Forget(req)
		c.queue.AddAfter(req, res.RequeueAfter)
		return OutcomeRequeueAfter
	case res.Requeue:
		c.queue.AddRateLimited(req)
		return OutcomeRequeue
	default:
		c.queue.Forget(req)
		return OutcomeSuccess
	}
}

// panicError is a panic recovered from a reconciler.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("reconciler panicked: %v", e.value) }

// reconcile calls the reconciler, turning a panic into a *panicError.
func (c *Controller) reconcile(ctx context.Context, req Request) (res Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: string(debug.Stack())}
		}
	}()
	return c.do.Reconcile(ctx, req)
}

// followShard enqueues the owned keys of the For informer's cache each time
// the shard member activates a new view, from the first channel changed on.
func (c *Controller) followShard(ctx context.Context, changed <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		changed = c.shard.Changed()
		for _, r := range c.list() {
			if c.shard.Owns(r.String()) {
				c.queue.Add(r)
			}
		}
	}
}

// enqueue adds reqs to the queue; sources call it from their handlers.
func (c *Controller) enqueue(reqs []Request) {
	for _, r := range reqs {
		c.queue.Add(r)
	}
}
