package admission

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// widgetSchema is a realistic CRD schema exercising most keywords.
const widgetSchema = `{
  "type": "object",
  "properties": {
    "spec": {
      "type": "object",
      "required": ["image"],
      "properties": {
        "image": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[a-z]*$"},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
        "ratio": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "multipleOf": 0.5},
        "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
        "enabled": {"type": "boolean"},
        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "since": {"type": "string", "format": "date-time"},
        "note": {"type": "string", "nullable": true, "default": "none"},
        "tags": {"type": "array", "maxItems": 3, "minItems": 1, "uniqueItems": true, "items": {"type": "string"}},
        "labels": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}},
        "ports": {"type": "array", "items": {"type": "object", "properties": {
          "name": {"type": "string"}, "protocol": {"type": "string", "default": "TCP"}}}},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
        "choice": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
          "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        "notEmpty": {"type": "string", "not": {"enum": [""]}},
        "anyPort": {"type": "string", "anyOf": [{"pattern": "^[0-9]+$"}, {"enum": ["http", "https"]}]}
      }
    },
    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
  }
}`

func mustSchema(t testing.TB, raw string) *Schema {
	t.Helper()
	var p apiextensionsv1.JSONSchemaProps
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatalf("unmarshal schema: %v", err)
	}
	s, errs := NewSchema(&p, field.NewPath("spec", "versions").Index(0).Child("schema", "openAPIV3Schema"))
	if len(errs) > 0 {
		t.Fatalf("NewSchema: %v", errs)
	}
	return s
}

func mustObject(t testing.TB, raw string) map[string]any {
	t.Helper()
	v, err := decodeJSON([]byte(raw))
	if err != nil {
		t.Fatalf("decode object: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("object %s is not a JSON object", raw)
	}
	return m
}

func TestValidate(t *testing.T) {
	s := mustSchema(t, widgetSchema)
	cases := []struct {
		name   string
		spec   string
		field  string
		typ    field.ErrorType
		detail string
	}{
		{"valid", `{"image":"nginx"}`, "", "", ""},
		{"required", `{}`, "spec.image", field.ErrorTypeRequired, ""},
		{"type", `{"image":"a","replicas":"x"}`, "spec.replicas", field.ErrorTypeTypeInvalid, `spec.replicas in body must be of type integer: "string"`},
		{"integerFromFloat", `{"image":"a","replicas":1.5}`, "spec.replicas", field.ErrorTypeTypeInvalid, `spec.replicas in body must be of type integer: "number"`},
		{"null", `{"image":"a","enabled":null}`, "spec.enabled", field.ErrorTypeTypeInvalid, `spec.enabled in body must be of type boolean: "null"`},
		{"nullable", `{"image":"a","note":null}`, "", "", ""},
		{"maximum", `{"image":"a","replicas":11}`, "spec.replicas", field.ErrorTypeInvalid, "spec.replicas in body should be less than or equal to 10"},
		{"minimum", `{"image":"a","replicas":-1}`, "spec.replicas", field.ErrorTypeInvalid, "spec.replicas in body should be greater than or equal to 0"},
		{"exclusiveMinimum", `{"image":"a","ratio":0}`, "spec.ratio", field.ErrorTypeInvalid, "spec.ratio in body should be greater than 0"},
		{"multipleOf", `{"image":"a","ratio":0.7}`, "spec.ratio", field.ErrorTypeInvalid, "spec.ratio in body should be a multiple of 0.5"},
		{"enum", `{"image":"a","mode":"medium"}`, "spec.mode", field.ErrorTypeNotSupported, `supported values: "fast", "slow"`},
		{"pattern", `{"image":"A1"}`, "spec.image", field.ErrorTypeInvalid, "spec.image in body should match '^[a-z]*$'"},
		{"maxLength", `{"image":"abcdefghijklmnopqrstuvwxyz"}`, "spec.image", field.ErrorTypeTooLong, "may not be more than 20 bytes"},
		{"minLength", `{"image":""}`, "spec.image", field.ErrorTypeInvalid, "spec.image in body should be at least 1 chars long"},
		{"format", `{"image":"a","since":"yesterday"}`, "spec.since", field.ErrorTypeInvalid, `spec.since in body must be of type date-time: "yesterday"`},
		{"formatValid", `{"image":"a","since":"2024-01-02T03:04:05Z"}`, "", "", ""},
		{"intOrStringInt", `{"image":"a","port":80}`, "", "", ""},
		{"intOrStringString", `{"image":"a","port":"http"}`, "", "", ""},
		{"intOrStringBool", `{"image":"a","port":true}`, "spec.port", field.ErrorTypeTypeInvalid, `spec.port in body must be of type integer or string: "boolean"`},
		{"maxItems", `{"image":"a","tags":["a","b","c","d"]}`, "spec.tags", field.ErrorTypeTooMany, "must have at most 3 items"},
		{"minItems", `{"image":"a","tags":[]}`, "spec.tags", field.ErrorTypeInvalid, "spec.tags in body should have at least 1 items"},
		{"uniqueItems", `{"image":"a","tags":["a","a"]}`, "spec.tags[1]", field.ErrorTypeDuplicate, ""},
		{"items", `{"image":"a","tags":["a",1]}`, "spec.tags[1]", field.ErrorTypeTypeInvalid, ""},
		{"additionalProperties", `{"image":"a","labels":{"x":1}}`, "spec.labels.x", field.ErrorTypeTypeInvalid, ""},
		{"maxProperties", `{"image":"a","labels":{"x":"1","y":"2","z":"3"}}`, "spec.labels", field.ErrorTypeTooMany, ""},
		{"arrayOfObjects", `{"image":"a","ports":[{"name":1}]}`, "spec.ports[0].name", field.ErrorTypeTypeInvalid, ""},
		{"preserveUnknown", `{"image":"a","extra":{"anything":[1,2]}}`, "", "", ""},
		{"embeddedResource", `{"image":"a","template":{"kind":"Pod"}}`, "spec.template.apiVersion", field.ErrorTypeRequired, ""},
		{"oneOfNone", `{"image":"a","choice":{}}`, "spec.choice", field.ErrorTypeInvalid, `"spec.choice" must validate one and only one schema (oneOf). Found 0 valid alternatives`},
		{"oneOfBoth", `{"image":"a","choice":{"a":"x","b":"y"}}`, "spec.choice", field.ErrorTypeInvalid, "must validate one and only one schema (oneOf)"},
		{"oneOfOne", `{"image":"a","choice":{"a":"x"}}`, "", "", ""},
		{"not", `{"image":"a","notEmpty":""}`, "spec.notEmpty", field.ErrorTypeInvalid, `"spec.notEmpty" must not validate the schema (not)`},
		{"anyOf", `{"image":"a","port":"x","anyPort":"x"}`, "spec.anyPort", field.ErrorTypeInvalid, `"spec.anyPort" must validate at least one schema (anyOf)`},
		{"objectType", `"x"`, "spec", field.ErrorTypeTypeInvalid, `spec in body must be of type object: "string"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := mustObject(t, `{"apiVersion":"v1","kind":"Widget","spec":`+tc.spec+`}`)
			errs := s.Validate(obj)
			if tc.field == "" {
				if len(errs) != 0 {
					t.Fatalf("Validate = %v, want no errors", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("Validate = %v, want exactly one error", errs)
			}
			e := errs[0]
			if e.Field != tc.field || e.Type != tc.typ {
				t.Errorf("error at %s of type %s, want %s of type %s (%v)", e.Field, e.Type, tc.field, tc.typ, e)
			}
			if !strings.Contains(e.Error(), tc.detail) {
				t.Errorf("error %q does not contain %q", e.Error(), tc.detail)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	s := mustSchema(t, widgetSchema)
	obj := mustObject(t, `{"apiVersion":"v1","kind":"Widget","metadata":{"name":"a","x":1},"top":1,
		"spec":{"image":"a","foo":1,"ports":[{"name":"a","bar":2}],"labels":{"k":"v"},
		"extra":{"kept":true},"template":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{}}},
		"status":{"ready":true,"phase":"x"}}`)
	got := s.Prune(obj)
	slices.Sort(got)
	want := []string{"spec.foo", "spec.ports[0].bar", "status.phase", "top"}
	if !slices.Equal(got, want) {
		t.Fatalf("Prune = %v, want %v", got, want)
	}
	if again := s.Prune(obj); len(again) != 0 {
		t.Errorf("second Prune = %v, want nothing", again)
	}
	spec := obj["spec"].(map[string]any)
	if _, ok := spec["extra"].(map[string]any)["kept"]; !ok {
		t.Error("Prune dropped a field under x-kubernetes-preserve-unknown-fields")
	}
	if _, ok := obj["metadata"].(map[string]any)["x"]; !ok {
		t.Error("Prune touched metadata at the root")
	}
}

func TestDefault(t *testing.T) {
	s := mustSchema(t, widgetSchema)
	obj := mustObject(t, `{"spec":{"image":"a","note":null,"enabled":null,"ports":[{"name":"a"},{"protocol":"UDP"}]}}`)
	s.Default(obj)
	spec := obj["spec"].(map[string]any)
	if spec["replicas"] != int64(1) || spec["mode"] != "fast" {
		t.Errorf("defaults not applied: %v", spec)
	}
	if v, ok := spec["note"]; !ok || v != nil {
		t.Errorf("nullable null replaced: note = %v", v)
	}
	if _, ok := spec["enabled"]; ok {
		t.Error("null in a non-nullable field without default was kept")
	}
	ports := spec["ports"].([]any)
	if ports[0].(map[string]any)["protocol"] != "TCP" || ports[1].(map[string]any)["protocol"] != "UDP" {
		t.Errorf("item defaults wrong: %v", ports)
	}
	if errs := s.Validate(obj); len(errs) > 0 {
		t.Errorf("defaulted object invalid: %v", errs)
	}
}

func TestDefaultNotShared(t *testing.T) {
	s := mustSchema(t, `{"type":"object","properties":{"spec":{"type":"object","properties":{
		"cfg":{"type":"object","default":{"a":[1]},"properties":{"a":{"type":"array","items":{"type":"integer"}}}}}}}}`)
	a, b := mustObject(t, `{"spec":{}}`), mustObject(t, `{"spec":{}}`)
	s.Default(a)
	s.Default(b)
	a["spec"].(map[string]any)["cfg"].(map[string]any)["a"].([]any)[0] = int64(7)
	if got := b["spec"].(map[string]any)["cfg"].(map[string]any)["a"].([]any)[0]; got != int64(1) {
		t.Fatalf("default shared between objects: second object sees %v", got)
	}
}

func TestDefaultNullNotNullable(t *testing.T) {
	s := mustSchema(t, widgetSchema)
	obj := mustObject(t, `{"spec":{"image":"a","replicas":null}}`)
	s.Default(obj)
	if got := obj["spec"].(map[string]any)["replicas"]; got != int64(1) {
		t.Fatalf("replicas = %v, want the default 1 for a null non-nullable field", got)
	}
}

func TestNewSchemaRejects(t *testing.T) {
	cases := []struct {
		name   string
		schema string
		field  string
		typ    field.ErrorType
	}{
		{"rootNotObject", `{"type":"string"}`, "root.type", field.ErrorTypeInvalid},
		{"rootDefault", `{"type":"object","default":{}}`, "root.default", field.ErrorTypeForbidden},
		{"missingType", `{"type":"object","properties":{"a":{}}}`, "root.properties[a].type", field.ErrorTypeRequired},
		{"unknownType", `{"type":"object","properties":{"a":{"type":"float"}}}`, "root.properties[a].type", field.ErrorTypeNotSupported},
		{"ref", `{"type":"object","properties":{"a":{"type":"string","$ref":"#/x"}}}`, "root.properties[a].$ref", field.ErrorTypeForbidden},
		{"arrayWithoutItems", `{"type":"object","properties":{"a":{"type":"array"}}}`, "root.properties[a].items", field.ErrorTypeRequired},
		{"itemsOnString", `{"type":"object","properties":{"a":{"type":"string","items":{"type":"string"}}}}`, "root.properties[a].items", field.ErrorTypeForbidden},
		{"propertiesOnString", `{"type":"object","properties":{"a":{"type":"string","properties":{"b":{"type":"string"}}}}}`, "root.properties[a].properties", field.ErrorTypeForbidden},
		{"additionalWithProperties", `{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"string"}},"additionalProperties":{"type":"string"}}}}`, "root.properties[a].additionalProperties", field.ErrorTypeForbidden},
		{"additionalFalse", `{"type":"object","properties":{"a":{"type":"object","additionalProperties":false}}}`, "root.properties[a].additionalProperties", field.ErrorTypeForbidden},
		{"preserveFalse", `{"type":"object","properties":{"a":{"type":"object","x-kubernetes-preserve-unknown-fields":false}}}`, "root.properties[a].x-kubernetes-preserve-unknown-fields", field.ErrorTypeInvalid},
		{"intOrStringWithType", `{"type":"object","properties":{"a":{"type":"string","x-kubernetes-int-or-string":true}}}`, "root.properties[a].type", field.ErrorTypeInvalid},
		{"embeddedNotObject", `{"type":"object","properties":{"a":{"type":"string","x-kubernetes-embedded-resource":true}}}`, "root.properties[a].type", field.ErrorTypeInvalid},
		{"typeInAllOf", `{"type":"object","properties":{"a":{"type":"string","allOf":[{"type":"string"}]}}}`, "root.properties[a].allOf[0].type", field.ErrorTypeForbidden},
		{"defaultInAnyOf", `{"type":"object","properties":{"a":{"type":"string","anyOf":[{"default":"x"}]}}}`, "root.properties[a].anyOf[0].default", field.ErrorTypeForbidden},
		{"junctorUnknownProperty", `{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"string"}},"oneOf":[{"properties":{"c":{}}}]}}}`, "root.properties[a].oneOf[0].properties[c]", field.ErrorTypeForbidden},
		{"badPattern", `{"type":"object","properties":{"a":{"type":"string","pattern":"("}}}`, "root.properties[a].pattern", field.ErrorTypeInvalid},
		{"defaultWrongType", `{"type":"object","properties":{"a":{"type":"integer","default":"x"}}}`, "root.properties[a].default", field.ErrorTypeTypeInvalid},
		{"defaultViolatesMaximum", `{"type":"object","properties":{"a":{"type":"integer","maximum":3,"default":5}}}`, "root.properties[a].default", field.ErrorTypeInvalid},
		{"defaultUnknownField", `{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"string"}},"default":{"c":"x"}}}}`, "root.properties[a].default", field.ErrorTypeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p apiextensionsv1.JSONSchemaProps
			if err := json.Unmarshal([]byte(tc.schema), &p); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			_, errs := NewSchema(&p, field.NewPath("root"))
			if len(errs) != 1 {
				t.Fatalf("NewSchema errors = %v, want exactly one", errs)
			}
			if errs[0].Field != tc.field || errs[0].Type != tc.typ {
				t.Errorf("error %v, want %s at %s", errs[0], tc.typ, tc.field)
			}
		})
	}
}

func TestNewSchemaAcceptsIntOrStringIdiom(t *testing.T) {
	mustSchema(t, `{"type":"object","properties":{"p":{"x-kubernetes-int-or-string":true,"allOf":[{"anyOf":[{"type":"integer"},{"type":"string"}]}]}}}`)
}

// benchWidget is a 0.6 KiB widget that satisfies widgetSchema.
const benchWidget = `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"image":"nginx","replicas":3,"ratio":1.5,
		"mode":"slow","enabled":true,"port":"http","since":"2024-01-02T03:04:05Z","note":"hello","tags":["a","b","c"],
		"labels":{"x":"1","y":"2"},"ports":[{"name":"http","protocol":"TCP"},{"name":"https","protocol":"TCP"},{"name":"dns","protocol":"UDP"}],
		"extra":{"free":"form","numbers":[1,2,3,4,5,6,7,8]},"template":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx:1.27"}]}},
		"choice":{"a":"x"},"notEmpty":"yes"},"status":{"ready":true}}`

func BenchmarkValidate(b *testing.B) {
	s := mustSchema(b, widgetSchema)
	obj := mustObject(b, benchWidget)
	b.SetBytes(int64(len(benchWidget)))
	b.ReportAllocs()
	for b.Loop() {
		if errs := s.Validate(obj); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkAdmit measures the registry's path: prune, default and validate
// a fresh copy of the object.
func BenchmarkAdmit(b *testing.B) {
	s := mustSchema(b, widgetSchema)
	obj := mustObject(b, benchWidget)
	b.SetBytes(int64(len(benchWidget)))
	b.ReportAllocs()
	for b.Loop() {
		o := deepCopy(obj).(map[string]any)
		s.Prune(o)
		s.Default(o)
		if errs := s.Validate(o); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}
