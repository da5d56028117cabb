package controller

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

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
	// Now is the clock of the work queue's delays, for tests. Default
	// time.Now.
	Now func() time.Time
	// Logger receives reconcile errors and recovered panics. Default
	// slog.Default().
	Logger *slog.Logger
	// Metrics, when set, receives the controller's reconcile outcomes,
	// durations and queue depth. Default: no metrics.
	Metrics *Metrics
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
// queue is still open.
func (c *Controller) processNext(ctx context.Context) bool {
	req, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(req)
	start := c.now()
	res, panicked, err := c.reconcile(ctx, req)
	outcome := OutcomeSuccess
	switch {
	case panicked:
		outcome = OutcomePanic
		c.queue.AddRateLimited(req)
	case err != nil && isTerminal(err):
		outcome = OutcomeTerminalError
		c.queue.Forget(req)
		c.log.Error("reconcile failed; not retrying", "controller", c.name, "request", req.String(), "error", err)
	case err != nil:
		outcome = OutcomeError
		c.queue.AddRateLimited(req)
		c.log.Error("reconcile failed; retrying", "controller", c.name, "request", req.String(),
			"error", err, "retries", c.queue.NumRequeues(req))
	case res.RequeueAfter > 0:
		outcome = OutcomeRequeueAfter
		c.queue.Forget(req)
		c.queue.AddAfter(req, res.RequeueAfter)
	case res.Requeue:
		outcome = OutcomeRequeue
		c.queue.AddRateLimited(req)
	default:
		c.queue.Forget(req)
	}
	if c.metrics != nil {
		c.metrics.observe(c.name, outcome, c.now().Sub(start).Seconds())
	}
	return true
}

// reconcile calls the reconciler, turning a panic into an error.
func (c *Controller) reconcile(ctx context.Context, req Request) (res Result, panicked bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked = true
			err = fmt.Errorf("reconciler panicked: %v", p)
			c.log.Error("reconciler panicked; retrying", "controller", c.name, "request", req.String(),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	res, err = c.do.Reconcile(ctx, req)
	return res, false, err
}

// enqueue adds reqs to the queue; sources call it from their handlers.
func (c *Controller) enqueue(reqs []Request) {
	for _, r := range reqs {
		c.queue.Add(r)
	}
}
