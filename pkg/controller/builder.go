package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/workqueue"
)

// Source feeds a Controller with object events. Kind adapts an informer; any
// other type with these methods works too.
type Source interface {
	// AddHandler registers h. The source calls its funcs, all of which are
	// set, in event order from one goroutine.
	AddHandler(h EventHandler)
	// WaitForSync blocks until the source has delivered its initial state
	// or ctx ends.
	WaitForSync(ctx context.Context) error
}

// EventHandler receives a Source's events.
type EventHandler struct {
	// OnAdd is called for an object the source sees for the first time.
	OnAdd func(obj client.Object)
	// OnUpdate is called when an object changes, with its old and new state.
	OnUpdate func(old, new client.Object)
	// OnDelete is called with the last known state of a deleted object.
	OnDelete func(obj client.Object)
}

// MapFunc maps an object a controller watches to the requests to reconcile.
// It runs on the source's event goroutine and must be quick: look objects up
// in informer caches, not over the network.
type MapFunc func(obj client.Object) []Request

// Kind adapts an informer to a Source, for Builder.Owns and Builder.Watches.
// A nil informer gives a nil Source, which the Builder reports.
func Kind[T any, PT interface {
	*T
	client.Object
}](inf *informer.Informer[T, PT]) Source {
	if inf == nil {
		return nil
	}
	return kindSource[T, PT]{inf: inf}
}

type kindSource[T any, PT interface {
	*T
	client.Object
}] struct {
	inf *informer.Informer[T, PT]
}

func (s kindSource[T, PT]) AddHandler(h EventHandler) {
	s.inf.AddHandler(informer.Handler[PT]{
		OnAdd:    func(obj PT) { h.OnAdd(obj) },
		OnUpdate: func(old, new PT) { h.OnUpdate(old, new) },
		OnDelete: func(obj PT) { h.OnDelete(obj) },
	})
}

func (s kindSource[T, PT]) WaitForSync(ctx context.Context) error { return s.inf.WaitForSync(ctx) }

// Builder wires a Controller to its sources. Start one with For; its methods
// record mistakes and Complete returns them all.
type Builder struct {
	name    string // default controller name, from the For kind
	lookup  func(namespace, name string) (client.Object, bool)
	list    func() []Request
	watches []watch
	opts    Options
	errs    []error
}

type watch struct {
	src Source
	fn  MapFunc
}

// For starts a Builder for a controller that reconciles the objects of inf:
// every add, update and delete of one of them enqueues its own key.
func For[T any, PT interface {
	*T
	client.Object
}](inf *informer.Informer[T, PT]) *Builder {
	b := &Builder{name: strings.ToLower(reflect.TypeFor[T]().Name())}
	if inf == nil {
		b.errs = append(b.errs, errors.New("controller: For needs an informer"))
		return b
	}
	b.lookup = func(namespace, name string) (client.Object, bool) {
		obj, ok := inf.Get(namespace, name)
		return obj, ok
	}
	b.list = func() []Request {
		objs := inf.List()
		reqs := make([]Request, len(objs))
		for i, obj := range objs {
			reqs[i] = Request{Namespace: obj.GetNamespace(), Name: obj.GetName()}
		}
		return reqs
	}
	b.watches = append(b.watches, watch{src: Kind(inf), fn: func(obj client.Object) []Request {
		return []Request{{Namespace: obj.GetNamespace(), Name: obj.GetName()}}
	}})
	return b
}

// Owns watches the children in src: an event of a child enqueues the owner
// named by its owner reference with controller=true, when that owner is an
// object of the For kind (matched by UID in the For informer's cache, in the
// child's namespace or cluster-scoped).
func (b *Builder) Owns(src Source) *Builder {
	if src == nil {
		b.errs = append(b.errs, errors.New("controller: Owns needs a source"))
		return b
	}
	b.watches = append(b.watches, watch{src: src, fn: b.ownerOf})
	return b
}

// Watches enqueues, for each event of an object in src, the requests fn
// maps it to.
func (b *Builder) Watches(src Source, fn MapFunc) *Builder {
	switch {
	case src == nil:
		b.errs = append(b.errs, errors.New("controller: Watches needs a source"))
	case fn == nil:
		b.errs = append(b.errs, errors.New("controller: Watches needs a MapFunc"))
	default:
		b.watches = append(b.watches, watch{src: src, fn: fn})
	}
	return b
}

// WithOptions sets the controller's Options; a later call replaces an
// earlier one.
func (b *Builder) WithOptions(opts Options) *Builder {
	if opts.Workers < 0 {
		b.errs = append(b.errs, fmt.Errorf("controller: Options.Workers is %d, want 0 (default 1) or more", opts.Workers))
	}
	if opts.BaseDelay < 0 || opts.MaxDelay < 0 || opts.RateLimit < 0 || opts.Burst < 0 {
		b.errs = append(b.errs, errors.New("controller: Options.BaseDelay, MaxDelay, RateLimit and Burst must not be negative"))
	}
	b.opts = opts
	return b
}

// Complete builds the Controller that calls r, registering its handlers
// with every source, or returns every mistake the Builder recorded. Run the
// controller, and the informers, to start it.
func (b *Builder) Complete(r Reconciler) (*Controller, error) {
	errs := b.errs
	if r == nil {
		errs = append(errs, errors.New("controller: Complete needs a Reconciler"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts := b.opts
	if opts.Name == "" {
		opts.Name = b.name
	}
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Controller{
		name:    opts.Name,
		workers: opts.Workers,
		do:      r,
		queue: workqueue.New[Request](workqueue.Options{
			BaseDelay: opts.BaseDelay,
			MaxDelay:  opts.MaxDelay,
			RateLimit: opts.RateLimit,
			Burst:     opts.Burst,
			Now:       opts.Now,
			Name:      opts.Name,
			Metrics:   opts.QueueMetrics,
		}),
		log:     opts.Logger,
		metrics: opts.Metrics,
		now:     opts.Now,
		shard:   opts.Shard,
		list:    b.list,
	}
	if c.metrics != nil {
		if err := c.metrics.addQueue(c.name, c.queue.Len); err != nil {
			return nil, err
		}
	}
	for _, w := range b.watches {
		fn := w.fn
		c.sources = append(c.sources, w.src)
		w.src.AddHandler(EventHandler{
			OnAdd:    func(obj client.Object) { c.enqueue(fn(obj)) },
			OnUpdate: func(old, new client.Object) { c.enqueue(fn(old)); c.enqueue(fn(new)) },
			OnDelete: func(obj client.Object) { c.enqueue(fn(obj)) },
		})
	}
	return c, nil
}

// ownerOf maps a child to its controlling owner of the For kind.
func (b *Builder) ownerOf(obj client.Object) []Request {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		for _, ns := range []string{obj.GetNamespace(), ""} {
			if owner, ok := b.lookup(ns, ref.Name); ok && owner.GetUID() == ref.UID {
				return []Request{{Namespace: owner.GetNamespace(), Name: owner.GetName()}}
			}
			if ns == "" {
				break
			}
		}
		return nil // at most one owner reference is the controller
	}
	return nil
}
