package registry_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/registry"
)

func TestCreateRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	t.Run("wrong_kind", func(t *testing.T) {
		o := widget("a", nil)
		o.SetKind("Gadget")
		_, err := e.reg.Create(ctx, res, "default", o, registry.WriteOptions{})
		wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	})
	t.Run("namespace_mismatch", func(t *testing.T) {
		o := widget("a", nil)
		o.SetNamespace("kube-system")
		_, err := e.reg.Create(ctx, res, "default", o, registry.WriteOptions{})
		wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	})
	t.Run("name_required", func(t *testing.T) {
		_, err := e.reg.Create(ctx, res, "default", widget("", nil), registry.WriteOptions{})
		wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	})
	t.Run("bad_name", func(t *testing.T) {
		_, err := e.reg.Create(ctx, res, "default", widget("Not_Valid", nil), registry.WriteOptions{})
		wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	})
	t.Run("generate_name", func(t *testing.T) {
		o := widget("", nil)
		o.SetGenerateName("gen-")
		r, err := e.reg.Create(ctx, res, "default", o, registry.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := r.Object.GetName(); len(n) != len("gen-")+5 || n[:4] != "gen-" {
			t.Fatalf("generated name %q", n)
		}
	})
	t.Run("status_dropped", func(t *testing.T) {
		o := widget("st", nil)
		o.Object["status"] = map[string]any{"ready": true}
		o.SetUID("fixed")
		r, err := e.reg.Create(ctx, res, "default", o, registry.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.Object.Object["status"]; ok {
			t.Fatal("status kept on create with the status subresource")
		}
		if r.Object.GetUID() == "fixed" {
			t.Fatal("uid from the body kept")
		}
	})
	t.Run("dry_run", func(t *testing.T) {
		r, err := e.reg.Create(ctx, res, "default", widget("dry", nil), registry.WriteOptions{DryRun: true})
		if err != nil || r.Object.GetName() != "dry" {
			t.Fatal(r, err)
		}
		_, err = e.reg.Get(ctx, res, "default", "dry")
		wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
	})
	t.Run("dry_run_of_existing_name", func(t *testing.T) {
		if _, err := e.reg.Create(ctx, res, "default", widget("taken", nil), registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := e.reg.Create(ctx, res, "default", widget("taken", nil), registry.WriteOptions{DryRun: true})
		wantStatus(t, err, http.StatusConflict, metav1.StatusReasonAlreadyExists)
	})
	t.Run("namespace_needs_dns_label", func(t *testing.T) {
		ns := e.lookup(t, "", "v1", "namespaces")
		_, err := e.reg.Create(ctx, ns, "", obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "a.b"}}), registry.WriteOptions{})
		wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	})
}

func TestUpdateRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	created, err := e.reg.Create(ctx, res, "default", widget("w", map[string]any{"size": int64(1)}), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur := created.Object
	t.Run("needs_resource_version", func(t *testing.T) {
		o := cur.DeepCopy()
		o.SetResourceVersion("")
		_, err := e.reg.Update(ctx, res, "default", "w", o, registry.WriteOptions{})
		wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	})
	t.Run("missing", func(t *testing.T) {
		o := cur.DeepCopy()
		o.SetName("other")
		_, err := e.reg.Update(ctx, res, "default", "other", o, registry.WriteOptions{})
		wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
	})
	t.Run("name_mismatch", func(t *testing.T) {
		_, err := e.reg.Update(ctx, res, "default", "other", cur.DeepCopy(), registry.WriteOptions{})
		wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	})
	t.Run("uid_immutable", func(t *testing.T) {
		o := cur.DeepCopy()
		o.SetUID("changed")
		_, err := e.reg.Update(ctx, res, "default", "w", o, registry.WriteOptions{})
		wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	})
	t.Run("no_op_keeps_resource_version", func(t *testing.T) {
		r, err := e.reg.Update(ctx, res, "default", "w", cur.DeepCopy(), registry.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Object.GetResourceVersion() != cur.GetResourceVersion() {
			t.Fatalf("no-op update wrote: %s -> %s", cur.GetResourceVersion(), r.Object.GetResourceVersion())
		}
	})
	t.Run("status_subresource", func(t *testing.T) {
		o := cur.DeepCopy()
		o.Object["status"] = map[string]any{"ready": true}
		_ = unstructured.SetNestedField(o.Object, int64(9), "spec", "size")
		o.SetLabels(map[string]string{"ignored": "yes"})
		r, err := e.reg.Update(ctx, res, "default", "w", o, registry.WriteOptions{Subresource: "status"})
		if err != nil {
			t.Fatal(err)
		}
		size, _, _ := unstructured.NestedInt64(r.Object.Object, "spec", "size")
		ready, _, _ := unstructured.NestedBool(r.Object.Object, "status", "ready")
		if size != 1 || !ready || r.Object.GetLabels() != nil || r.Object.GetGeneration() != 1 {
			t.Fatalf("status update gave %v", r.Object.Object)
		}
		// The main resource keeps the status and bumps generation on spec.
		o = r.Object.DeepCopy()
		o.Object["status"] = map[string]any{"ready": false}
		_ = unstructured.SetNestedField(o.Object, int64(3), "spec", "size")
		r2, err := e.reg.Update(ctx, res, "default", "w", o, registry.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ready, _, _ = unstructured.NestedBool(r2.Object.Object, "status", "ready")
		if !ready || r2.Object.GetGeneration() != 2 {
			t.Fatalf("main update gave %v", r2.Object.Object)
		}
		// Metadata-only changes keep generation.
		o = r2.Object.DeepCopy()
		o.SetLabels(map[string]string{"a": "b"})
		r3, err := e.reg.Update(ctx, res, "default", "w", o, registry.WriteOptions{})
		if err != nil || r3.Object.GetGeneration() != 2 {
			t.Fatalf("label update: %v %v", r3.Object, err)
		}
		cur = r3.Object
	})
}

func TestFinalizers(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	o := widget("f", nil)
	o.SetFinalizers([]string{"example.com/hold"})
	if _, err := e.reg.Create(ctx, res, "default", o, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, gone, err := e.reg.Delete(ctx, res, "default", "f", nil)
	if err != nil || gone || got.GetDeletionTimestamp() == nil {
		t.Fatalf("first delete: %v %v %v", got, gone, err)
	}
	again, gone, err := e.reg.Delete(ctx, res, "default", "f", nil)
	if err != nil || gone || again.GetResourceVersion() != got.GetResourceVersion() {
		t.Fatalf("second delete changed the object: %v %v %v", again, gone, err)
	}
	// Still visible and updatable; removing the finalizer deletes it.
	cur, err := e.reg.Get(ctx, res, "default", "f")
	if err != nil {
		t.Fatal(err)
	}
	cur.SetFinalizers(nil)
	r, err := e.reg.Update(ctx, res, "default", "f", cur, registry.WriteOptions{})
	if err != nil || r.Object.GetName() != "f" {
		t.Fatal(r, err)
	}
	_, err = e.reg.Get(ctx, res, "default", "f")
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
}

func TestDeleteOptions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	created, err := e.reg.Create(ctx, res, "default", widget("d", nil), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	badUID := types.UID("nope")
	_, _, err = e.reg.Delete(ctx, res, "default", "d", &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &badUID}})
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	badRV := "1"
	_, _, err = e.reg.Delete(ctx, res, "default", "d", &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &badRV}})
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	policy := metav1.DeletionPropagation("Sideways")
	_, _, err = e.reg.Delete(ctx, res, "default", "d", &metav1.DeleteOptions{PropagationPolicy: &policy})
	wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	_, gone, err := e.reg.Delete(ctx, res, "default", "d", &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil || !gone {
		t.Fatal(gone, err)
	}
	uid := created.Object.GetUID()
	_, gone, err = e.reg.Delete(ctx, res, "default", "d", &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil || !gone {
		t.Fatal(gone, err)
	}
	_, _, err = e.reg.Delete(ctx, res, "default", "d", nil)
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
}

func TestPatch(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	if _, err := e.reg.Create(ctx, res, "default", widget("p", map[string]any{"size": int64(1)}), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := e.reg.Patch(ctx, res, "default", "p", types.MergePatchType, []byte(`{"spec":{"size":2,"color":"red"}}`), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c, _, _ := unstructured.NestedString(r.Object.Object, "spec", "color"); c != "red" || r.Object.GetGeneration() != 2 {
		t.Fatalf("merge patch gave %v", r.Object.Object)
	}
	r, err = e.reg.Patch(ctx, res, "default", "p", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/size","value":5}]`), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := unstructured.NestedInt64(r.Object.Object, "spec", "size"); s != 5 {
		t.Fatalf("json patch gave %v", r.Object.Object)
	}
	cases := []struct {
		name   string
		pt     types.PatchType
		target string
		patch  string
		code   int32
		reason metav1.StatusReason
	}{
		{"strategic", types.StrategicMergePatchType, "p", `{}`, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType},
		{"apply_cbor", types.ApplyCBORPatchType, "p", `{}`, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType},
		{"bad_json", types.MergePatchType, "p", `{`, http.StatusBadRequest, metav1.StatusReasonBadRequest},
		{"bad_ops", types.JSONPatchType, "p", `{"op":1}`, http.StatusBadRequest, metav1.StatusReasonBadRequest},
		{"failed_test", types.JSONPatchType, "p", `[{"op":"test","path":"/spec/size","value":7}]`, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid},
		{"rename", types.MergePatchType, "p", `{"metadata":{"name":"q"}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest},
		{"stale_rv", types.MergePatchType, "p", `{"metadata":{"resourceVersion":"1"}}`, http.StatusConflict, metav1.StatusReasonConflict},
		{"missing", types.MergePatchType, "nope", `{}`, http.StatusNotFound, metav1.StatusReasonNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.reg.Patch(ctx, res, "default", c.target, c.pt, []byte(c.patch), registry.WriteOptions{})
			wantStatus(t, err, c.code, c.reason)
		})
	}
}

func TestListPaginationAndVersions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	for i := range 5 {
		if _, err := e.reg.Create(ctx, res, "default", widget(fmt.Sprintf("w%d", i), nil), registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	opts := everything()
	opts.Limit = 2
	first, err := e.reg.List(ctx, res, "default", opts)
	if err != nil || len(first.Items) != 2 || first.GetContinue() == "" {
		t.Fatalf("first page: %v %v", first, err)
	}
	// A write between pages is not seen: the pages share a snapshot.
	if _, err := e.reg.Create(ctx, res, "default", widget("w9", nil), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range first.Items {
		names = append(names, it.GetName())
	}
	cont := first.GetContinue()
	for cont != "" {
		opts.Continue = cont
		page, err := e.reg.List(ctx, res, "default", opts)
		if err != nil {
			t.Fatal(err)
		}
		if page.GetResourceVersion() != first.GetResourceVersion() {
			t.Fatalf("page at %s, first at %s", page.GetResourceVersion(), first.GetResourceVersion())
		}
		for _, it := range page.Items {
			names = append(names, it.GetName())
		}
		cont = page.GetContinue()
	}
	if fmt.Sprint(names) != "[w0 w1 w2 w3 w4]" {
		t.Fatalf("paged names %v", names)
	}
	t.Run("bad_continue", func(t *testing.T) {
		o := everything()
		o.Continue = "!!!"
		_, err := e.reg.List(ctx, res, "default", o)
		wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	})
	t.Run("future_exact", func(t *testing.T) {
		o := everything()
		o.ResourceVersion = "999999"
		o.ResourceVersionMatch = metav1.ResourceVersionMatchExact
		_, err := e.reg.List(ctx, res, "default", o)
		wantStatus(t, err, http.StatusGatewayTimeout, metav1.StatusReasonTimeout)
	})
	t.Run("field_selectors", func(t *testing.T) {
		o := everything()
		o.Fields = fields.ParseSelectorOrDie("metadata.name!=w0,metadata.namespace=default")
		l, err := e.reg.List(ctx, res, "", o)
		if err != nil || len(l.Items) != 5 {
			t.Fatalf("%v %v", l, err)
		}
		o.Fields = fields.ParseSelectorOrDie("spec.size=1")
		_, err = e.reg.List(ctx, res, "", o)
		wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	})
	t.Run("compacted", func(t *testing.T) {
		rev, err := e.store.CurrentRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.reg.Create(ctx, res, "default", widget("late", nil), registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.Compact(ctx, rev); err != nil {
			t.Fatal(err)
		}
		o := everything()
		o.Continue = first.GetContinue()
		_, err = e.reg.List(ctx, res, "default", o)
		wantStatus(t, err, http.StatusGone, metav1.StatusReasonExpired)
		o = everything()
		o.ResourceVersion = first.GetResourceVersion()
		o.ResourceVersionMatch = metav1.ResourceVersionMatchExact
		_, err = e.reg.List(ctx, res, "default", o)
		wantStatus(t, err, http.StatusGone, metav1.StatusReasonExpired)
		o.ResourceVersionMatch = metav1.ResourceVersionMatchNotOlderThan
		l, err := e.reg.List(ctx, res, "default", o)
		if err != nil || len(l.Items) != 7 {
			t.Fatalf("not-older-than list: %v %v", l, err)
		}
		if got, _ := strconv.ParseInt(l.GetResourceVersion(), 10, 64); got <= rev {
			t.Fatalf("list at %d, want > %d", got, rev)
		}
	})
}

// TestNamespaceDeletion checks the registry's part of namespace deletion:
// the namespace turns Terminating and refuses new content, an update
// leaves spec.finalizers alone, and once the finalize subresource removes
// "kubernetes" the namespace is deleted. Deleting its content is the
// namespace controller's job (internal/controllers/namespace).
func TestNamespaceDeletion(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	ns := e.lookup(t, "", "v1", "namespaces")
	if _, err := e.reg.Create(ctx, ns, "", obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "team"}}), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Create(ctx, res, "team", widget("plain", nil), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, gone, err := e.reg.Delete(ctx, ns, "", "team", nil)
	if err != nil || gone {
		t.Fatal(gone, err)
	}
	if phase, _, _ := unstructured.NestedString(got.Object, "status", "phase"); phase != "Terminating" {
		t.Fatalf("phase %q", phase)
	}
	_, err = e.reg.Create(ctx, res, "team", widget("new", nil), registry.WriteOptions{})
	wantStatus(t, err, http.StatusForbidden, metav1.StatusReasonForbidden)
	// Nothing in the registry deletes the content any more.
	if _, err := e.reg.Get(ctx, res, "team", "plain"); err != nil {
		t.Fatal(err)
	}
	// A plain update cannot drop spec.finalizers.
	cur, err := e.reg.Get(ctx, ns, "", "team")
	if err != nil {
		t.Fatal(err)
	}
	plain := cur.DeepCopy()
	if err := unstructured.SetNestedSlice(plain.Object, []any{}, "spec", "finalizers"); err != nil {
		t.Fatal(err)
	}
	r, err := e.reg.Update(ctx, ns, "", "team", plain, registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f, _, _ := unstructured.NestedStringSlice(r.Object.Object, "spec", "finalizers"); !slices.Equal(f, []string{"kubernetes"}) {
		t.Fatalf("spec.finalizers after update %v", f)
	}
	// The finalize subresource writes spec.finalizers and nothing else;
	// with none left the namespace goes.
	fin := r.Object.DeepCopy()
	fin.SetLabels(map[string]string{"ignored": "yes"})
	if err := unstructured.SetNestedSlice(fin.Object, []any{}, "spec", "finalizers"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Update(ctx, ns, "", "team", fin, registry.WriteOptions{Subresource: "finalize"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Get(ctx, ns, "", "team"); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace after finalize: %v", err)
	}
	// Other resources have no finalize subresource.
	_, err = e.reg.Update(ctx, res, "team", "plain", widget("plain", nil), registry.WriteOptions{Subresource: "finalize"})
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
}
