package registry_test

import (
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/registry"
)

// gadgetCRD is a cluster-scoped CRD with a schema, a default and two
// served versions (v1 stored).
func gadgetCRD() *unstructured.Unstructured {
	schema := map[string]any{"openAPIV3Schema": map[string]any{
		"type": "object",
		"properties": map[string]any{
			"spec": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"replicas": map[string]any{"type": "integer", "minimum": int64(0)},
					"mode":     map[string]any{"type": "string", "default": "auto"},
				},
			},
		},
	}}
	return obj(map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gadgets.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Cluster",
			"names": map[string]any{"plural": "gadgets", "kind": "Gadget"},
			"versions": []any{
				map[string]any{"name": "v1", "served": true, "storage": true, "schema": schema},
				map[string]any{"name": "v1beta1", "served": true, "storage": false, "schema": schema},
			},
		},
	})
}

func gadget(apiVersion, name string, spec map[string]any) *unstructured.Unstructured {
	o := obj(map[string]any{"apiVersion": apiVersion, "kind": "Gadget", "metadata": map[string]any{"name": name}})
	if spec != nil {
		o.Object["spec"] = spec
	}
	return o
}

func TestSchemaAdmission(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	if _, err := e.reg.Create(ctx, crds, "", gadgetCRD(), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	res := e.lookup(t, "example.com", "v1", "gadgets")
	if res.Schema == nil || res.Namespaced {
		t.Fatalf("resource %+v", res)
	}
	for _, g := range e.reg.Groups() {
		if g.Group == "example.com" && (len(g.Versions) != 2 || g.Versions[0] != "v1") {
			t.Fatalf("versions %v", g.Versions)
		}
	}
	t.Run("default", func(t *testing.T) {
		r, err := e.reg.Create(ctx, res, "", gadget("example.com/v1", "d", map[string]any{"replicas": int64(1)}), registry.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m, _, _ := unstructured.NestedString(r.Object.Object, "spec", "mode"); m != "auto" {
			t.Fatalf("default not applied: %v", r.Object.Object)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := e.reg.Create(ctx, res, "", gadget("example.com/v1", "i", map[string]any{"replicas": int64(-1)}), registry.WriteOptions{})
		wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	})
	unknown := map[string]any{"replicas": int64(1), "foo": "x"}
	t.Run("strict", func(t *testing.T) {
		_, err := e.reg.Create(ctx, res, "", gadget("example.com/v1", "s", unknown), registry.WriteOptions{FieldValidation: "Strict", DecodeIssues: []string{`duplicate field "x"`}})
		wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
		if msg := err.Error(); !strings.Contains(msg, `strict decoding error: `) || !strings.Contains(msg, `unknown field "spec.foo"`) || !strings.Contains(msg, `duplicate field "x"`) {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("warn", func(t *testing.T) {
		r, err := e.reg.Create(ctx, res, "", gadget("example.com/v1", "w", unknown), registry.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Warnings) != 1 || r.Warnings[0] != `unknown field "spec.foo"` {
			t.Fatalf("warnings %q", r.Warnings)
		}
		if _, ok, _ := unstructured.NestedString(r.Object.Object, "spec", "foo"); ok {
			t.Fatal("unknown field stored")
		}
	})
	t.Run("ignore", func(t *testing.T) {
		r, err := e.reg.Create(ctx, res, "", gadget("example.com/v1", "ig", unknown), registry.WriteOptions{FieldValidation: "Ignore"})
		if err != nil || len(r.Warnings) != 0 {
			t.Fatal(r.Warnings, err)
		}
	})
	t.Run("other_version", func(t *testing.T) {
		beta := e.lookup(t, "example.com", "v1beta1", "gadgets")
		if _, err := e.reg.Create(ctx, beta, "", gadget("example.com/v1beta1", "b", nil), registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := e.reg.Get(ctx, res, "", "b")
		if err != nil || got.GetAPIVersion() != "example.com/v1" {
			t.Fatalf("read through v1: %v %v", got, err)
		}
		got, err = e.reg.Get(ctx, beta, "", "b")
		if err != nil || got.GetAPIVersion() != "example.com/v1beta1" {
			t.Fatalf("read through v1beta1: %v %v", got, err)
		}
	})
}

func TestCRDValidation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	bad := widgetCRD()
	bad.SetName("wrong.example.com")
	_, err := e.reg.Create(ctx, crds, "", bad, registry.WriteOptions{})
	wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	// A second CRD in the group with a clashing kind is not established.
	e.widgets(t)
	clash := widgetCRD()
	clash.SetName("others.example.com")
	_ = unstructured.SetNestedField(clash.Object, "others", "spec", "names", "plural")
	r, err := e.reg.Create(ctx, crds, "", clash, registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(r.Object.Object, "status", "conditions")
	for _, c := range conds {
		c := c.(map[string]any)
		if c["type"] == "NamesAccepted" && (c["status"] != "False" || !strings.HasSuffix(c["reason"].(string), "Conflict")) {
			t.Fatalf("NamesAccepted %v", c)
		}
	}
	if _, ok := e.reg.Lookup("example.com", "v1", "others"); ok {
		t.Fatal("clashing CRD served")
	}
}
