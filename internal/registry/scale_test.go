package registry_test

import (
	"context"
	"net/http"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/registry"
)

// scalers installs a CRD with the status and scale subresources and
// returns its resource.
func (e *env) scalers(t *testing.T) *registry.Resource {
	t.Helper()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	crd := obj(map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "scalers.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "scalers", "kind": "Scaler"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true, "schema": anySchema(),
				"subresources": map[string]any{"status": map[string]any{}, "scale": map[string]any{
					"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
			}},
		},
	})
	if _, err := e.reg.Create(context.Background(), crds, "", crd, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return e.lookup(t, "example.com", "v1", "scalers")
}

func replicas(t *testing.T, u *unstructured.Unstructured, path ...string) int64 {
	t.Helper()
	v, ok, err := unstructured.NestedInt64(u.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%v: %v (found %v) in %v", path, err, ok, u.Object)
	}
	return v
}

func TestScale(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.scalers(t)
	if res.Scale == nil || res.Scale.SpecReplicas != ".spec.replicas" || res.Scale.LabelSelector != ".status.selector" {
		t.Fatalf("Scale %+v", res.Scale)
	}
	o := obj(map[string]any{"apiVersion": "example.com/v1", "kind": "Scaler", "metadata": map[string]any{"name": "s"}, "spec": map[string]any{"replicas": int64(2)}})
	created, err := e.reg.Create(ctx, res, "default", o, registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := created.Object.DeepCopy()
	unstructured.SetNestedField(st.Object, int64(2), "status", "replicas")
	unstructured.SetNestedField(st.Object, "app=s", "status", "selector")
	if _, err := e.reg.Update(ctx, res, "default", "s", st, registry.WriteOptions{Subresource: "status"}); err != nil {
		t.Fatal(err)
	}

	sc, err := e.reg.GetScale(ctx, res, "default", "s")
	if err != nil {
		t.Fatal(err)
	}
	if sc.GetAPIVersion() != "autoscaling/v1" || sc.GetKind() != "Scale" || sc.GetName() != "s" || sc.GetNamespace() != "default" || sc.GetUID() != created.Object.GetUID() {
		t.Fatalf("scale %v", sc.Object)
	}
	if replicas(t, sc, "spec", "replicas") != 2 || replicas(t, sc, "status", "replicas") != 2 || sc.Object["status"].(map[string]any)["selector"] != "app=s" {
		t.Fatalf("scale %v", sc.Object)
	}

	// PUT with the current resourceVersion.
	unstructured.SetNestedField(sc.Object, int64(5), "spec", "replicas")
	r, err := e.reg.UpdateScale(ctx, res, "default", "s", sc, registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Object.GetKind() != "Scale" || replicas(t, r.Object, "spec", "replicas") != 5 {
		t.Fatalf("update answered %v", r.Object.Object)
	}
	got, err := e.reg.Get(ctx, res, "default", "s")
	if err != nil {
		t.Fatal(err)
	}
	if replicas(t, got, "spec", "replicas") != 5 || got.GetGeneration() != 2 || replicas(t, got, "status", "replicas") != 2 {
		t.Fatalf("object after scale %v", got.Object)
	}
	// The old resourceVersion is a failed precondition.
	_, err = e.reg.UpdateScale(ctx, res, "default", "s", sc, registry.WriteOptions{})
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)

	// Merge (kubectl scale) and JSON patches.
	for _, p := range []struct {
		pt    types.PatchType
		body  string
		wantN int64
	}{
		{types.MergePatchType, `{"spec":{"replicas":7}}`, 7},
		{types.JSONPatchType, `[{"op":"replace","path":"/spec/replicas","value":1}]`, 1},
	} {
		r, err := e.reg.PatchScale(ctx, res, "default", "s", p.pt, []byte(p.body), registry.WriteOptions{})
		if err != nil {
			t.Fatalf("%s: %v", p.pt, err)
		}
		if n := replicas(t, r.Object, "spec", "replicas"); n != p.wantN {
			t.Fatalf("%s: replicas %d, want %d", p.pt, n, p.wantN)
		}
	}

	for _, tc := range []struct {
		name   string
		pt     types.PatchType
		body   string
		code   int32
		reason metav1.StatusReason
	}{
		{"negative", types.MergePatchType, `{"spec":{"replicas":-1}}`, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid},
		{"notInteger", types.MergePatchType, `{"spec":{"replicas":"x"}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest},
		{"staleRV", types.MergePatchType, `{"metadata":{"resourceVersion":"1"},"spec":{"replicas":3}}`, http.StatusConflict, metav1.StatusReasonConflict},
		{"apply_not_a_scale", types.ApplyYAMLPatchType, `{}`, http.StatusBadRequest, metav1.StatusReasonBadRequest},
		{"apply_cbor", types.ApplyCBORPatchType, `{}`, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType},
		{"strategic", types.StrategicMergePatchType, `{"spec":{"replicas":0}}`, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType},
		{"malformed", types.MergePatchType, `{`, http.StatusBadRequest, metav1.StatusReasonBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.reg.PatchScale(ctx, res, "default", "s", tc.pt, []byte(tc.body), registry.WriteOptions{})
			wantStatus(t, err, tc.code, tc.reason)
		})
	}
	_, err = e.reg.GetScale(ctx, res, "default", "nope")
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)

	// The object's own replica counts are validated as Kubernetes does.
	bad := obj(map[string]any{"apiVersion": "example.com/v1", "kind": "Scaler", "metadata": map[string]any{"name": "bad"}, "spec": map[string]any{"replicas": int64(-2)}})
	_, err = e.reg.Create(ctx, res, "default", bad, registry.WriteOptions{})
	wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)

	// An object without spec replicas has no scale to read or patch.
	empty := obj(map[string]any{"apiVersion": "example.com/v1", "kind": "Scaler", "metadata": map[string]any{"name": "empty"}})
	if _, err := e.reg.Create(ctx, res, "default", empty, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = e.reg.GetScale(ctx, res, "default", "empty")
	wantStatus(t, err, http.StatusInternalServerError, metav1.StatusReasonInternalError)
	// A patch that leaves the replicas unset is a bad request.
	_, err = e.reg.PatchScale(ctx, res, "default", "empty", types.MergePatchType, []byte(`{"metadata":{}}`), registry.WriteOptions{})
	wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	if _, err := e.reg.PatchScale(ctx, res, "default", "empty", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), registry.WriteOptions{}); err != nil {
		t.Fatalf("patch sets replicas on an object without them: %v", err)
	}
}
