package registry_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/registry"
)

// ruledCRD is a cluster-scoped CRD with a status subresource and
// x-kubernetes-validations on spec and status, among them a transition
// rule that makes spec.name immutable.
func ruledCRD(specRules []any) *unstructured.Unstructured {
	schema := map[string]any{"openAPIV3Schema": map[string]any{
		"type": "object",
		"properties": map[string]any{
			"spec": map[string]any{
				"type":                     "object",
				"x-kubernetes-validations": specRules,
				"properties": map[string]any{
					"name": map[string]any{"type": "string", "maxLength": int64(20),
						"x-kubernetes-validations": []any{map[string]any{"rule": "self == oldSelf", "message": "name is immutable"}}},
					"replicas":    map[string]any{"type": "integer"},
					"maxReplicas": map[string]any{"type": "integer"},
				},
			},
			"status": map[string]any{
				"type": "object",
				"x-kubernetes-validations": []any{map[string]any{
					"rule": "!has(self.ready) || self.ready <= 10", "message": "ready must be at most 10", "fieldPath": ".ready"}},
				"properties": map[string]any{"ready": map[string]any{"type": "integer"}},
			},
		},
	}}
	return obj(map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "rulers.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Cluster",
			"names": map[string]any{"plural": "rulers", "kind": "Ruler"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true, "schema": schema,
				"subresources": map[string]any{"status": map[string]any{}},
			}},
		},
	})
}

var replicasRule = map[string]any{
	"rule":    "!has(self.replicas) || !has(self.maxReplicas) || self.replicas <= self.maxReplicas",
	"message": "replicas must be <= maxReplicas",
}

func ruler(name string, spec map[string]any) *unstructured.Unstructured {
	return obj(map[string]any{"apiVersion": "example.com/v1", "kind": "Ruler", "metadata": map[string]any{"name": name}, "spec": spec})
}

// TestCELRulesOnWrites runs x-kubernetes-validations on create, update,
// merge patch and the status subresource, with the stored object as
// oldSelf, and checks that a rejected write changes nothing.
func TestCELRulesOnWrites(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	if _, err := e.reg.Create(ctx, crds, "", ruledCRD([]any{replicasRule}), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	res := e.lookup(t, "example.com", "v1", "rulers")

	_, err := e.reg.Create(ctx, res, "", ruler("bad", map[string]any{"replicas": int64(3), "maxReplicas": int64(2)}), registry.WriteOptions{})
	wantCause(t, err, "spec", "replicas must be <= maxReplicas")
	if _, err := e.reg.Get(ctx, res, "", "bad"); err == nil {
		t.Fatal("rejected object was stored")
	}

	r, err := e.reg.Create(ctx, res, "", ruler("r", map[string]any{"name": "a", "replicas": int64(1), "maxReplicas": int64(2)}), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv := r.Object.GetResourceVersion()

	t.Run("update keeps the immutable field", func(t *testing.T) {
		cur, err := e.reg.Get(ctx, res, "", "r")
		if err != nil {
			t.Fatal(err)
		}
		_ = unstructured.SetNestedField(cur.Object, int64(2), "spec", "replicas")
		if _, err := e.reg.Update(ctx, res, "", "r", cur, registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("update changes the immutable field", func(t *testing.T) {
		cur, err := e.reg.Get(ctx, res, "", "r")
		if err != nil {
			t.Fatal(err)
		}
		_ = unstructured.SetNestedField(cur.Object, "b", "spec", "name")
		_, err = e.reg.Update(ctx, res, "", "r", cur, registry.WriteOptions{})
		wantCause(t, err, "spec.name", "name is immutable")
	})
	t.Run("merge patch", func(t *testing.T) {
		_, err := e.reg.Patch(ctx, res, "", "r", types.MergePatchType, []byte(`{"spec":{"name":"c","replicas":5}}`), registry.WriteOptions{})
		wantCause(t, err, "spec.name", "name is immutable")
		wantCause(t, err, "spec", "replicas must be <= maxReplicas")
	})
	t.Run("status subresource", func(t *testing.T) {
		_, err := e.reg.Patch(ctx, res, "", "r", types.MergePatchType, []byte(`{"status":{"ready":11}}`), registry.WriteOptions{Subresource: "status"})
		wantCause(t, err, "status.ready", "ready must be at most 10")
		if _, err := e.reg.Patch(ctx, res, "", "r", types.MergePatchType, []byte(`{"status":{"ready":3}}`), registry.WriteOptions{Subresource: "status"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("rejected writes change nothing", func(t *testing.T) {
		cur, err := e.reg.Get(ctx, res, "", "r")
		if err != nil {
			t.Fatal(err)
		}
		name, _, _ := unstructured.NestedString(cur.Object, "spec", "name")
		replicas, _, _ := unstructured.NestedInt64(cur.Object, "spec", "replicas")
		if name != "a" || replicas != 2 || cur.GetResourceVersion() == rv {
			t.Fatalf("spec %v at %s", cur.Object["spec"], cur.GetResourceVersion())
		}
	})
}

// TestCRDWithBrokenRuleRejected checks that a CRD whose rule does not
// compile is rejected with 422 at the rule's path and is not stored, and
// that a CRD update may not introduce one either.
func TestCRDWithBrokenRuleRejected(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	broken := []any{map[string]any{"rule": "self.replicas <= self.nope"}}
	const rulePath = "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
	_, err := e.reg.Create(ctx, crds, "", ruledCRD(broken), registry.WriteOptions{})
	wantCause(t, err, rulePath, `Invalid value: {"Rule":"self.replicas \u003c= self.nope","Message":"","MessageExpression":"","Reason":null,"FieldPath":"","OptionalOldSelf":null}: compilation failed: ERROR: <input>:1:22: undefined field 'nope'`)
	if _, err := e.reg.Get(ctx, crds, "", "rulers.example.com"); err == nil {
		t.Fatal("rejected CRD was stored")
	}

	r, err := e.reg.Create(ctx, crds, "", ruledCRD([]any{replicasRule}), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	update := ruledCRD(broken)
	update.SetResourceVersion(r.Object.GetResourceVersion())
	_, err = e.reg.Update(ctx, crds, "", "rulers.example.com", update, registry.WriteOptions{})
	wantCause(t, err, rulePath, "undefined field 'nope'")

	// A valid new rule takes effect at once.
	next := ruledCRD([]any{map[string]any{"rule": "!has(self.name) || self.name.startsWith('a')"}})
	next.SetResourceVersion(r.Object.GetResourceVersion())
	if _, err := e.reg.Update(ctx, crds, "", "rulers.example.com", next, registry.WriteOptions{}); err != nil {
		t.Fatalf("a valid rule on update: %v", err)
	}
	res := e.lookup(t, "example.com", "v1", "rulers")
	_, err = e.reg.Create(ctx, res, "", ruler("b", map[string]any{"name": "b"}), registry.WriteOptions{})
	wantCause(t, err, "spec", "failed rule: !has(self.name) || self.name.startsWith('a')")
}

// TestCELRatchetingAfterCRDUpdate tightens a CRD's rules over an existing
// object: updates that leave the failing value alone pass with a warning,
// updates that change it are rejected.
func TestCELRatchetingAfterCRDUpdate(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	r, err := e.reg.Create(ctx, crds, "", ruledCRD([]any{replicasRule}), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := e.lookup(t, "example.com", "v1", "rulers")
	if _, err := e.reg.Create(ctx, res, "", ruler("old", map[string]any{"replicas": int64(7)}), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	tighter := ruledCRD([]any{map[string]any{"rule": "!has(self.replicas) || self.replicas < 5", "message": "replicas must be below 5"}})
	tighter.SetResourceVersion(r.Object.GetResourceVersion())
	if _, err := e.reg.Update(ctx, crds, "", "rulers.example.com", tighter, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	res = e.lookup(t, "example.com", "v1", "rulers")
	got, err := e.reg.Patch(ctx, res, "", "old", types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "spec: Invalid value: replicas must be below 5"; len(got.Warnings) != 1 || got.Warnings[0] != want {
		t.Fatalf("warnings %q, want %q", got.Warnings, want)
	}
	_, err = e.reg.Patch(ctx, res, "", "old", types.MergePatchType, []byte(`{"spec":{"replicas":6}}`), registry.WriteOptions{})
	wantCause(t, err, "spec", "replicas must be below 5")
}
