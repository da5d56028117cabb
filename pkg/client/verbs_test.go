package client_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// TestVerbs runs every verb on a typed custom resource, the same resource
// unstructured, a built-in type and the built-in unstructured.
func TestVerbs(t *testing.T) {
	cfg := start(t, setpointtest.Options{})
	installWidgets(t, cfg)
	t.Run("typed_crd", func(t *testing.T) {
		runVerbs(t, cfg, widgetKit(newClient[Widget](t, cfg, widgetsRes)), "typed-crd")
	})
	t.Run("unstructured_crd", func(t *testing.T) {
		runVerbs(t, cfg, unstructuredKit(newClient[unstructured.Unstructured](t, cfg, widgetsRes), []string{"spec", "color"},
			func(u *unstructured.Unstructured) { u.Object["spec"] = map[string]any{"size": int64(11)} }), "unstructured-crd")
	})
	t.Run("typed_builtin", func(t *testing.T) {
		runVerbs(t, cfg, configMapKit(newClient[corev1.ConfigMap](t, cfg, configMapsRes)), "typed-builtin")
	})
	t.Run("unstructured_builtin", func(t *testing.T) {
		c, err := client.NewUnstructured(cfg, configMapsRes)
		if err != nil {
			t.Fatal(err)
		}
		runVerbs(t, cfg, unstructuredKit(c, []string{"data", "v"}, func(u *unstructured.Unstructured) { u.SetName("Not_A_Name") }), "unstructured-builtin")
	})
}

// runVerbs checks Create, Get, Update, Patch (merge, JSON, apply), List
// and Delete, their error predicates, and that objects passed in are not
// modified.
func runVerbs[T any, PT interface {
	*T
	client.Object
}](t *testing.T, cfg *rest.Config, k kit[T, PT], ns string) {
	createNamespace(t, cfg, ns)
	ctx := t.Context()
	c := k.c
	gvk := c.Resource().GroupVersionKind()

	obj := k.newObj(ns, "one", "a")
	created, err := c.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if k.value(created) != "a" || created.GetResourceVersion() == "" || created.GetUID() == "" || created.GetObjectKind().GroupVersionKind() != gvk {
		t.Fatalf("Create returned %+v", created)
	}
	if !obj.GetObjectKind().GroupVersionKind().Empty() || obj.GetResourceVersion() != "" {
		t.Fatalf("Create modified its argument: %+v", obj)
	}
	if _, err := c.Create(ctx, k.newObj(ns, "one", "a"), metav1.CreateOptions{}); !client.IsAlreadyExists(err) {
		t.Fatalf("second Create: %v, want AlreadyExists", err)
	}
	if _, err := c.Create(ctx, k.newObj(ns, "dry", "a"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run Create: %v", err)
	}
	if _, err := c.Get(ctx, ns, "dry"); !client.IsNotFound(err) {
		t.Fatalf("Get after dry-run Create: %v, want NotFound", err)
	}
	if _, err := c.Create(ctx, k.invalid(ns), metav1.CreateOptions{}); !client.IsInvalid(err) {
		t.Fatalf("Create of an invalid object: %v, want Invalid", err)
	}

	got, err := c.Get(ctx, ns, "one")
	if err != nil || k.value(got) != "a" || got.GetObjectKind().GroupVersionKind() != gvk || got.GetUID() != created.GetUID() {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	k.setValue(got, "b")
	updated, err := c.Update(ctx, got, metav1.UpdateOptions{FieldManager: "updater"})
	if err != nil || k.value(updated) != "b" || updated.GetResourceVersion() == got.GetResourceVersion() {
		t.Fatalf("Update = %+v, %v", updated, err)
	}
	k.setValue(got, "stale")
	if _, err := c.Update(ctx, got, metav1.UpdateOptions{}); !client.IsConflict(err) {
		t.Fatalf("Update from a stale resourceVersion: %v, want Conflict", err)
	}

	merge := nested(k.path, "c")
	patched, err := c.Patch(ctx, ns, "one", types.MergePatchType, mustJSON(t, merge), metav1.PatchOptions{FieldManager: "updater"})
	if err != nil || k.value(patched) != "c" {
		t.Fatalf("merge Patch = %+v, %v", patched, err)
	}
	jsonPatch := []map[string]any{{"op": "replace", "path": "/" + strings.Join(k.path, "/"), "value": "d"}}
	patched, err = c.Patch(ctx, ns, "one", types.JSONPatchType, mustJSON(t, jsonPatch), metav1.PatchOptions{FieldManager: "updater"})
	if err != nil || k.value(patched) != "d" {
		t.Fatalf("JSON Patch = %+v, %v", patched, err)
	}

	// Server-side apply: a field another manager owns conflicts unless
	// forced.
	apply := func(name, v string) []byte {
		m := nested(k.path, v)
		m["apiVersion"], m["kind"] = gvk.GroupVersion().String(), gvk.Kind
		m["metadata"] = map[string]any{"name": name, "namespace": ns}
		y, err := yaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	_, err = c.Patch(ctx, ns, "one", types.ApplyYAMLPatchType, apply("one", "e"), metav1.PatchOptions{FieldManager: "applier"})
	if !client.IsConflict(err) {
		t.Fatalf("apply of a field another manager owns: %v, want Conflict", err)
	}
	force := true
	patched, err = c.Patch(ctx, ns, "one", types.ApplyYAMLPatchType, apply("one", "e"), metav1.PatchOptions{FieldManager: "applier", Force: &force})
	if err != nil || k.value(patched) != "e" {
		t.Fatalf("forced apply = %+v, %v", patched, err)
	}
	if !managedBy(patched, "applier") {
		t.Fatalf("forced apply: managers %+v, want applier", patched.GetManagedFields())
	}
	two, err := c.Patch(ctx, ns, "two", types.ApplyYAMLPatchType, apply("two", "f"), metav1.PatchOptions{FieldManager: "applier"})
	if err != nil || k.value(two) != "f" || two.GetUID() == "" {
		t.Fatalf("apply creating an object = %+v, %v", two, err)
	}
	if _, err := c.Patch(ctx, ns, "three", types.MergePatchType, mustJSON(t, merge), metav1.PatchOptions{}); !client.IsNotFound(err) {
		t.Fatalf("merge Patch of a missing object: %v, want NotFound", err)
	}

	list, err := c.List(ctx, ns, metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 || list.ResourceVersion == "" || list.Continue != "" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	for i := range list.Items {
		if kind := PT(&list.Items[i]).GetObjectKind().GroupVersionKind(); kind != gvk {
			t.Fatalf("List item %d has kind %v, want %v", i, kind, gvk)
		}
	}
	list, err = c.List(ctx, ns, metav1.ListOptions{LabelSelector: "app=one"})
	if err != nil || len(list.Items) != 1 || PT(&list.Items[0]).GetName() != "one" {
		t.Fatalf("List app=one = %+v, %v", list, err)
	}
	all, err := c.List(ctx, "", metav1.ListOptions{LabelSelector: "app=one"})
	if err != nil || len(all.Items) != 1 || PT(&all.Items[0]).GetNamespace() != ns {
		t.Fatalf("List in all namespaces = %+v, %v", all, err)
	}

	wrongUID := types.UID("not-" + string(patched.GetUID()))
	if err := c.Delete(ctx, ns, "one", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &wrongUID}}); !client.IsConflict(err) {
		t.Fatalf("Delete with a failed UID precondition: %v, want Conflict", err)
	}
	staleRV := created.GetResourceVersion()
	if err := c.Delete(ctx, ns, "one", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &staleRV}}); !client.IsConflict(err) {
		t.Fatalf("Delete with a stale resourceVersion precondition: %v, want Conflict", err)
	}
	uid, bg := patched.GetUID(), metav1.DeletePropagationBackground
	if err := c.Delete(ctx, ns, "one", metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Get(ctx, ns, "one"); !client.IsNotFound(err) {
		t.Fatalf("Get after Delete: %v, want NotFound", err)
	}
	if err := c.Delete(ctx, ns, "one", metav1.DeleteOptions{}); !client.IsNotFound(err) {
		t.Fatalf("second Delete: %v, want NotFound", err)
	}
	bad := metav1.DeletionPropagation("Sideways")
	if err := c.Delete(ctx, ns, "two", metav1.DeleteOptions{PropagationPolicy: &bad}); !client.IsInvalid(err) {
		t.Fatalf("Delete with an unknown propagationPolicy: %v, want Invalid", err)
	}

	if _, err := c.Get(ctx, ns, ""); !errors.Is(err, client.ErrNoName) {
		t.Fatalf("Get without a name: %v, want ErrNoName", err)
	}
	if _, err := c.Get(ctx, "", "two"); !errors.Is(err, client.ErrNoNamespace) {
		t.Fatalf("Get without a namespace: %v, want ErrNoNamespace", err)
	}
	if _, err := c.Create(ctx, nil, metav1.CreateOptions{}); !errors.Is(err, client.ErrNilObject) {
		t.Fatalf("Create of nil: %v, want ErrNilObject", err)
	}
	if _, err := c.Update(ctx, nil, metav1.UpdateOptions{}); !errors.Is(err, client.ErrNilObject) {
		t.Fatalf("Update of nil: %v, want ErrNilObject", err)
	}
	if _, err := c.Create(ctx, k.newObj("", "x", "a"), metav1.CreateOptions{}); !errors.Is(err, client.ErrNoNamespace) {
		t.Fatalf("Create without a namespace: %v, want ErrNoNamespace", err)
	}
}

// nested returns {path[0]: {path[1]: ... v}}.
func nested(path []string, v any) map[string]any {
	m := map[string]any{path[len(path)-1]: v}
	for i := len(path) - 2; i >= 0; i-- {
		m = map[string]any{path[i]: m}
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// managedBy reports whether manager owns fields of obj.
func managedBy(obj client.Object, manager string) bool {
	for _, f := range obj.GetManagedFields() {
		if f.Manager == manager {
			return true
		}
	}
	return false
}
