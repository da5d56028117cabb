// Package namespace is the namespace controller, as Kubernetes has it,
// written on the public controller SDK: when a namespace is being deleted
// (deletionTimestamp set, status.phase Terminating, "kubernetes" in
// spec.finalizers) it deletes every object of every served namespaced
// resource in it, waits until none is left (objects with finalizers keep
// the namespace Terminating, and the NamespaceContentRemaining and
// NamespaceFinalizersRemaining conditions say so), then removes "kubernetes" from
// spec.finalizers through the finalize subresource, after which the
// server deletes the namespace.
//
// Every pass reads the current state from the server, so a restarted
// controller catches up with namespaces deleted while it was down: the
// informer lists them when it starts.
package namespace

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/workqueue"
)

// Defaults of Options' fields.
const (
	DefaultWorkers      = 2
	DefaultRecheck      = time.Second
	DefaultResyncPeriod = 5 * time.Minute
)

// finalizer is the spec.finalizers entry this controller owns.
const finalizer corev1.FinalizerName = corev1.FinalizerKubernetes

// Options tune a Controller. The zero value takes the defaults.
type Options struct {
	// Workers is how many namespaces are processed at once. Default 2.
	Workers int
	// Recheck is how long a namespace whose content is still going (objects
	// waiting for their finalizers) waits before the next pass. Default 1s.
	Recheck time.Duration
	// ResyncPeriod is how often every namespace is looked at again even
	// without a change. Default 5 minutes.
	ResyncPeriod time.Duration
	// Logger receives what the controller does and its failures. Default
	// slog.Default().
	Logger *slog.Logger
}

// meta is what the controller reads of the content: its metadata alone.
type meta = metav1.PartialObjectMetadata

// Controller is the namespace controller. Create it with New and call Run.
type Controller struct {
	cfg   *rest.Config
	opts  Options
	log   *slog.Logger
	disco discovery.DiscoveryInterface
	core  kubernetes.Interface

	mu      sync.Mutex
	clients map[client.Resource]*client.Client[meta, *meta]
}

// New returns a namespace controller for the server cfg points at.
func New(cfg *rest.Config, opts Options) (*Controller, error) {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Recheck <= 0 {
		opts.Recheck = DefaultRecheck
	}
	if opts.ResyncPeriod <= 0 {
		opts.ResyncPeriod = DefaultResyncPeriod
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("namespace controller: discovery client: %w", err)
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("namespace controller: client: %w", err)
	}
	return &Controller{
		cfg:     cfg,
		opts:    opts,
		log:     opts.Logger.With("controller", "namespace"),
		disco:   d,
		core:    core,
		clients: map[client.Resource]*client.Client[meta, *meta]{},
	}, nil
}

// Run watches namespaces and finalizes those being deleted until ctx
// ends. It returns nil when ctx ends and an error when it cannot start.
func (c *Controller) Run(ctx context.Context) error {
	nsClient, err := client.New[meta](c.cfg, client.Resource{Version: "v1", Resource: "namespaces", Kind: "Namespace"})
	if err != nil {
		return fmt.Errorf("namespace controller: %w", err)
	}
	queue := workqueue.New[string](workqueue.Options{Name: "namespace"})
	inf := informer.New[meta, *meta](nsClient, informer.Options[*meta]{ResyncPeriod: c.opts.ResyncPeriod, Logger: c.log})
	enqueue := func(ns *meta) {
		if ns.DeletionTimestamp != nil {
			queue.Add(ns.Name)
		}
	}
	inf.AddHandler(informer.Handler[*meta]{
		OnAdd:    enqueue,
		OnUpdate: func(_, ns *meta) { enqueue(ns) },
	})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		queue.ShutDown()
		wg.Wait()
	}()
	wg.Go(func() {
		if err := inf.Run(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("namespace informer stopped", "err", err)
		}
	})
	for range c.opts.Workers {
		wg.Go(func() {
			for {
				name, shutdown := queue.Get()
				if shutdown {
					return
				}
				done, err := c.sync(ctx, name)
				switch {
				case err != nil:
					if ctx.Err() == nil {
						c.log.Warn("namespace not finalized yet", "namespace", name, "err", err)
					}
					queue.AddRateLimited(name)
				case !done:
					queue.Forget(name)
					queue.AddAfter(name, c.opts.Recheck)
				default:
					queue.Forget(name)
				}
				queue.Done(name)
			}
		})
	}
	<-ctx.Done()
	return nil
}

// sync makes one pass over the namespace name and reports whether it is
// done with it: not being deleted, gone, or its finalizer removed.
func (c *Controller) sync(ctx context.Context, name string) (bool, error) {
	ns, err := c.core.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if client.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read namespace: %w", err)
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, finalizer) {
		return true, nil
	}
	left, err := c.deleteContent(ctx, name)
	if err != nil {
		return false, err
	}
	if left.objects > 0 {
		return false, c.report(ctx, ns, left)
	}
	ns.Spec.Finalizers = slices.DeleteFunc(ns.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == finalizer })
	if _, err := c.core.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !client.IsNotFound(err) {
		return false, fmt.Errorf("finalize: %w", err)
	}
	c.log.Info("namespace finalized", "namespace", name)
	return true, nil
}

// remaining is what is left in a namespace after a pass: objects being
// deleted, counted by resource and by the finalizers they wait for.
type remaining struct {
	objects    int
	byResource map[string]int
	byFinal    map[string]int
}

// deleteContent deletes every object in namespace of every served
// namespaced resource that can be listed and deleted, and returns what is
// left (objects being deleted, waiting for finalizers).
func (c *Controller) deleteContent(ctx context.Context, namespace string) (remaining, error) {
	left := remaining{byResource: map[string]int{}, byFinal: map[string]int{}}
	resources, err := c.discover()
	if err != nil {
		return left, err
	}
	for _, res := range resources {
		cl, err := c.client(res)
		if err != nil {
			return left, err
		}
		list, err := cl.ListAll(ctx, namespace, metav1.ListOptions{})
		if client.IsNotFound(err) {
			continue // the resource went away since discovery
		}
		if err != nil {
			return left, fmt.Errorf("list %s: %w", res.GroupVersionResource(), err)
		}
		gr := res.GroupVersionResource().GroupResource().String()
		for i := range list.Items {
			obj := &list.Items[i]
			left.objects++
			left.byResource[gr]++
			for _, f := range obj.Finalizers {
				left.byFinal[f]++
			}
			if obj.DeletionTimestamp != nil {
				continue
			}
			err := cl.Delete(ctx, namespace, obj.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &obj.UID}})
			if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
				return left, fmt.Errorf("delete %s %s/%s: %w", res.GroupVersionResource(), namespace, obj.Name, err)
			}
		}
	}
	return left, nil
}

// report records what keeps ns Terminating in its status conditions, as
// Kubernetes does (NamespaceContentRemaining,
// NamespaceFinalizersRemaining); it writes only when they change.
func (c *Controller) report(ctx context.Context, ns *corev1.Namespace, left remaining) error {
	next := slices.Clone(ns.Status.Conditions)
	changed := false
	set := func(typ corev1.NamespaceConditionType, counts map[string]int, unit string, yes, no corev1.NamespaceCondition) {
		cond := no
		if len(counts) > 0 {
			parts := make([]string, 0, len(counts))
			for _, k := range slices.Sorted(maps.Keys(counts)) {
				parts = append(parts, fmt.Sprintf("%s %s %d resource instances", k, unit, counts[k]))
			}
			cond = yes
			cond.Message += strings.Join(parts, ", ")
		}
		cond.Type = typ
		i := slices.IndexFunc(next, func(x corev1.NamespaceCondition) bool { return x.Type == typ })
		if i >= 0 && next[i].Status == cond.Status && next[i].Reason == cond.Reason && next[i].Message == cond.Message {
			return
		}
		changed = true
		cond.LastTransitionTime = metav1.Now()
		if i >= 0 {
			next[i] = cond
		} else {
			next = append(next, cond)
		}
	}
	set(corev1.NamespaceContentRemaining, left.byResource, "has",
		corev1.NamespaceCondition{Status: corev1.ConditionTrue, Reason: "SomeResourcesRemain", Message: "Some resources are remaining: "},
		corev1.NamespaceCondition{Status: corev1.ConditionFalse, Reason: "ContentDeleted", Message: "All content successfully deleted, may be waiting on finalization"})
	set(corev1.NamespaceFinalizersRemaining, left.byFinal, "in",
		corev1.NamespaceCondition{Status: corev1.ConditionTrue, Reason: "SomeFinalizersRemain", Message: "Some content in the namespace has finalizers remaining: "},
		corev1.NamespaceCondition{Status: corev1.ConditionFalse, Reason: "ContentHasNoFinalizers", Message: "All content-preserving finalizers finished"})
	if !changed {
		return nil
	}
	ns = ns.DeepCopy()
	ns.Status.Conditions = next
	if _, err := c.core.CoreV1().Namespaces().UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

// discover returns the preferred version of every served namespaced
// resource that can be listed and deleted.
func (c *Controller) discover() ([]client.Resource, error) {
	lists, err := c.disco.ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var out []client.Resource
	for _, list := range lists {
		gv, perr := schema.ParseGroupVersion(list.GroupVersion)
		if perr != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			out = append(out, client.Resource{Group: gv.Group, Version: gv.Version, Resource: r.Name, Kind: r.Kind, Namespaced: true})
		}
	}
	if err != nil {
		// A group that failed to answer may hold content: not done yet.
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return out, nil
}

// client returns the metadata client of res, made once.
func (c *Controller) client(res client.Resource) (*client.Client[meta, *meta], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[res]; ok {
		return cl, nil
	}
	cl, err := client.New[meta](c.cfg, res)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", res.GroupVersionResource(), err)
	}
	c.clients[res] = cl
	return cl, nil
}
