package e2e

import (
	"strings"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// thingsGVR is the resource of TestSchemaFeatures' CRD.
var thingsGVR = schema.GroupVersionResource{Group: testGroup, Version: testVersion, Resource: "things"}

// thingCRD uses the structural-schema features controller-gen emits:
// preserved unknown fields, int-or-string, defaults inside arrays, nullable,
// and maps through additionalProperties.
func thingCRD() *apiextv1.CustomResourceDefinition {
	spec := apiextv1.JSONSchemaProps{
		Type: "object",
		Properties: map[string]apiextv1.JSONSchemaProps{
			"free": {Type: "object", XPreserveUnknownFields: ptr.To(true)},
			"port": {XIntOrString: true, AnyOf: []apiextv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}}},
			"entries": {Type: "array", Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &apiextv1.JSONSchemaProps{
				Type: "object",
				Properties: map[string]apiextv1.JSONSchemaProps{
					"name":   {Type: "string"},
					"weight": {Type: "integer", Default: &apiextv1.JSON{Raw: []byte(`5`)}},
				},
			}}},
			"note":      {Type: "string", Nullable: true},
			"defaulted": {Type: "string", Default: &apiextv1.JSON{Raw: []byte(`"d"`)}},
			"tags":      {Type: "object", AdditionalProperties: &apiextv1.JSONSchemaPropsOrBool{Allows: true, Schema: &apiextv1.JSONSchemaProps{Type: "string"}}},
		},
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "things." + testGroup},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: testGroup,
			Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{Plural: "things", Singular: "thing", Kind: "Thing", ListKind: "ThingList"},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: testVersion, Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type:       "object",
					Properties: map[string]apiextv1.JSONSchemaProps{"spec": spec},
				}},
			}},
		},
	}
}

// TestSchemaFeatures creates objects of a CRD with preserved unknown
// fields, int-or-string, nested defaults, nullable fields and maps, and
// checks what the server prunes, defaults and rejects.
func TestSchemaFeatures(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 30*time.Second)
	installCRD(t, c, thingCRD())
	createNamespace(t, c, "schema")
	tc := c.dynamic.Resource(thingsGVR).Namespace("schema")
	thing := func(name string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": testGroup + "/" + testVersion, "kind": "Thing", "spec": spec}}
		u.SetName(name)
		return u
	}

	got := mustCreate(t, ctx, tc, thing("full", map[string]any{
		"free":      map[string]any{"anything": map[string]any{"deep": int64(1)}, "list": []any{"x"}},
		"port":      "http",
		"entries":   []any{map[string]any{"name": "a"}, map[string]any{"name": "b", "weight": int64(2)}},
		"note":      nil,
		"defaulted": nil,
		"tags":      map[string]any{"team": "e2e"},
		"unknown":   "pruned",
	}))
	spec := got.Object["spec"].(map[string]any)
	if v, _, _ := unstructured.NestedInt64(spec, "free", "anything", "deep"); v != 1 {
		t.Errorf("preserved field free.anything.deep = %v, want 1 (spec %v)", v, spec)
	}
	if spec["port"] != "http" {
		t.Errorf("int-or-string port = %v, want http", spec["port"])
	}
	entries, _ := spec["entries"].([]any)
	if len(entries) != 2 || entries[0].(map[string]any)["weight"] != int64(5) || entries[1].(map[string]any)["weight"] != int64(2) {
		t.Errorf("entries %v, want weights defaulted to 5 where missing", entries)
	}
	if v, ok := spec["note"]; !ok || v != nil {
		t.Errorf("nullable note = %v (present %v), want an explicit null", v, ok)
	}
	if spec["defaulted"] != "d" {
		t.Errorf("null for a non-nullable field with a default: got %v, want the default d", spec["defaulted"])
	}
	if v, _, _ := unstructured.NestedString(spec, "tags", "team"); v != "e2e" {
		t.Errorf("map tags = %v", spec["tags"])
	}
	if _, ok := spec["unknown"]; ok {
		t.Errorf("unknown field kept: %v", spec)
	}
	if stored := mustGet(t, ctx, tc, "full"); stored.Object["spec"].(map[string]any)["defaulted"] != "d" {
		t.Errorf("stored spec %v differs from the create answer", stored.Object["spec"])
	}

	mustCreate(t, ctx, tc, thing("numeric-port", map[string]any{"port": int64(8080)}))
	for name, bad := range map[string]map[string]any{
		"bool-port": {"port": true},
		"int-tag":   {"tags": map[string]any{"team": int64(1)}},
		"str-entry": {"entries": []any{"not-an-object"}},
	} {
		if _, err := tc.Create(ctx, thing(name, bad), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("%s: want Invalid, got %v", name, err)
		}
	}
}

// TestInvalidCRDs sends CRDs Kubernetes rejects: each must answer 422 and
// create nothing.
func TestInvalidCRDs(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 30*time.Second)
	crds := c.apiext.ApiextensionsV1().CustomResourceDefinitions()
	for name, mutate := range map[string]func(*apiextv1.CustomResourceDefinition){
		"WrongName": func(crd *apiextv1.CustomResourceDefinition) { crd.Name = "widget." + testGroup },
		"NoStorage": func(crd *apiextv1.CustomResourceDefinition) { crd.Spec.Versions[0].Storage = false },
		"TwoStorage": func(crd *apiextv1.CustomResourceDefinition) {
			crd.Spec.Versions = append(crd.Spec.Versions, crd.Spec.Versions[0])
			crd.Spec.Versions[1].Name = "v2"
		},
		"BadType": func(crd *apiextv1.CustomResourceDefinition) {
			crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = apiextv1.JSONSchemaProps{Type: "thing"}
		},
		"NoSchema": func(crd *apiextv1.CustomResourceDefinition) { crd.Spec.Versions[0].Schema = nil },
		"BadScope": func(crd *apiextv1.CustomResourceDefinition) { crd.Spec.Scope = "Galactic" },
		"BadPrinterPath": func(crd *apiextv1.CustomResourceDefinition) {
			crd.Spec.Versions[0].AdditionalPrinterColumns[0].JSONPath = "spec["
		},
		"UppercasePlural": func(crd *apiextv1.CustomResourceDefinition) {
			crd.Spec.Names.Plural = "Widgets"
			crd.Name = "Widgets." + testGroup
		},
	} {
		t.Run(name, func(t *testing.T) {
			// Each case gets its own group, so one wrongly accepted CRD
			// does not hide the others.
			crd := widgetCRD()
			crd.Spec.Group = strings.ToLower(name) + "." + testGroup
			crd.Name = "widgets." + crd.Spec.Group
			mutate(crd)
			if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
				t.Errorf("want Invalid (422), got %v", err)
			}
			if _, err := crds.Get(ctx, crd.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the rejected CRD exists: %v", err)
			}
		})
	}
}
