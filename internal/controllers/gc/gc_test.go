package gc_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/internal/controllers/controllertest"
	"github.com/setpoint/setpoint/internal/controllers/gc"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 30 * time.Second

var (
	crdGVR     = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	widgetGVR  = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	gizmoGVR   = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gizmos"}
	cmGVR      = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	nsGVR      = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	holdFinal  = "example.com/hold"
	background = metav1.DeletePropagationBackground
	foreground = metav1.DeletePropagationForeground
	orphan     = metav1.DeletePropagationOrphan
)

// env is a server without its own collector, a dynamic client, and the
// means to run collectors.
type env struct {
	t   *testing.T
	cfg *rest.Config
	dyn dynamic.Interface
}

// newEnv starts a server with its collector off, so that the test runs
// (and stops) its own.
func newEnv(t *testing.T) *env {
	t.Helper()
	s := setpointtest.Start(t, setpointtest.Options{DisableGarbageCollector: true})
	cfg := s.RESTConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, cfg: cfg, dyn: dyn}
}

// collector runs a collector until the returned stop is called or the
// test ends.
func (e *env) collector() (stop func()) {
	e.t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := gc.New(e.cfg, gc.Options{Logger: logger, DiscoveryPeriod: time.Hour})
	if err != nil {
		e.t.Fatal(err)
	}
	return controllertest.Run(e.t, "collector", c.Run)
}

// ctx is a context for one step of a test.
func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	e.t.Cleanup(cancel)
	return ctx
}

// installCRDs serves namespaced Widgets and cluster-scoped Gizmos and
// waits until both are listed.
func (e *env) installCRDs() {
	e.t.Helper()
	for _, c := range []struct{ plural, kind, scope string }{{"widgets", "Widget", "Namespaced"}, {"gizmos", "Gizmo", "Cluster"}} {
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": c.plural + ".example.com"},
			"spec": map[string]any{
				"group": "example.com", "scope": c.scope,
				"names": map[string]any{"plural": c.plural, "kind": c.kind},
				"versions": []any{map[string]any{
					"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
				}},
			},
		}}
		if _, err := e.dyn.Resource(crdGVR).Create(e.ctx(), crd, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, gvr := range []schema.GroupVersionResource{widgetGVR, gizmoGVR} {
		e.eventually(func() error {
			_, err := e.dyn.Resource(gvr).List(e.ctx(), metav1.ListOptions{})
			return err
		})
	}
}

// eventually retries f, waiting for the CRD's resource to be served (the
// one wait these tests cannot watch for).
func (e *env) eventually(f func() error) {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal(err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-e.t.Context().Done():
			e.t.Fatal(err)
		}
	}
}

// createNamespace creates a namespace.
func (e *env) createNamespace(name string) {
	e.t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	if _, err := e.dyn.Resource(nsGVR).Create(e.ctx(), ns, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// ref is an owner reference to o; block sets blockOwnerDeletion.
func ref(o *unstructured.Unstructured, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Name: o.GetName(), UID: o.GetUID(), BlockOwnerDeletion: &block}
}

// create creates an object of gvr (kind kind) with owners and finalizers.
func (e *env) create(gvr schema.GroupVersionResource, kind, ns, name string, finalizers []string, owners ...metav1.OwnerReference) *unstructured.Unstructured {
	e.t.Helper()
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": gvr.GroupVersion().String(), "kind": kind}}
	o.SetName(name)
	o.SetNamespace(ns)
	o.SetOwnerReferences(owners)
	o.SetFinalizers(finalizers)
	got, err := e.res(gvr, ns).Create(e.ctx(), o, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create %s %s/%s: %v", kind, ns, name, err)
	}
	return got
}

// widget creates a Widget in namespace "default".
func (e *env) widget(name string, finalizers []string, owners ...metav1.OwnerReference) *unstructured.Unstructured {
	e.t.Helper()
	return e.create(widgetGVR, "Widget", "default", name, finalizers, owners...)
}

func (e *env) res(gvr schema.GroupVersionResource, ns string) dynamic.ResourceInterface {
	if ns == "" {
		return e.dyn.Resource(gvr)
	}
	return e.dyn.Resource(gvr).Namespace(ns)
}

// remove deletes o with policy.
func (e *env) remove(gvr schema.GroupVersionResource, o *unstructured.Unstructured, policy metav1.DeletionPropagation) {
	e.t.Helper()
	if err := e.res(gvr, o.GetNamespace()).Delete(e.ctx(), o.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		e.t.Fatalf("delete %s: %v", o.GetName(), err)
	}
}

// get reads an object; nil when it does not exist.
func (e *env) get(gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	e.t.Helper()
	o, err := e.res(gvr, ns).Get(e.ctx(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

// waitFor watches the object until cond holds for it (nil: gone) and
// returns its state then.
func (e *env) waitFor(gvr schema.GroupVersionResource, ns, name, what string, cond func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	e.t.Helper()
	ctx := e.ctx()
	cl := e.res(gvr, ns)
	list, err := cl.List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		e.t.Fatal(err)
	}
	var cur *unstructured.Unstructured
	if len(list.Items) > 0 {
		cur = &list.Items[0]
	}
	if cond(cur) {
		return cur
	}
	w, err := cl.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		e.t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			e.t.Fatalf("%s %s: watch event %s %v", name, what, ev.Type, ev.Object)
		}
		cur = u
		if ev.Type == watch.Deleted {
			cur = nil
		}
		if cond(cur) {
			return cur
		}
	}
	e.t.Fatalf("%s: not %s within %v (last %v)", name, what, waitTimeout, cur)
	return nil
}

func gone(o *unstructured.Unstructured) bool { return o == nil }

func (e *env) waitGone(gvr schema.GroupVersionResource, ns, name string) {
	e.t.Helper()
	e.waitFor(gvr, ns, name, "gone", gone)
}

// deleting holds for an object marked for deletion.
func deleting(o *unstructured.Unstructured) bool { return o != nil && o.GetDeletionTimestamp() != nil }

// TestBackgroundChain deletes the head of an owner chain in background:
// the child goes after it, and the grandchild after the child.
func TestBackgroundChain(t *testing.T) {
	e := newEnv(t)
	e.collector()
	e.installCRDs()
	a := e.widget("a", nil)
	b := e.widget("b", nil, ref(a, false))
	e.widget("c", nil, ref(b, false))
	e.remove(widgetGVR, a, background)
	for _, n := range []string{"a", "b", "c"} {
		e.waitGone(widgetGVR, "default", n)
	}
}

// TestForegroundBlockOwnerDeletion deletes an owner in foreground: its
// dependents go first, the ones with blockOwnerDeletion hold it (a held
// one keeps it until released), and a chain of blocking dependents is
// deleted from the leaves up.
func TestForegroundBlockOwnerDeletion(t *testing.T) {
	e := newEnv(t)
	e.collector()
	e.installCRDs()
	owner := e.widget("owner", nil)
	held := e.widget("held", []string{holdFinal}, ref(owner, true))
	e.widget("loose", nil, ref(owner, false))
	mid := e.widget("mid", nil, ref(owner, true))
	e.widget("leaf", nil, ref(mid, true))

	e.remove(widgetGVR, owner, foreground)
	e.waitGone(widgetGVR, "default", "loose")
	e.waitGone(widgetGVR, "default", "leaf")
	e.waitGone(widgetGVR, "default", "mid")
	e.waitFor(widgetGVR, "default", "held", "being deleted", deleting)
	got := e.get(widgetGVR, "default", "owner")
	if got == nil || got.GetDeletionTimestamp() == nil || !slices.Equal(got.GetFinalizers(), []string{metav1.FinalizerDeleteDependents}) {
		t.Fatalf("owner while a blocking dependent remains: %v, want it kept with %s", got, metav1.FinalizerDeleteDependents)
	}
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := e.res(widgetGVR, "default").Patch(e.ctx(), held.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone(widgetGVR, "default", "held")
	e.waitGone(widgetGVR, "default", "owner")
}

// TestForegroundOrder follows a foreground deletion of a chain on one
// watch: the leaf goes first, then its parent, then the owner.
func TestForegroundOrder(t *testing.T) {
	e := newEnv(t)
	e.collector()
	e.installCRDs()
	a := e.widget("a", nil)
	b := e.widget("b", nil, ref(a, true))
	c := e.widget("c", nil, ref(b, true))
	w, err := e.res(widgetGVR, "default").Watch(e.ctx(), metav1.ListOptions{ResourceVersion: c.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	e.remove(widgetGVR, a, foreground)
	var order []string
	for len(order) < 3 {
		ev, ok := <-w.ResultChan()
		if !ok {
			t.Fatalf("watch ended after deletes %v", order)
		}
		if ev.Type == watch.Deleted {
			order = append(order, ev.Object.(*unstructured.Unstructured).GetName())
		}
	}
	if want := []string{"c", "b", "a"}; !slices.Equal(order, want) {
		t.Errorf("deleted in order %v, want %v", order, want)
	}
}

// TestOrphan deletes an owner with the orphan policy and with the legacy
// orphanDependents=true: the owner goes, its dependents stay without
// the reference to it but with their other owners.
func TestOrphan(t *testing.T) {
	e := newEnv(t)
	e.collector()
	e.installCRDs()
	other := e.widget("other", nil)
	for _, legacy := range []bool{false, true} {
		owner := e.widget(fmt.Sprintf("owner-%v", legacy), nil)
		kid := e.widget(fmt.Sprintf("kid-%v", legacy), nil, ref(owner, true))
		shared := e.widget(fmt.Sprintf("shared-%v", legacy), nil, ref(owner, true), ref(other, false))
		if legacy {
			yes := true
			if err := e.res(widgetGVR, "default").Delete(e.ctx(), owner.GetName(), metav1.DeleteOptions{OrphanDependents: &yes}); err != nil { //nolint:staticcheck // the legacy option is what is tested
				t.Fatal(err)
			}
		} else {
			e.remove(widgetGVR, owner, orphan)
		}
		e.waitGone(widgetGVR, "default", owner.GetName())
		if got := e.get(widgetGVR, "default", kid.GetName()); got == nil || len(got.GetOwnerReferences()) != 0 {
			t.Errorf("orphaned %s: %v, want it kept without owner references", kid.GetName(), got)
		}
		got := e.get(widgetGVR, "default", shared.GetName())
		if got == nil || len(got.GetOwnerReferences()) != 1 || got.GetOwnerReferences()[0].UID != other.GetUID() {
			t.Errorf("orphaned %s: %v, want it kept with only its other owner", shared.GetName(), got)
		}
	}
}

// TestClusterScopedOwner deletes a cluster-scoped owner of dependents in
// two namespaces (a custom resource and a ConfigMap): both go.
func TestClusterScopedOwner(t *testing.T) {
	e := newEnv(t)
	e.collector()
	e.installCRDs()
	e.createNamespace("other")
	g := e.create(gizmoGVR, "Gizmo", "", "g", nil)
	e.widget("w", nil, ref(g, false))
	e.create(cmGVR, "ConfigMap", "other", "cm", nil, ref(g, false))
	e.remove(gizmoGVR, g, background)
	e.waitGone(widgetGVR, "default", "w")
	e.waitGone(cmGVR, "other", "cm")
}

// TestCatchUpAfterRestart deletes owners while no collector runs: the
// next collector deletes the background owner's dependents and finishes
// the foreground and orphan deletions.
func TestCatchUpAfterRestart(t *testing.T) {
	e := newEnv(t)
	stop := e.collector()
	e.installCRDs()
	bg := e.widget("bg", nil)
	e.widget("bg-kid", nil, ref(bg, false))
	fg := e.widget("fg", nil)
	e.widget("fg-kid", nil, ref(fg, true))
	or := e.widget("or", nil)
	e.widget("or-kid", nil, ref(or, true))
	stop()

	e.remove(widgetGVR, bg, background)
	e.remove(widgetGVR, fg, foreground)
	e.remove(widgetGVR, or, orphan)
	if got := e.get(widgetGVR, "default", "bg-kid"); got == nil {
		t.Fatal("bg-kid deleted without a collector")
	}
	e.collector()
	e.waitGone(widgetGVR, "default", "bg-kid")
	e.waitGone(widgetGVR, "default", "fg-kid")
	e.waitGone(widgetGVR, "default", "fg")
	e.waitGone(widgetGVR, "default", "or")
	if got := e.get(widgetGVR, "default", "or-kid"); got == nil || len(got.GetOwnerReferences()) != 0 {
		t.Errorf("or-kid after catching up: %v, want it kept without owner references", got)
	}
}

// TestDanglingOwner creates dependents whose owner never existed: a
// made-up uid, and the name of a live object with another uid. Both are
// deleted after the collector checked the server; the live object stays,
// and a dependent with one real owner besides loses only the dangling
// reference.
func TestDanglingOwner(t *testing.T) {
	e := newEnv(t)
	e.collector()
	e.installCRDs()
	live := e.widget("live", nil)
	ghost := metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Widget", Name: "ghost", UID: "00000000-0000-0000-0000-000000000001"}
	impostor := ref(live, false)
	impostor.UID = "00000000-0000-0000-0000-000000000002"
	e.widget("orphan-of-ghost", nil, ghost)
	e.widget("orphan-of-impostor", nil, impostor)
	e.widget("half", nil, ghost, ref(live, false))
	e.waitGone(widgetGVR, "default", "orphan-of-ghost")
	e.waitGone(widgetGVR, "default", "orphan-of-impostor")
	got := e.waitFor(widgetGVR, "default", "half", "left with one owner", func(o *unstructured.Unstructured) bool {
		return o == nil || len(o.GetOwnerReferences()) == 1
	})
	if got == nil || got.GetOwnerReferences()[0].UID != live.GetUID() {
		t.Errorf("half: %v, want it kept with its live owner", got)
	}
	if e.get(widgetGVR, "default", "live") == nil {
		t.Error("the live object whose name a dangling reference used was deleted")
	}
}

// TestCRDRemoved deletes a CRD whose objects own ConfigMaps: the
// collector stops watching the resource, and the ConfigMaps, whose owners
// went with the CRD, are deleted.
func TestCRDRemoved(t *testing.T) {
	e := newEnv(t)
	e.collector()
	e.installCRDs()
	g := e.create(gizmoGVR, "Gizmo", "", "g", nil)
	e.create(cmGVR, "ConfigMap", "default", "cm", nil, ref(g, false))
	if err := e.dyn.Resource(crdGVR).Delete(e.ctx(), "gizmos.example.com", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone(cmGVR, "default", "cm")
}

// TestServerRunsCollector checks the server's own collector: a ConfigMap
// owned by a deleted ConfigMap goes.
func TestServerRunsCollector(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	dyn, err := dynamic.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfg: s.RESTConfig(), dyn: dyn}
	owner := e.create(cmGVR, "ConfigMap", "default", "owner", nil)
	e.create(cmGVR, "ConfigMap", "default", "kid", nil, ref(owner, false))
	e.remove(cmGVR, owner, background)
	e.waitGone(cmGVR, "default", "kid")
}

// TestForegroundCycle deletes in foreground one of two objects that own
// each other, both blocking: the collector breaks the cycle and both go.
func TestForegroundCycle(t *testing.T) {
	e := newEnv(t)
	e.collector()
	e.installCRDs()
	a := e.widget("a", nil)
	b := e.widget("b", nil, ref(a, true))
	a.SetOwnerReferences([]metav1.OwnerReference{ref(b, true)})
	if _, err := e.res(widgetGVR, "default").Update(e.ctx(), a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.remove(widgetGVR, a, foreground)
	e.waitGone(widgetGVR, "default", "a")
	e.waitGone(widgetGVR, "default", "b")
}
