package e2e

import (
	"strings"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestStructuralSchemaChecks creates CRDs whose schemas Kubernetes rejects
// as not structural or inconsistent (root metadata beyond name and
// generateName, list-type and map-key extensions): each answers 422
// Invalid with Kubernetes' field and message and creates nothing; a schema
// using the extensions correctly is served.
func TestStructuralSchemaChecks(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	crds := c.apiext.ApiextensionsV1().CustomResourceDefinitions()
	root := "spec.versions[0].schema.openAPIV3Schema"
	obj := func(props map[string]apiextv1.JSONSchemaProps, required ...string) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "object", Properties: props, Required: required}
	}
	str := apiextv1.JSONSchemaProps{Type: "string"}
	mapList := func(keys []string, item apiextv1.JSONSchemaProps) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "array", XListType: ptr.To("map"), XListMapKeys: keys, Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &item}}
	}
	ports := root + ".properties[spec].properties[ports]"
	for _, tc := range []struct {
		name       string
		metadata   *apiextv1.JSONSchemaProps // root metadata schema
		ports      *apiextv1.JSONSchemaProps // spec.ports schema
		field, msg string
	}{
		{name: "MetadataLabels", metadata: ptr.To(obj(map[string]apiextv1.JSONSchemaProps{"labels": {Type: "object", AdditionalProperties: &apiextv1.JSONSchemaPropsOrBool{Schema: &str}}})),
			field: root + ".properties[metadata]", msg: "must not specify anything other than name and generateName, but metadata is implicitly specified"},
		{name: "MetadataNotObject", metadata: &str, field: root + ".properties[metadata].type", msg: "must be object"},
		{name: "MapKeyOptional", ports: ptr.To(mapList([]string{"name"}, obj(map[string]apiextv1.JSONSchemaProps{"name": str}))),
			field: ports + ".items.properties[name].default", msg: "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"},
		{name: "MapKeyMissing", ports: ptr.To(mapList([]string{"port"}, obj(map[string]apiextv1.JSONSchemaProps{"name": str}, "name"))),
			field: ports + ".x-kubernetes-list-map-keys", msg: "entries must all be names of item properties"},
		{name: "MapOfStrings", ports: ptr.To(mapList([]string{"name"}, str)),
			field: ports + ".items.type", msg: "must be object if parent array's x-kubernetes-list-type is map"},
		{name: "MapWithoutKeys", ports: ptr.To(mapList(nil, obj(map[string]apiextv1.JSONSchemaProps{"name": str}, "name"))),
			field: ports + ".x-kubernetes-list-map-keys", msg: "must not be empty if x-kubernetes-list-type is map"},
		{name: "SetOfGranularObjects", ports: &apiextv1.JSONSchemaProps{Type: "array", XListType: ptr.To("set"), Items: &apiextv1.JSONSchemaPropsOrArray{Schema: ptr.To(obj(map[string]apiextv1.JSONSchemaProps{"name": str}))}},
			field: ports + ".items.x-kubernetes-map-type", msg: "must be atomic as item of a list with x-kubernetes-list-type=set"},
		{name: "ListTypeOnString", ports: &apiextv1.JSONSchemaProps{Type: "string", XListType: ptr.To("set")},
			field: ports + ".type", msg: "must be array if x-kubernetes-list-type is specified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crd := widgetCRD()
			crd.Spec.Group = strings.ToLower(tc.name) + "." + testGroup
			crd.Name = "widgets." + crd.Spec.Group
			schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
			if tc.metadata != nil {
				schema.Properties["metadata"] = *tc.metadata
			}
			if tc.ports != nil {
				schema.Properties["spec"].Properties["ports"] = *tc.ports
			}
			_, err := crds.Create(ctx, crd, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) || !hasCause(err, tc.field) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want 422 on %s: %s", err, tc.field, tc.msg)
			}
			if _, err := crds.Get(ctx, crd.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the rejected CRD exists: %v", err)
			}
		})
	}

	// What controller-gen writes: metadata {type: object}, a map list keyed
	// on a required name with a defaulted port, a set of strings.
	crd := widgetCRD()
	schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	schema.Properties["metadata"] = apiextv1.JSONSchemaProps{Type: "object"}
	schema.Properties["spec"].Properties["ports"] = mapList([]string{"name", "port"}, obj(map[string]apiextv1.JSONSchemaProps{
		"name": str, "port": {Type: "integer", Default: &apiextv1.JSON{Raw: []byte("80")}}}, "name"))
	schema.Properties["spec"].Properties["hosts"] = apiextv1.JSONSchemaProps{Type: "array", XListType: ptr.To("set"), Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &str}}
	installCRD(t, c, crd)
	createNamespace(t, c, "st")
	spec := validSpec()
	spec["ports"] = []any{map[string]any{"name": "http"}}
	spec["hosts"] = []any{"a", "b"}
	got := mustCreate(t, ctx, c.widgets("st"), widget("st", "w", nil, spec))
	if p := nested[[]any](t, got, "spec", "ports"); len(p) != 1 || p[0].(map[string]any)["port"] != int64(80) {
		t.Errorf("ports %v, want the defaulted port 80", p)
	}
}
