package discovery_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/spec3"

	setpointdiscovery "github.com/setpoint/setpoint/internal/apiserver/discovery"
	"github.com/setpoint/setpoint/internal/registry"
)

// openAPIClient is client-go's OpenAPI v3 client against a test server
// serving reg's documents.
func openAPIClient(t *testing.T, reg *registry.Registry) openapi.Client {
	t.Helper()
	ts := httptest.NewServer(&discoveryServer{reg: reg, aggregated: true})
	t.Cleanup(ts.Close)
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	return dc.OpenAPIV3()
}

// servedKinds are the kinds of newPopulated's registry.
var servedKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Namespace"},
	{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"},
	{Group: "example.com", Version: "v1", Kind: "Widget"},
	{Group: "example.com", Version: "v1beta1", Kind: "Widget"},
	{Group: "tools.example.org", Version: "v1", Kind: "Gizmo"},
}

func TestOpenAPIIndex(t *testing.T) {
	reg := newPopulated(t)
	root := openapi3.NewRoot(openAPIClient(t, reg))
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatal(err)
	}
	want := []schema.GroupVersion{ // sorted by their string form
		{Group: "admissionregistration.k8s.io", Version: "v1"}, {Group: "apiextensions.k8s.io", Version: "v1"},
		{Group: "coordination.k8s.io", Version: "v1"}, {Group: "events.k8s.io", Version: "v1"},
		{Group: "example.com", Version: "v1"}, {Group: "example.com", Version: "v1beta1"},
		{Group: "rbac.authorization.k8s.io", Version: "v1"}, {Group: "tools.example.org", Version: "v1"}, {Version: "v1"},
	}
	if !reflect.DeepEqual(gvs, want) {
		t.Fatalf("group versions %v, want %v", gvs, want)
	}
	for _, gv := range gvs {
		doc, err := root.GVSpec(gv)
		if err != nil {
			t.Fatalf("%v: %v", gv, err)
		}
		if doc.Version != "3.0.0" || doc.Paths == nil || doc.Components == nil {
			t.Fatalf("%v: document %+v", gv, doc)
		}
	}
	if _, ok := setpointdiscovery.OpenAPI(reg, "apis/example.com/v2"); ok {
		t.Error("apis/example.com/v2 served")
	}
}

func TestOpenAPIHashChangesWithDocument(t *testing.T) {
	reg := newPopulated(t)
	widgets, _ := setpointdiscovery.OpenAPIHash(reg, "apis/example.com/v1")
	gizmos, _ := setpointdiscovery.OpenAPIHash(reg, "apis/tools.example.org/v1")
	reused := map[string][]byte{}
	for _, path := range []string{"api/v1", "apis/apiextensions.k8s.io/v1", "apis/example.com/v1"} {
		reused[path], _ = setpointdiscovery.OpenAPI(reg, path)
	}
	crd := gizmoCRD()
	crd["metadata"] = map[string]any{"name": "gears.tools.example.org"}
	spec := crd["spec"].(map[string]any)
	spec["names"] = map[string]any{"plural": "gears", "kind": "Gear"}
	createCRD(t, reg, crd)
	if got, _ := setpointdiscovery.OpenAPIHash(reg, "apis/example.com/v1"); got != widgets {
		t.Error("hash of an unchanged document changed")
	}
	for path, before := range reused {
		if after, _ := setpointdiscovery.OpenAPI(reg, path); &after[0] != &before[0] {
			t.Errorf("%s rebuilt although its resources did not change", path)
		}
	}
	got, _ := setpointdiscovery.OpenAPIHash(reg, "apis/tools.example.org/v1")
	if got == gizmos {
		t.Error("hash of a changed document kept")
	}
	var index struct {
		Paths map[string]struct{ ServerRelativeURL string } `json:"paths"`
	}
	if err := json.Unmarshal(setpointdiscovery.OpenAPIIndex(reg), &index); err != nil {
		t.Fatal(err)
	}
	if u := index.Paths["apis/tools.example.org/v1"].ServerRelativeURL; u != "/openapi/v3/apis/tools.example.org/v1?hash="+got {
		t.Errorf("index URL %q", u)
	}
	doc, _ := setpointdiscovery.OpenAPI(reg, "apis/tools.example.org/v1")
	if !strings.Contains(string(doc), "org.example.tools.v1.Gear") {
		t.Error("new kind missing from its group version's document")
	}
}

// supportsFieldValidation reproduces kubectl's check for server-side field
// validation, from k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go
// (HasSupport and supportsQueryParamV3; cli-runtime is not a dependency of
// this module): the document of the kind's group version must exist and
// have paths; the check passes when a PATCH operation whose
// x-kubernetes-group-version-kind (decoded as map[string]string) equals the
// kind lists a parameter named fieldValidation among its own parameters.
// kubectl stops at the first such PATCH operation in map order, so this
// requires every one of them to list it.
func supportsFieldValidation(root openapi3.Root, gvk schema.GroupVersionKind) error {
	doc, err := root.GVSpec(gvk.GroupVersion())
	if err != nil {
		return err
	}
	if doc == nil || doc.Paths == nil {
		return fmt.Errorf("invalid OpenAPI V3 document")
	}
	found := 0
	for path, item := range doc.Paths.Paths {
		op := item.Patch
		if op == nil {
			continue
		}
		var got map[string]string
		if err := op.Extensions.GetObject("x-kubernetes-group-version-kind", &got); err != nil {
			continue
		}
		if got["group"] != gvk.Group || got["version"] != gvk.Version || got["kind"] != gvk.Kind {
			continue
		}
		if !hasParam(op, "fieldValidation") {
			return fmt.Errorf("PATCH %s does not list fieldValidation", path)
		}
		found++
	}
	if found == 0 {
		return fmt.Errorf("%v doesn't support fieldValidation", gvk)
	}
	return nil
}

func hasParam(op *spec3.Operation, name string) bool {
	for _, p := range op.Parameters {
		if p.Name == name {
			return true
		}
	}
	return false
}

func TestFieldValidationSupportDetected(t *testing.T) {
	reg := newPopulated(t)
	root := openapi3.NewRoot(openAPIClient(t, reg))
	for _, gvk := range servedKinds {
		if err := supportsFieldValidation(root, gvk); err != nil {
			t.Errorf("%v: %v", gvk, err)
		}
	}
	if err := supportsFieldValidation(root, schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gizmo"}); err == nil {
		t.Error("support reported for a kind not in the document")
	}
}

// explainSchema finds the schema kubectl explain (k8s.io/kubectl/pkg/explain/v2,
// templates/plaintext.tmpl) shows for gvr: the group-version-kind of the
// first operation on the resource's collection or object path, then the
// components.schemas entry whose group-version-kind list holds an equal
// value. It follows fieldPath through properties, $ref and allOf.
func explainSchema(t *testing.T, root openapi3.Root, gvr schema.GroupVersionResource, fieldPath ...string) map[string]any {
	t.Helper()
	doc, err := root.GVSpecAsMap(gvr.GroupVersion())
	if err != nil {
		t.Fatal(err)
	}
	prefix := "/apis/" + gvr.Group
	if gvr.Group == "" {
		prefix = "/api"
	}
	paths := doc["paths"].(map[string]any)
	var gvk any
search:
	for _, p := range []string{
		prefix + "/" + gvr.Version + "/" + gvr.Resource,
		prefix + "/" + gvr.Version + "/" + gvr.Resource + "/{name}",
		prefix + "/" + gvr.Version + "/namespaces/{namespace}/" + gvr.Resource,
		prefix + "/" + gvr.Version + "/namespaces/{namespace}/" + gvr.Resource + "/{name}",
	} {
		item, _ := paths[p].(map[string]any)
		for _, method := range []string{"get", "post", "put", "patch", "delete"} {
			if op, ok := item[method].(map[string]any); ok && op["x-kubernetes-group-version-kind"] != nil {
				gvk = op["x-kubernetes-group-version-kind"]
				break search
			}
		}
	}
	if gvk == nil {
		t.Fatalf("%v: no operation with a group-version-kind", gvr)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		for {
			if ref, ok := s["$ref"].(string); ok {
				s = schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
				continue
			}
			if all, ok := s["allOf"].([]any); ok && len(all) == 1 && s["properties"] == nil {
				s = all[0].(map[string]any)
				continue
			}
			return s
		}
	}
	for _, s := range schemas {
		s := s.(map[string]any)
		list, _ := s["x-kubernetes-group-version-kind"].([]any)
		for _, v := range list {
			if reflect.DeepEqual(v, gvk) {
				for _, f := range fieldPath {
					props, _ := resolve(s)["properties"].(map[string]any)
					next, ok := props[f].(map[string]any)
					if !ok {
						t.Fatalf("%v: field %s not found in %v", gvr, f, fieldPath)
					}
					s = next
				}
				return s
			}
		}
	}
	t.Fatalf("%v: no schema for %v", gvr, gvk)
	return nil
}

func TestExplainFindsSchemas(t *testing.T) {
	reg := newPopulated(t)
	root := openapi3.NewRoot(openAPIClient(t, reg))
	tests := []struct {
		gvr         schema.GroupVersionResource
		fieldPath   []string
		description string
	}{
		{schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}, nil, "Widget is a test resource."},
		{schema.GroupVersionResource{Group: "example.com", Version: "v1beta1", Resource: "widgets"}, []string{"spec", "size"}, "Size in units."},
		{schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}, []string{"metadata", "name"}, ""},
		{schema.GroupVersionResource{Group: "tools.example.org", Version: "v1", Resource: "gizmos"}, []string{"metadata", "labels"}, ""},
		{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, []string{"status", "phase"}, "Active, or Terminating once deletion has begun."},
		{schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, []string{"spec", "names", "shortNames"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.gvr.Resource+"."+tt.gvr.Version+"."+strings.Join(tt.fieldPath, "."), func(t *testing.T) {
			s := explainSchema(t, root, tt.gvr, tt.fieldPath...)
			if d, _ := s["description"].(string); tt.description != "" && d != tt.description {
				t.Errorf("description %q, want %q", d, tt.description)
			}
			if d, _ := s["description"].(string); d == "" {
				t.Error("no description")
			}
		})
	}
}

func TestTypeConverterFromDocuments(t *testing.T) {
	reg := newPopulated(t)
	tc, err := openapi.NewTypeConverter(openAPIClient(t, reg), false)
	if err != nil {
		t.Fatal(err)
	}
	valid := []map[string]any{
		{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w", "namespace": "default", "labels": map[string]any{"a": "b"}},
			"spec": map[string]any{"size": int64(3), "color": "red"}, "status": map[string]any{"ready": true}},
		{"apiVersion": "example.com/v1beta1", "kind": "WidgetList", "metadata": map[string]any{"resourceVersion": "7"},
			"items": []any{map[string]any{"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": map[string]any{"name": "w"}}}},
		{"apiVersion": "tools.example.org/v1", "kind": "Gizmo", "metadata": map[string]any{"name": "g"}, "anything": map[string]any{"goes": int64(1)}},
		{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "ns"}, "spec": map[string]any{"finalizers": []any{"kubernetes"}},
			"status": map[string]any{"phase": "Active"}},
		{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": map[string]any{"name": "widgets.example.com"},
			"spec": widgetCRD()["spec"]},
	}
	for _, obj := range valid {
		if _, err := tc.ObjectToTyped(&unstructured.Unstructured{Object: obj}); err != nil {
			t.Errorf("%v %v: %v", obj["apiVersion"], obj["kind"], err)
		}
	}
	unknown := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w"},
		"spec": map[string]any{"size": int64(3), "bogus": true},
	}}
	if _, err := tc.ObjectToTyped(unknown); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown field accepted: %v", err)
	}
}

// TestOpenAPIIdenticalAcrossReplicas checks that two registries serving the
// same CRDs (replicas, or one server before and after a restart) publish
// byte-identical documents, so the hashes clients cache by stay valid.
func TestOpenAPIIdenticalAcrossReplicas(t *testing.T) {
	a, b := newPopulated(t), newPopulated(t)
	if ia, ib := setpointdiscovery.OpenAPIIndex(a), setpointdiscovery.OpenAPIIndex(b); string(ia) != string(ib) {
		t.Fatalf("indexes differ:\n%s\n%s", ia, ib)
	}
	for _, path := range []string{"api/v1", "apis/apiextensions.k8s.io/v1", "apis/example.com/v1", "apis/tools.example.org/v1"} {
		da, _ := setpointdiscovery.OpenAPI(a, path)
		db, _ := setpointdiscovery.OpenAPI(b, path)
		if string(da) != string(db) {
			t.Errorf("%s differs between replicas", path)
		}
	}
}
