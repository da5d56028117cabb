package admission

import (
	"fmt"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateSelectableFields(t *testing.T) {
	p := "spec.versions[0].selectableFields"
	badType := "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."
	cases := []struct {
		name  string
		paths []string
		want  []string // "<field>: <message>" of each error, in order
	}{
		{"valid", []string{".spec.image", ".spec.replicas", ".spec.enabled", ".spec.mode", ".spec.since", ".spec.labels.team"}, nil},
		{"empty", []string{""}, []string{p + "[0].jsonPath: Required value"}},
		{"unknownField", []string{".spec.nope"}, []string{p + `[0].jsonPath: Invalid value: ".spec.nope": is an invalid path: does not refer to a valid field`}},
		{"arrayNotation", []string{".spec.tags[0]"}, []string{p + `[0].jsonPath: Invalid value: ".spec.tags[0]": is an invalid path: array notation is not allowed`}},
		{"noLeadingDot", []string{"spec.image"}, []string{p + `[0].jsonPath: Invalid value: "spec.image": is an invalid path: expected [ or . but got: spec`}},
		{"trailingDot", []string{".spec."}, []string{p + `[0].jsonPath: Invalid value: ".spec.": is an invalid path: unexpected end of JSON path`}},
		{"number", []string{".spec.ratio"}, []string{p + `[0].jsonPath: Invalid value: ".spec.ratio": ` + badType}},
		{"object", []string{".spec"}, []string{p + `[0].jsonPath: Invalid value: ".spec": ` + badType}},
		{"intOrString", []string{".spec.port"}, []string{p + `[0].jsonPath: Invalid value: ".spec.port": ` + badType}},
		{"array", []string{".spec.tags"}, []string{p + `[0].jsonPath: Invalid value: ".spec.tags": ` + badType}},
		{"metadata", []string{".metadata.name"}, []string{p + `[0].jsonPath: Invalid value: ".metadata.name": must not point to fields in metadata`}},
		{"duplicate", []string{".spec.image", ".spec.image"}, []string{p + `[1].jsonPath: Duplicate value: ".spec.image"`}},
		{"tooMany", []string{".spec.image", ".spec.replicas", ".spec.enabled", ".spec.mode", ".spec.since", ".spec.note", ".spec.notEmpty", ".spec.anyPort", ".status.ready"},
			[]string{p + ": Too many: 9: must have at most 8 items"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			crd := validCRD(t)
			v := &crd.Spec.Versions[0]
			if tc.name == "metadata" {
				v.Schema.OpenAPIV3Schema.Properties["metadata"] = apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"name": {Type: "string"}}}
			}
			for _, jp := range tc.paths {
				v.SelectableFields = append(v.SelectableFields, apiextensionsv1.SelectableField{JSONPath: jp})
			}
			got := messages(ValidateCRD(crd))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("errors\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestValidateSelectableFieldsWithoutSchema(t *testing.T) {
	crd := validCRD(t)
	v := &crd.Spec.Versions[0]
	v.SelectableFields = []apiextensionsv1.SelectableField{{JSONPath: ".spec.image"}}
	v.Schema = nil
	found := false
	for _, e := range ValidateCRD(crd) {
		found = found || e.Field == "spec.versions[0].selectableFields" && e.Type == field.ErrorTypeInvalid
	}
	if !found {
		t.Fatal("selectableFields without a schema accepted")
	}
}

func messages(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}
