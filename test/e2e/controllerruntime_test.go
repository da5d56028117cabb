package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// quietControllerRuntime gives controller-runtime a logger once, so it does
// not complain that none was set.
var quietControllerRuntime sync.Once

// newWidgetManager builds a controller-runtime manager for namespace ns
// with one controller that sets status.phase to "Seen" and
// status.observedGeneration to the generation of every widget.
func newWidgetManager(t *testing.T, cfg *rest.Config, ns string, opts manager.Options) manager.Manager {
	t.Helper()
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	opts.Metrics = metricsserver.Options{BindAddress: "0"}
	opts.HealthProbeBindAddress = "0"
	opts.Cache = ctrlcache.Options{DefaultNamespaces: map[string]ctrlcache.Config{ns: {}}}
	mgr, err := manager.New(cfg, opts)
	if err != nil {
		t.Fatalf("controller-runtime manager: %v", err)
	}
	newWidget := func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(widgetsGVR.GroupVersion().WithKind("Widget"))
		return u
	}
	rec := reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		u := newWidget()
		if err := mgr.GetClient().Get(ctx, req.NamespacedName, u); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
		if g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); g == u.GetGeneration() {
			return reconcile.Result{}, nil
		}
		patch := client.MergeFrom(u.DeepCopy())
		if err := unstructured.SetNestedField(u.Object, "Seen", "status", "phase"); err != nil {
			return reconcile.Result{}, err
		}
		if err := unstructured.SetNestedField(u.Object, u.GetGeneration(), "status", "observedGeneration"); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, mgr.GetClient().Status().Patch(ctx, u, patch)
	})
	if err := builder.ControllerManagedBy(mgr).Named("widgets-" + ns).For(newWidget()).Complete(rec); err != nil {
		t.Fatalf("controller: %v", err)
	}
	return mgr
}

// runManager starts mgr until the test ends and fails the test if it stops
// with an error.
func runManager(t *testing.T, mgr manager.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller-runtime manager: %v", err)
		}
	})
}

// waitObserved waits until every widget in ns reports status.phase Seen
// for its current generation.
func waitObserved(t *testing.T, c *clients, ns string, want int) {
	t.Helper()
	ctx := testContext(t, time.Minute)
	wc := c.widgets(ns)
	list, err := wc.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}
	for _, it := range list.Items {
		if !observed(&it) {
			pending[it.GetName()] = true
		}
	}
	if len(list.Items) != want {
		t.Fatalf("%d widgets in %s, want %d", len(list.Items), ns, want)
	}
	if len(pending) == 0 {
		return
	}
	w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for len(pending) > 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended with %v not reconciled", pending)
			}
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && observed(u) {
				delete(pending, u.GetName())
			}
		case <-ctx.Done():
			t.Fatalf("the controller did not reconcile %v within a minute", pending)
		}
	}
}

// observed reports whether the controller reported on u's current spec.
func observed(u *unstructured.Unstructured) bool {
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return phase == "Seen" && g == u.GetGeneration()
}

// TestControllerRuntime runs a controller-runtime manager against the
// server: its cache syncs, the controller reconciles existing and new
// objects and spec changes, and its cached client answers label selectors.
func TestControllerRuntime(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "ctrl")
	wc := c.widgets("ctrl")
	for i := range 3 {
		mustCreate(t, ctx, wc, widget("ctrl", fmt.Sprintf("before-%d", i), map[string]string{"when": "before"}, validSpec()))
	}
	mgr := newWidgetManager(t, s.restConfig(), "ctrl", manager.Options{})
	runManager(t, mgr)
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("controller-runtime cache did not sync")
	}
	for i := range 3 {
		mustCreate(t, ctx, wc, widget("ctrl", fmt.Sprintf("after-%d", i), map[string]string{"when": "after"}, validSpec()))
	}
	waitObserved(t, c, "ctrl", 6)

	if _, err := wc.Patch(ctx, "before-1", types.MergePatchType, []byte(`{"spec":{"size":9}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitObserved(t, c, "ctrl", 6)

	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(widgetsGVR.GroupVersion().WithKind("WidgetList"))
	if err := mgr.GetClient().List(ctx, list, client.InNamespace("ctrl"), client.MatchingLabels{"when": "after"}); err != nil {
		t.Fatalf("cached list: %v", err)
	}
	if len(list.Items) != 3 {
		t.Errorf("cached list when=after: %v, want 3 widgets", names(list.Items))
	}
	// A direct (uncached) read through the API reader.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(widgetsGVR.GroupVersion().WithKind("Widget"))
	if err := mgr.GetAPIReader().Get(ctx, client.ObjectKey{Namespace: "ctrl", Name: "before-1"}, u); err != nil || u.GetGeneration() != 2 {
		t.Errorf("API reader get before-1: generation %d, %v", u.GetGeneration(), err)
	}
}

// TestControllerRuntimeLeaderElection runs two managers with leader
// election on coordination.k8s.io/v1 Leases: one leads and reconciles.
// It skips while the server does not serve Leases.
func TestControllerRuntimeLeaderElection(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	dc, err := discovery.NewDiscoveryClientForConfig(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.ServerResourcesForGroupVersion("coordination.k8s.io/v1"); apierrors.IsNotFound(err) {
		t.Skip("the server does not serve coordination.k8s.io/v1 Leases: leader election is not tested")
	}
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "elect")
	mustCreate(t, ctx, c.widgets("elect"), widget("elect", "w", nil, validSpec()))
	opts := manager.Options{LeaderElection: true, LeaderElectionID: "e2e-widgets", LeaderElectionNamespace: "elect"}
	first := newWidgetManager(t, s.restConfig(), "elect", opts)
	second := newWidgetManager(t, s.restConfig(), "elect", opts)
	runManager(t, first)
	runManager(t, second)
	select {
	case <-first.Elected():
	case <-second.Elected():
	case <-ctx.Done():
		t.Fatal("no manager was elected within a minute")
	}
	waitObserved(t, c, "elect", 1)
}
