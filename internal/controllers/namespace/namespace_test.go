package namespace_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/internal/controllers/controllertest"
	"github.com/setpoint/setpoint/internal/controllers/namespace"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 30 * time.Second

var (
	crdGVR    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	widgetGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	cmGVR     = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	nsGVR     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	holdFinal = "example.com/hold"
)

// env is a server without its own namespace controller, a dynamic client,
// and the means to run controllers.
type env struct {
	t   *testing.T
	cfg *rest.Config
	dyn dynamic.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := setpointtest.Start(t, setpointtest.Options{DisableNamespaceController: true})
	cfg := s.RESTConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, cfg: cfg, dyn: dyn}
}

// controller runs a namespace controller until the returned stop is
// called or the test ends.
func (e *env) controller() (stop func()) {
	e.t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := namespace.New(e.cfg, namespace.Options{Logger: logger, Recheck: 50 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	return controllertest.Run(e.t, "controller", c.Run)
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	e.t.Cleanup(cancel)
	return ctx
}

// installWidgets serves namespaced Widgets and waits until they are
// listed (the one wait these tests cannot watch for).
func (e *env) installWidgets() {
	e.t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "kind": "Widget"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	if _, err := e.dyn.Resource(crdGVR).Create(e.ctx(), crd, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		_, err := e.dyn.Resource(widgetGVR).List(e.ctx(), metav1.ListOptions{})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal(err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-e.t.Context().Done():
			return
		}
	}
}

// populate creates namespace ns with two ConfigMaps and two Widgets, one
// of them held by a finalizer.
func (e *env) populate(ns string) {
	e.t.Helper()
	if _, err := e.dyn.Resource(nsGVR).Create(e.ctx(), obj("v1", "Namespace", "", ns), metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	held := obj("example.com/v1", "Widget", ns, "held")
	held.SetFinalizers([]string{holdFinal})
	for _, c := range []struct {
		gvr schema.GroupVersionResource
		o   *unstructured.Unstructured
	}{
		{cmGVR, obj("v1", "ConfigMap", ns, "a")},
		{cmGVR, obj("v1", "ConfigMap", ns, "b")},
		{widgetGVR, obj("example.com/v1", "Widget", ns, "plain")},
		{widgetGVR, held},
	} {
		if _, err := e.dyn.Resource(c.gvr).Namespace(ns).Create(e.ctx(), c.o, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind}}
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// awaitGone waits until the object is deleted, watching for it.
func (e *env) awaitGone(gvr schema.GroupVersionResource, ns, name string) {
	e.t.Helper()
	ctx := e.ctx()
	res := e.dyn.Resource(gvr).Namespace(ns)
	l, err := res.List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(l.Items) == 0 {
		return
	}
	w, err := res.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: l.GetResourceVersion()})
	if err != nil {
		e.t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if ev.Type == watch.Deleted {
			return
		}
	}
	e.t.Fatalf("%s %s/%s not deleted within %v", gvr.Resource, ns, name, waitTimeout)
}

// awaitNamespace watches namespace name until ok holds and returns it.
func (e *env) awaitNamespace(name string, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	e.t.Helper()
	ctx := e.ctx()
	sel := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	l, err := e.dyn.Resource(nsGVR).List(ctx, sel)
	if err != nil {
		e.t.Fatal(err)
	}
	var last *unstructured.Unstructured
	for i := range l.Items {
		if last = &l.Items[i]; ok(last) {
			return last
		}
	}
	sel.ResourceVersion = l.GetResourceVersion()
	w, err := e.dyn.Resource(nsGVR).Watch(ctx, sel)
	if err != nil {
		e.t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if u, isU := ev.Object.(*unstructured.Unstructured); isU && ev.Type == watch.Modified {
			if last = u; ok(u) {
				return u
			}
		}
	}
	e.t.Fatalf("namespace %s never matched; last %v", name, last)
	return nil
}

// condition returns "status: message" of the namespace condition typ.
func condition(ns *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(ns.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			return fmt.Sprintf("%v: %v", m["status"], m["message"])
		}
	}
	return ""
}

// get reads an object, failing the test unless it exists.
func (e *env) get(gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	e.t.Helper()
	u, err := e.dyn.Resource(gvr).Namespace(ns).Get(e.ctx(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return u
}

// TestNamespaceDeletion deletes a namespace holding ConfigMaps and custom
// objects: the controller deletes them all, an object with a finalizer
// keeps the namespace Terminating (refusing new content) until the
// finalizer goes, and then the namespace is finalized and deleted.
func TestNamespaceDeletion(t *testing.T) {
	e := newEnv(t)
	e.installWidgets()
	e.populate("team")
	e.controller()
	if err := e.dyn.Resource(nsGVR).Delete(e.ctx(), "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		gvr  schema.GroupVersionResource
		name string
	}{{cmGVR, "a"}, {cmGVR, "b"}, {widgetGVR, "plain"}} {
		e.awaitGone(o.gvr, "team", o.name)
	}
	held := e.get(widgetGVR, "team", "held")
	if held.GetDeletionTimestamp() == nil {
		t.Fatal("held widget not marked for deletion")
	}
	// Its conditions say what keeps it.
	ns := e.awaitNamespace("team", func(ns *unstructured.Unstructured) bool {
		return condition(ns, "NamespaceContentRemaining") == "True: Some resources are remaining: widgets.example.com has 1 resource instances" &&
			condition(ns, "NamespaceFinalizersRemaining") == "True: Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
	})
	if phase, _, _ := unstructured.NestedString(ns.Object, "status", "phase"); phase != "Terminating" {
		t.Fatalf("phase %q, want Terminating", phase)
	}
	if f, _, _ := unstructured.NestedStringSlice(ns.Object, "spec", "finalizers"); len(f) != 1 || f[0] != "kubernetes" {
		t.Fatalf("spec.finalizers %v while content remains", f)
	}
	_, err := e.dyn.Resource(cmGVR).Namespace("team").Create(e.ctx(), obj("v1", "ConfigMap", "team", "late"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create in a Terminating namespace: %v, want Forbidden", err)
	}
	held.SetFinalizers(nil)
	if _, err := e.dyn.Resource(widgetGVR).Namespace("team").Update(e.ctx(), held, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.awaitGone(nsGVR, "", "team")
}

// TestNamespaceDeletionAfterRestart deletes a namespace while no
// controller runs: it stays Terminating with its content, and a controller
// started later finishes the job.
func TestNamespaceDeletionAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.installWidgets()
	e.populate("late")
	e.controller()() // run and stop once, so the next one is a restart
	if err := e.dyn.Resource(nsGVR).Delete(e.ctx(), "late", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.get(cmGVR, "late", "a")
	ns := e.get(nsGVR, "", "late")
	if phase, _, _ := unstructured.NestedString(ns.Object, "status", "phase"); phase != "Terminating" {
		t.Fatalf("phase %q, want Terminating", phase)
	}
	held := e.get(widgetGVR, "late", "held")
	held.SetFinalizers(nil)
	if _, err := e.dyn.Resource(widgetGVR).Namespace("late").Update(e.ctx(), held, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.controller()
	e.awaitGone(nsGVR, "", "late")
	for _, gvr := range []schema.GroupVersionResource{cmGVR, widgetGVR} {
		l, err := e.dyn.Resource(gvr).Namespace("late").List(e.ctx(), metav1.ListOptions{})
		if err != nil || len(l.Items) != 0 {
			t.Fatalf("%s left in the deleted namespace: %v %v", gvr.Resource, l, err)
		}
	}
}

// TestFinalizeSubresource checks PUT /api/v1/namespaces/{name}/finalize
// over HTTP: it writes spec.finalizers alone and PATCH is refused.
func TestFinalizeSubresource(t *testing.T) {
	e := newEnv(t)
	if _, err := e.dyn.Resource(nsGVR).Create(e.ctx(), obj("v1", "Namespace", "", "fin"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := e.get(nsGVR, "", "fin")
	ns.SetLabels(map[string]string{"ignored": "yes"})
	if err := unstructured.SetNestedStringSlice(ns.Object, []string{"example.com/other"}, "spec", "finalizers"); err != nil {
		t.Fatal(err)
	}
	got, err := e.dyn.Resource(nsGVR).Update(e.ctx(), ns, metav1.UpdateOptions{}, "finalize")
	if err != nil {
		t.Fatal(err)
	}
	if f, _, _ := unstructured.NestedStringSlice(got.Object, "spec", "finalizers"); len(f) != 1 || f[0] != "example.com/other" {
		t.Fatalf("spec.finalizers %v", f)
	}
	if got.GetLabels()["ignored"] != "" {
		t.Fatalf("finalize changed labels: %v", got.GetLabels())
	}
	_, err = e.dyn.Resource(nsGVR).Patch(e.ctx(), "fin", "application/merge-patch+json", []byte(`{"spec":{"finalizers":[]}}`), metav1.PatchOptions{}, "finalize")
	if !apierrors.IsMethodNotSupported(err) {
		t.Fatalf("PATCH finalize: %v, want 405", err)
	}
}
