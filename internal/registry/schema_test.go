package registry_test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// wantCause fails unless err is a 422 whose causes include one at field
// with a message containing msg.
func wantCause(t *testing.T, err error, field, msg string) {
	t.Helper()
	wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	details := err.(*apierrors.StatusError).ErrStatus.Details
	for _, c := range details.Causes {
		if c.Field == field && strings.Contains(c.Message, msg) {
			return
		}
	}
	t.Fatalf("causes %+v, want %q at %s", details.Causes, msg, field)
}

// TestCRDRejectsInvalidVersions checks the per-version rules: every version
// has a schema and its printer columns are well formed. A rejected CRD is
// not stored.
func TestCRDRejectsInvalidVersions(t *testing.T) {
	e := newEnv(t)
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	column := func(c map[string]any) func(v map[string]any) {
		return func(v map[string]any) {
			col := map[string]any{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}
			maps.Copy(col, c)
			v["additionalPrinterColumns"] = []any{col}
		}
	}
	const col0 = "spec.versions[0].additionalPrinterColumns[0]."
	for _, c := range []struct {
		name, field, msg string
		mutate           func(v map[string]any)
	}{
		{"NoSchema", "spec.versions[0].schema.openAPIV3Schema", "Required value", func(v map[string]any) { delete(v, "schema") }},
		{"PrinterPathNoDot", col0 + "JSONPath", "must be a simple json path starting with .", column(map[string]any{"jsonPath": "spec["})},
		{"PrinterPathUnparsable", col0 + "JSONPath", "must be a valid JSONPath", column(map[string]any{"jsonPath": ".spec["})},
		{"PrinterPathMissing", col0 + "JSONPath", "Required value", column(map[string]any{"jsonPath": ""})},
		{"PrinterNameMissing", col0 + "name", "Required value", column(map[string]any{"name": ""})},
		{"PrinterType", col0 + "type", "must be one of boolean,date,integer,number,string", column(map[string]any{"type": "float"})},
		{"PrinterFormat", col0 + "format", "must be one of byte,date,date-time,double,float,int32,int64,password", column(map[string]any{"format": "uuid"})},
	} {
		t.Run(c.name, func(t *testing.T) {
			crd := widgetCRD()
			versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
			c.mutate(versions[0].(map[string]any))
			if err := unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"); err != nil {
				t.Fatal(err)
			}
			_, err := e.reg.Create(t.Context(), crds, "", crd, registry.WriteOptions{})
			wantCause(t, err, c.field, c.msg)
			_, err = e.reg.Get(t.Context(), crds, "", crd.GetName())
			wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
		})
	}
}

// TestCRDStoredVersions checks that status.storedVersions gains each new
// storage version and that no version in it may leave spec.versions, so
// stored objects stay readable.
func TestCRDStoredVersions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	created, err := e.reg.Create(ctx, crds, "", widgetCRD(), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	storedVersions := func(u *unstructured.Unstructured) []string {
		v, _, _ := unstructured.NestedStringSlice(u.Object, "status", "storedVersions")
		return v
	}
	if got := storedVersions(created.Object); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("storedVersions after create %v, want [v1]", got)
	}
	// v2 becomes the storage version; v1 stays served.
	next := created.Object.DeepCopy()
	v2 := map[string]any{"name": "v2", "served": true, "storage": true, "schema": anySchema()}
	v1 := map[string]any{"name": "v1", "served": true, "storage": false, "schema": anySchema()}
	if err := unstructured.SetNestedSlice(next.Object, []any{v1, v2}, "spec", "versions"); err != nil {
		t.Fatal(err)
	}
	updated, err := e.reg.Update(ctx, crds, "", next.GetName(), next, registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := storedVersions(updated.Object); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Fatalf("storedVersions after the storage version moved %v, want [v1 v2]", got)
	}
	// Dropping v1, still listed in storedVersions, is refused.
	drop := updated.Object.DeepCopy()
	if err := unstructured.SetNestedSlice(drop.Object, []any{v2}, "spec", "versions"); err != nil {
		t.Fatal(err)
	}
	_, err = e.reg.Update(ctx, crds, "", drop.GetName(), drop, registry.WriteOptions{})
	wantCause(t, err, "status.storedVersions[0]", "must appear in spec.versions")
	got, err := e.reg.Get(ctx, crds, "", drop.GetName())
	if err != nil {
		t.Fatal(err)
	}
	if versions, _, _ := unstructured.NestedSlice(got.Object, "spec", "versions"); len(versions) != 2 {
		t.Fatalf("spec.versions after the refused update: %v", versions)
	}
	// Once the objects are migrated, the status subresource takes v1 off
	// storedVersions (never the storage version), and v1 may go.
	if err := unstructured.SetNestedStringSlice(got.Object, []string{"v1"}, "status", "storedVersions"); err != nil {
		t.Fatal(err)
	}
	_, err = e.reg.Update(ctx, crds, "", got.GetName(), got.DeepCopy(), registry.WriteOptions{Subresource: "status"})
	wantCause(t, err, "status.storedVersions", "must have the storage version v2")
	if err := unstructured.SetNestedStringSlice(got.Object, []string{"v2"}, "status", "storedVersions"); err != nil {
		t.Fatal(err)
	}
	migrated, err := e.reg.Update(ctx, crds, "", got.GetName(), got, registry.WriteOptions{Subresource: "status"})
	if err != nil {
		t.Fatal(err)
	}
	if got := storedVersions(migrated.Object); !slices.Equal(got, []string{"v2"}) {
		t.Fatalf("storedVersions after the status update %v, want [v2]", got)
	}
	drop.SetResourceVersion(migrated.Object.GetResourceVersion())
	if _, err := e.reg.Update(ctx, crds, "", drop.GetName(), drop, registry.WriteOptions{}); err != nil {
		t.Fatalf("dropping v1 after it left storedVersions: %v", err)
	}
}
