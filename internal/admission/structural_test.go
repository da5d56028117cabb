package admission

import (
	"encoding/json"
	"fmt"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestSchemaExtras(t *testing.T) {
	root := "spec.versions[0].schema.openAPIV3Schema"
	list := root + ".properties[spec].properties[list]"
	// spec.list is the schema under test, unless a case replaces the root.
	cases := []struct {
		name string
		list string // the schema of spec.list
		root string // the whole root schema, when set
		want []string
	}{
		{name: "mapList", list: `{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name","port"],
			"items":{"type":"object","required":["name"],"properties":{"name":{"type":"string"},"port":{"type":"integer","default":80}}}}`},
		{name: "setOfScalars", list: `{"type":"array","x-kubernetes-list-type":"set","items":{"type":"string"}}`},
		{name: "setOfAtomicMaps", list: `{"type":"array","x-kubernetes-list-type":"set","items":{"type":"object","x-kubernetes-map-type":"atomic","properties":{"a":{"type":"string"}}}}`},
		{name: "atomic", list: `{"type":"array","x-kubernetes-list-type":"atomic","items":{"type":"object","properties":{"a":{"type":"string"}}}}`},
		{name: "mapKeyNotRequired", list: `{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],
			"items":{"type":"object","properties":{"name":{"type":"string"}}}}`,
			want: []string{list + ".items.properties[name].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"}},
		{name: "mapKeyNullable", list: `{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],
			"items":{"type":"object","required":["name"],"properties":{"name":{"type":"string","nullable":true}}}}`,
			want: []string{list + ".items.properties[name].nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it cannot be nullable"}},
		{name: "mapKeyNotScalar", list: `{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],
			"items":{"type":"object","required":["name"],"properties":{"name":{"type":"object","properties":{"a":{"type":"string"}}}}}}`,
			want: []string{list + `.items.properties[name].type: Invalid value: "object": must be a scalar type if parent array's x-kubernetes-list-type is map`}},
		{name: "mapKeyUnknown", list: `{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["nope"],
			"items":{"type":"object","properties":{"name":{"type":"string"}}}}`,
			want: []string{list + `.x-kubernetes-list-map-keys: Invalid value: ["nope"]: entries must all be names of item properties`}},
		{name: "mapKeyDuplicate", list: `{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name","name"],
			"items":{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}}`,
			want: []string{list + `.x-kubernetes-list-map-keys: Invalid value: ["name","name"]: must not contain duplicate entries`}},
		{name: "mapWithoutKeys", list: `{"type":"array","x-kubernetes-list-type":"map","items":{"type":"object","properties":{"name":{"type":"string"}}}}`,
			want: []string{list + ".x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"}},
		{name: "mapOfScalars", list: `{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],"items":{"type":"string"}}`,
			want: []string{list + `.items.type: Invalid value: "string": must be object if parent array's x-kubernetes-list-type is map`}},
		{name: "keysWithoutMap", list: `{"type":"array","x-kubernetes-list-map-keys":["name"],"items":{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}}`,
			want: []string{list + ".x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"}},
		{name: "keysWithSet", list: `{"type":"array","x-kubernetes-list-type":"set","x-kubernetes-list-map-keys":["name"],"items":{"type":"string"}}`,
			want: []string{list + `.x-kubernetes-list-type: Invalid value: "set": must be map if x-kubernetes-list-map-keys is non-empty`}},
		{name: "unknownListType", list: `{"type":"array","x-kubernetes-list-type":"bag","items":{"type":"string"}}`,
			want: []string{list + `.x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map"`}},
		{name: "listTypeOnObject", list: `{"type":"object","x-kubernetes-list-type":"set","properties":{"a":{"type":"string"}}}`,
			want: []string{list + `.type: Invalid value: "object": must be array if x-kubernetes-list-type is specified`}},
		{name: "setOfGranularMaps", list: `{"type":"array","x-kubernetes-list-type":"set","items":{"type":"object","properties":{"a":{"type":"string"}}}}`,
			want: []string{list + `.items.x-kubernetes-map-type: Invalid value: null: must be atomic as item of a list with x-kubernetes-list-type=set`}},
		{name: "setOfSets", list: `{"type":"array","x-kubernetes-list-type":"set","items":{"type":"array","x-kubernetes-list-type":"set","items":{"type":"string"}}}`,
			want: []string{list + `.items.x-kubernetes-list-type: Invalid value: "set": must be atomic as item of a list with x-kubernetes-list-type=set`}},
		{name: "setNullableItems", list: `{"type":"array","x-kubernetes-list-type":"set","items":{"type":"string","nullable":true}}`,
			want: []string{list + ".items.nullable: Forbidden: cannot be nullable when x-kubernetes-list-type is set"}},
		{name: "mapTypeOnArray", list: `{"type":"array","x-kubernetes-map-type":"atomic","items":{"type":"string"}}`,
			want: []string{list + `.type: Invalid value: "array": must be object if x-kubernetes-map-type is specified`}},
		{name: "unknownMapType", list: `{"type":"object","x-kubernetes-map-type":"loose","properties":{"a":{"type":"string"}}}`,
			want: []string{list + `.x-kubernetes-map-type: Unsupported value: "loose": supported values: "atomic", "granular"`}},
		{name: "metadataNameOnly", root: `{"type":"object","properties":{"metadata":{"type":"object","properties":{"name":{"type":"string","maxLength":20},"generateName":{"type":"string"}}}}}`},
		{name: "metadataPlain", root: `{"type":"object","properties":{"metadata":{"type":"object"}}}`},
		{name: "metadataLabels", root: `{"type":"object","properties":{"metadata":{"type":"object","properties":{"labels":{"type":"object","additionalProperties":{"type":"string"}}}}}}`,
			want: []string{root + ".properties[metadata]: Forbidden: " + metadataMessage}},
		{name: "metadataRequired", root: `{"type":"object","properties":{"metadata":{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}}}`,
			want: []string{root + ".properties[metadata]: Forbidden: " + metadataMessage}},
		{name: "metadataNotObject", root: `{"type":"object","properties":{"metadata":{"type":"string"}}}`,
			want: []string{root + `.properties[metadata].type: Invalid value: "string": must be object`}},
		{name: "kindNotString", root: `{"type":"object","properties":{"kind":{"type":"integer"}}}`,
			want: []string{root + `.properties[kind].type: Invalid value: "integer": must be string`}},
		{name: "nestedMetadataFree", root: `{"type":"object","properties":{"spec":{"type":"object","properties":{"metadata":{"type":"object","properties":{"labels":{"type":"string"}}}}}}}`},
		{name: "embeddedApiVersion", root: `{"type":"object","properties":{"spec":{"type":"object","properties":{"template":{"type":"object","x-kubernetes-embedded-resource":true,
			"x-kubernetes-preserve-unknown-fields":true,"properties":{"apiVersion":{"type":"boolean"}}}}}}}`,
			want: []string{root + `.properties[spec].properties[template].properties[apiVersion].type: Invalid value: "boolean": must be string`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.root
			if raw == "" {
				raw = `{"type":"object","properties":{"spec":{"type":"object","properties":{"list":` + tc.list + `}}}}`
			}
			var props apiextensionsv1.JSONSchemaProps
			if err := json.Unmarshal([]byte(raw), &props); err != nil {
				t.Fatal(err)
			}
			crd := validCRD(t)
			crd.Spec.Versions[0].Schema.OpenAPIV3Schema = &props
			crd.Spec.Versions[0].AdditionalPrinterColumns = nil
			got := messages(ValidateCRD(crd))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("errors\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestSchemaExtrasRatchet: an update that leaves a version's schema alone
// keeps it even if today's checks reject it.
func TestSchemaExtrasRatchet(t *testing.T) {
	old := validCRD(t)
	old.Status.StoredVersions = []string{"v1"}
	old.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["metadata"] = apiextensionsv1.JSONSchemaProps{Type: "object", MaxProperties: new(int64)}
	crd := old.DeepCopy()
	crd.Spec.Names.ShortNames = []string{"wdg"}
	if errs := ValidateCRDUpdate(crd, old); len(errs) > 0 {
		t.Fatalf("unchanged schema rejected: %v", errs)
	}
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["extra"] = apiextensionsv1.JSONSchemaProps{Type: "string"}
	errs := ValidateCRDUpdate(crd, old)
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeForbidden {
		t.Fatalf("changed schema: %v, want the metadata error", errs)
	}
}
