package registry_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/registry/registrytest"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

// env is a started registry on a fresh SQLite store.
type env struct {
	reg   *registry.Registry
	store *sqlite.Store
	feed  *feed.Feed
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := registrytest.Start(t)
	return &env{reg: e.Registry, store: e.Store}
}

func obj(m map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: m} }

// anySchema is a CRD version schema that accepts and keeps any fields.
func anySchema() map[string]any {
	return map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
}

// widgetCRD is a namespaced CRD example.com/v1 Widget with the status
// subresource and a schema that keeps any fields.
func widgetCRD() *unstructured.Unstructured {
	return obj(map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "kind": "Widget", "shortNames": []any{"wd"}},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true, "schema": anySchema(),
				"subresources": map[string]any{"status": map[string]any{}},
			}},
		},
	})
}

func widget(name string, spec map[string]any) *unstructured.Unstructured {
	return obj(map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": name},
		"spec":     spec,
	})
}

func (e *env) lookup(t testing.TB, group, version, resource string) *registry.Resource {
	t.Helper()
	res, ok := e.reg.Lookup(group, version, resource)
	if !ok {
		t.Fatalf("%s/%s %s not served", group, version, resource)
	}
	return res
}

// widgets installs the widget CRD and returns its resource.
func (e *env) widgets(t testing.TB) *registry.Resource {
	t.Helper()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	if _, err := e.reg.Create(context.Background(), crds, "", widgetCRD(), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return e.lookup(t, "example.com", "v1", "widgets")
}

// wantStatus fails unless err is a StatusError with code and reason.
func wantStatus(t *testing.T, err error, code int32, reason metav1.StatusReason) {
	t.Helper()
	se, ok := err.(*apierrors.StatusError)
	if !ok {
		t.Fatalf("error %v (%T) is not a StatusError; want %d %s", err, err, code, reason)
	}
	if se.ErrStatus.Code != code || se.ErrStatus.Reason != reason {
		t.Fatalf("got %d %s (%s), want %d %s", se.ErrStatus.Code, se.ErrStatus.Reason, se.ErrStatus.Message, code, reason)
	}
}

func everything() registry.ListOptions {
	return registry.ListOptions{Labels: labels.Everything(), Fields: fields.Everything()}
}

func TestDefaultNamespacesAndGroups(t *testing.T) {
	e := newEnv(t)
	ns := e.lookup(t, "", "v1", "namespaces")
	for _, n := range []string{"default", "kube-system", "kube-public"} {
		got, err := e.reg.Get(t.Context(), ns, "", n)
		if err != nil {
			t.Fatal(err)
		}
		if phase, _, _ := unstructured.NestedString(got.Object, "status", "phase"); phase != "Active" {
			t.Errorf("%s phase %q", n, phase)
		}
		_, _, err = e.reg.Delete(t.Context(), ns, "", n, nil)
		wantStatus(t, err, http.StatusForbidden, metav1.StatusReasonForbidden)
	}
	groups := e.reg.Groups()
	var names []string
	for _, g := range groups {
		names = append(names, g.Group)
	}
	if want := []string{"", "admissionregistration.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io"}; !slices.Equal(names, want) {
		t.Fatalf("groups %+v", groups)
	}
}

func TestCRDLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	if !res.Namespaced || !res.HasStatus || res.Kind != "Widget" || res.ListKind != "WidgetList" || res.StorageKey != "example.com/widgets" {
		t.Fatalf("resource %+v", res)
	}
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	crd, err := e.reg.Get(ctx, crds, "", "widgets.example.com")
	if err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	established := false
	for _, c := range conds {
		c := c.(map[string]any)
		if c["type"] == "Established" && c["status"] == "True" {
			established = true
		}
	}
	if !established {
		t.Fatalf("CRD not established: %v", conds)
	}
	if _, err := e.reg.Create(ctx, res, "default", widget("w1", map[string]any{"size": int64(1)}), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _, err := e.reg.Delete(ctx, crds, "", "widgets.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetDeletionTimestamp() == nil {
		t.Fatal("CRD delete did not set deletionTimestamp")
	}
	waitFor(t, func() bool {
		_, err := e.reg.Get(ctx, crds, "", "widgets.example.com")
		return apierrors.IsNotFound(err)
	})
	if _, ok := e.reg.Lookup("example.com", "v1", "widgets"); ok {
		t.Fatal("widgets still served after CRD deletion")
	}
	n, err := e.store.Count(ctx, "example.com/widgets", "")
	if err != nil || n != 0 {
		t.Fatalf("%d widgets left (%v)", n, err)
	}
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not reached")
		case <-tick():
		}
	}
}

func TestCreateGetListUpdateDelete(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)

	created, err := e.reg.Create(ctx, res, "default", widget("w1", map[string]any{"size": int64(1)}), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := created.Object
	if !created.Created || o.GetUID() == "" || o.GetGeneration() != 1 || o.GetResourceVersion() == "" || o.GetNamespace() != "default" {
		t.Fatalf("created %v", o.Object)
	}
	_, err = e.reg.Create(ctx, res, "default", widget("w1", nil), registry.WriteOptions{})
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonAlreadyExists)
	_, err = e.reg.Create(ctx, res, "nope", widget("w2", nil), registry.WriteOptions{})
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)

	got, err := e.reg.Get(ctx, res, "default", "w1")
	if err != nil || got.GetResourceVersion() != o.GetResourceVersion() {
		t.Fatalf("get %v %v", got, err)
	}

	// Update: spec change bumps generation, stale resourceVersion conflicts.
	upd := got.DeepCopy()
	_ = unstructured.SetNestedField(upd.Object, int64(2), "spec", "size")
	r2, err := e.reg.Update(ctx, res, "default", "w1", upd, registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Object.GetGeneration() != 2 || r2.Object.GetResourceVersion() == got.GetResourceVersion() {
		t.Fatalf("updated %v", r2.Object.Object)
	}
	_, err = e.reg.Update(ctx, res, "default", "w1", upd, registry.WriteOptions{})
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)

	list, err := e.reg.List(ctx, res, "", everything())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.GetKind() != "WidgetList" || list.GetResourceVersion() == "" {
		t.Fatalf("list %v", list.Object)
	}

	last, gone, err := e.reg.Delete(ctx, res, "default", "w1", nil)
	if err != nil || !gone || last.GetName() != "w1" {
		t.Fatalf("delete %v %v %v", last, gone, err)
	}
	_, err = e.reg.Get(ctx, res, "default", "w1")
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
}
