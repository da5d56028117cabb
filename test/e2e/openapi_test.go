package e2e

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"
	"k8s.io/kube-openapi/pkg/spec3"
)

// TestOpenAPIV3 reads the OpenAPI v3 documents as kubectl does: explain
// needs the CRD's schema, and apply's server-side field validation check
// looks for a PATCH operation of the kind with a fieldValidation parameter.
func TestOpenAPIV3(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	installCRD(t, c, widgetCRD())
	dc, err := discovery.NewDiscoveryClientForConfig(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	root := openapi3.NewRoot(dc.OpenAPIV3())
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatalf("OpenAPI v3 index: %v", err)
	}
	gv := schema.GroupVersion{Group: testGroup, Version: testVersion}
	for _, want := range []schema.GroupVersion{gv, {Version: "v1"}} {
		if !slices.Contains(gvs, want) {
			t.Errorf("OpenAPI v3 index %v lacks %v", gvs, want)
		}
	}
	doc, err := root.GVSpec(gv)
	if err != nil {
		t.Fatalf("OpenAPI v3 document of %v: %v", gv, err)
	}
	if doc.Components == nil {
		t.Fatalf("OpenAPI v3 document of %v has no components", gv)
	}
	var widgetSchema bool
	for name, sch := range doc.Components.Schemas {
		if hasGVK(sch.Extensions, gv.WithKind("Widget")) {
			widgetSchema = true
			spec, ok := sch.Properties["spec"]
			if !ok || !slices.Contains(spec.Required, "size") || spec.Properties["color"].Enum == nil {
				t.Errorf("schema %s does not carry the CRD's spec schema: %+v", name, spec)
			}
		}
	}
	if !widgetSchema {
		t.Errorf("no component schema with x-kubernetes-group-version-kind Widget")
	}
	if !patchHasParam(doc, gv.WithKind("Widget"), "fieldValidation") {
		t.Errorf("no PATCH operation of kind Widget with a fieldValidation parameter: kubectl apply cannot tell the server validates fields")
	}
}

// hasGVK reports whether the x-kubernetes-group-version-kind extension
// lists gvk.
func hasGVK(ext map[string]any, gvk schema.GroupVersionKind) bool {
	list, _ := ext["x-kubernetes-group-version-kind"].([]any)
	if m, ok := ext["x-kubernetes-group-version-kind"].(map[string]any); ok {
		list = append(list, m)
	}
	for _, item := range list {
		m, _ := item.(map[string]any)
		if m["group"] == gvk.Group && m["version"] == gvk.Version && m["kind"] == gvk.Kind {
			return true
		}
	}
	return false
}

// patchHasParam reports whether a PATCH operation for gvk takes param.
func patchHasParam(doc *spec3.OpenAPI, gvk schema.GroupVersionKind, param string) bool {
	if doc.Paths == nil {
		return false
	}
	for _, path := range doc.Paths.Paths {
		op := path.Patch
		if op == nil || !hasGVK(op.Extensions, gvk) {
			continue
		}
		for _, p := range append(slices.Clone(op.Parameters), path.Parameters...) {
			if p != nil && p.Name == param {
				return true
			}
		}
	}
	return false
}
