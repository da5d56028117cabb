// Package gc is the owner-reference garbage collector, as Kubernetes has
// it, written on the public controller SDK: it discovers every served
// resource, watches their metadata with informers, keeps the graph of
// owners and dependents, and on a work queue
//
//   - deletes objects whose owners are all gone (verified with a live read,
//     so a reference to an owner that never existed counts as gone),
//   - deletes the dependents of an owner in foreground deletion and removes
//     its foregroundDeletion finalizer once no dependent with
//     blockOwnerDeletion is left,
//   - removes the references to an owner with the orphan finalizer from its
//     dependents, then the finalizer.
//
// Every decision is made from the current state, read again from the
// server before a write, so that a missed event changes nothing: informers
// relist after a break and resync periodically, and a restarted collector
// catches up with what happened while it was down.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/workqueue"
)

// Defaults of Options' fields.
const (
	DefaultWorkers         = 4
	DefaultResyncPeriod    = 5 * time.Minute
	DefaultDiscoveryPeriod = 30 * time.Second
)

// Options tune a Collector. The zero value takes the defaults.
type Options struct {
	// Workers is how many objects are processed at once. Default 4.
	Workers int
	// ResyncPeriod is how often every watched object is processed again
	// even without a change. Default 5 minutes.
	ResyncPeriod time.Duration
	// DiscoveryPeriod is how often the served resources are discovered
	// again; a CustomResourceDefinition changing triggers discovery at
	// once. Default 30 seconds.
	DiscoveryPeriod time.Duration
	// Logger receives what the collector does and its failures. Default
	// slog.Default().
	Logger *slog.Logger
}

// meta is what the collector reads of every object: its metadata alone,
// which the client asks the server for (PartialObjectMetadata).
type meta = metav1.PartialObjectMetadata

// metaClient reads and writes the metadata of one resource.
type metaClient = client.Client[meta, *meta]

// Collector is the garbage collector. Create it with New and call Run.
type Collector struct {
	cfg   *rest.Config
	opts  Options
	log   *slog.Logger
	disco discovery.DiscoveryInterface
	graph *graph
	// queue holds the uids to process; set by Run before any informer
	// starts.
	queue *workqueue.Queue[types.UID]
	// rediscover asks Run's loop to discover again.
	rediscover chan struct{}

	mu      sync.RWMutex
	cat     *catalog
	clients map[client.Resource]*metaClient
	running map[client.Resource]*watcher
	absent  map[absentKey]struct{}
	// parked holds the uids waiting for every informer to sync.
	parked map[types.UID]struct{}
}

// watcher is the informer of one resource.
type watcher struct {
	inf    *informer.Informer[meta, *meta]
	cancel context.CancelFunc
	// wg tracks the informer and the goroutine waiting for its sync.
	wg sync.WaitGroup
}

// absentKey names an owner verified not to exist: its uid, and the
// namespace it was looked for in; "" for a cluster-scoped kind or an
// object seen deleted, whose uid exists nowhere.
type absentKey struct {
	uid       types.UID
	namespace string
}

// maxAbsent bounds the memory of absent owners; past it the memory starts
// over and owners are read from the server again.
const maxAbsent = 10000

// New returns a collector for the server cfg points at.
func New(cfg *rest.Config, opts Options) (*Collector, error) {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.ResyncPeriod <= 0 {
		opts.ResyncPeriod = DefaultResyncPeriod
	}
	if opts.DiscoveryPeriod <= 0 {
		opts.DiscoveryPeriod = DefaultDiscoveryPeriod
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("gc: discovery client: %w", err)
	}
	return &Collector{
		cfg:        cfg,
		opts:       opts,
		log:        opts.Logger.With("controller", "garbage-collector"),
		disco:      d,
		graph:      newGraph(),
		rediscover: make(chan struct{}, 1),
		clients:    map[client.Resource]*metaClient{},
		running:    map[client.Resource]*watcher{},
		absent:     map[absentKey]struct{}{},
		parked:     map[types.UID]struct{}{},
	}, nil
}

// Run collects garbage until ctx ends, then returns nil once every
// goroutine it started has stopped. Failures are logged and retried. Run
// may be called once.
func (c *Collector) Run(ctx context.Context) error {
	c.queue = workqueue.New[types.UID](workqueue.Options{Name: "garbage-collector", MaxDelay: maxRetryDelay})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		c.queue.ShutDown()
		c.stopAll()
		wg.Wait()
	}()
	for range c.opts.Workers {
		wg.Go(func() { c.work(ctx) })
	}
	tick := time.NewTicker(c.opts.DiscoveryPeriod)
	defer tick.Stop()
	for {
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("gc: discovery failed, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-c.rediscover:
		}
	}
}

// maxRetryDelay caps the backoff of an object whose processing fails.
const maxRetryDelay = time.Minute

// poke asks for discovery to run again soon.
func (c *Collector) poke() {
	select {
	case c.rediscover <- struct{}{}:
	default:
	}
}

// sync discovers the served resources and starts and stops informers to
// match. When the resources changed every known object is processed
// again: a reference to a kind that was unknown may resolve now.
func (c *Collector) sync(ctx context.Context) error {
	cat, err := discover(c.disco)
	if cat == nil {
		return err
	}
	want := map[client.Resource]bool{}
	for _, res := range cat.watch {
		want[res] = true
	}
	c.mu.Lock()
	c.cat = cat
	var stale []client.Resource
	for res := range c.running {
		if !want[res] {
			stale = append(stale, res)
		}
	}
	c.mu.Unlock()
	changed := len(stale) > 0
	for _, res := range stale {
		c.stop(res)
		c.enqueue(c.graph.forget(res))
		c.log.Info("gc: stopped watching", "resource", res.GroupVersionResource().String())
	}
	for _, res := range cat.watch {
		c.mu.RLock()
		_, ok := c.running[res]
		c.mu.RUnlock()
		if ok {
			continue
		}
		if serr := c.start(ctx, res); serr != nil {
			err = errors.Join(err, serr)
			continue
		}
		changed = true
	}
	if changed {
		c.enqueue(c.graph.all())
	}
	return err
}

// clientFor returns the metadata client of res.
func (c *Collector) clientFor(res client.Resource) (*metaClient, error) {
	c.mu.RLock()
	cl, ok := c.clients[res]
	c.mu.RUnlock()
	if ok {
		return cl, nil
	}
	cl, err := client.New[meta](c.cfg, res)
	if err != nil {
		return nil, fmt.Errorf("gc: client for %s: %w", res.GroupVersionResource(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.clients[res]; ok {
		return prev, nil
	}
	c.clients[res] = cl
	return cl, nil
}

// crdResource is the resource whose changes trigger discovery.
var crdResource = client.Resource{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}

// start runs an informer over res that feeds the graph.
func (c *Collector) start(ctx context.Context, res client.Resource) error {
	cl, err := c.clientFor(res)
	if err != nil {
		return err
	}
	inf := informer.New[meta, *meta](cl, informer.Options[*meta]{
		ResyncPeriod: c.opts.ResyncPeriod,
		Transform:    slim,
		Logger:       c.log.With("resource", res.GroupVersionResource().String()),
	})
	isCRD := res.Group == crdResource.Group && res.Resource == crdResource.Resource
	inf.AddHandler(informer.Handler[*meta]{
		OnAdd: func(o *meta) {
			c.enqueue(c.graph.upsert(nodeOf(res, o)))
			if isCRD {
				c.poke()
			}
		},
		OnUpdate: func(old, o *meta) {
			c.enqueue(c.graph.upsert(nodeOf(res, o)))
			if isCRD && old != o {
				c.poke()
			}
		},
		OnDelete: func(o *meta) {
			// A uid is never reused: the owner is gone in every namespace.
			c.markAbsent(absentKey{uid: o.UID})
			c.enqueue(c.graph.remove(res, o.UID))
			if isCRD {
				c.poke()
			}
		},
	})
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{inf: inf, cancel: cancel}
	c.mu.Lock()
	c.running[res] = w
	c.mu.Unlock()
	w.wg.Go(func() { _ = inf.Run(wctx) })
	w.wg.Go(func() {
		if inf.WaitForSync(wctx) == nil {
			c.unpark()
		}
	})
	c.log.Debug("gc: watching", "resource", res.GroupVersionResource().String())
	return nil
}

// slim keeps of o only what the collector reads (identity,
// resourceVersion, deletion, finalizers and owner references), so that the
// informers' caches do not hold the labels, annotations and managedFields
// of every object.
func slim(o *meta) *meta {
	*o = meta{TypeMeta: o.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name:              o.Name,
		Namespace:         o.Namespace,
		UID:               o.UID,
		ResourceVersion:   o.ResourceVersion,
		DeletionTimestamp: o.DeletionTimestamp,
		Finalizers:        o.Finalizers,
		OwnerReferences:   o.OwnerReferences,
	}}
	return o
}

// stop ends the informer of res and waits for it.
func (c *Collector) stop(res client.Resource) {
	c.mu.Lock()
	w := c.running[res]
	delete(c.running, res)
	c.mu.Unlock()
	if w != nil {
		w.cancel()
		w.wg.Wait()
		// The stopped informer no longer holds parked work back.
		c.unpark()
	}
}

// stopAll ends every informer and waits for them.
func (c *Collector) stopAll() {
	c.mu.RLock()
	var all []client.Resource
	for res := range c.running {
		all = append(all, res)
	}
	c.mu.RUnlock()
	for _, res := range all {
		c.stop(res)
	}
}

// park holds uid back, and reports true, while some informer has not
// loaded its first list; unpark queues the held uids once all have.
func (c *Collector) park(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.syncedLocked() {
		return false
	}
	c.parked[uid] = struct{}{}
	return true
}

// unpark queues the parked uids if every informer has synced.
func (c *Collector) unpark() {
	c.mu.Lock()
	if !c.syncedLocked() {
		c.mu.Unlock()
		return
	}
	parked := c.parked
	c.parked = map[types.UID]struct{}{}
	c.mu.Unlock()
	for uid := range parked {
		c.queue.Add(uid)
	}
}

// syncedLocked reports whether every informer has loaded its first list,
// so that the graph knows every object that existed before it started.
// c.mu is held.
func (c *Collector) syncedLocked() bool {
	for _, w := range c.running {
		if !w.inf.HasSynced() {
			return false
		}
	}
	return true
}

// enqueue queues uids for processing.
func (c *Collector) enqueue(uids []types.UID) {
	for _, uid := range uids {
		c.queue.Add(uid)
	}
}

// markAbsent remembers that an owner does not exist.
func (c *Collector) markAbsent(k absentKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.absent) >= maxAbsent {
		clear(c.absent)
	}
	c.absent[k] = struct{}{}
}

// isAbsent reports whether an owner is known not to exist.
func (c *Collector) isAbsent(k absentKey) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.absent[k]
	return ok
}

// work processes queued uids until the queue shuts down.
func (c *Collector) work(ctx context.Context) {
	for {
		uid, shutdown := c.queue.Get()
		if shutdown {
			return
		}
		err := c.process(ctx, uid)
		switch {
		case err == nil:
			c.queue.Forget(uid)
		case ctx.Err() != nil:
		default:
			c.log.Info("gc: retrying", "uid", uid, "err", err)
			c.queue.AddRateLimited(uid)
		}
		c.queue.Done(uid)
	}
}
