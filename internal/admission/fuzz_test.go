package admission

import (
	"encoding/json"
	"slices"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FuzzValidate runs random documents through Prune, Default and Validate
// against a realistic schema: nothing panics, and a second round prunes
// nothing and changes nothing.
func FuzzValidate(f *testing.F) {
	s := mustSchema(f, widgetSchema)
	for _, seed := range []string{
		`{"spec":{"image":"a"}}`,
		`{"spec":{"image":"a","replicas":null,"note":null,"ports":[{"x":1},null,3]}}`,
		`{"spec":{"labels":{"a":1},"tags":["a","a"],"port":1.5,"choice":{"a":"1","b":"2"}},"status":[]}`,
		`{"apiVersion":"v1","kind":"K","metadata":{"name":"x"},"spec":{"template":{"spec":{}},"extra":{"q":[{}]}},"zzz":{}}`,
		`{"spec":"x"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		v, err := decodeJSON([]byte(doc))
		if err != nil {
			return
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		s.Prune(obj)
		s.Default(obj)
		first := s.Validate(obj)
		before, err := json.Marshal(obj)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if again := s.Prune(obj); len(again) > 0 {
			t.Fatalf("second Prune removed %v", again)
		}
		s.Default(obj)
		after, err := json.Marshal(obj)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if string(before) != string(after) {
			t.Fatalf("second round changed the object:\n%s\n%s", before, after)
		}
		second := s.Validate(obj)
		if !slices.EqualFunc(first, second, func(a, b *field.Error) bool { return a.Error() == b.Error() }) {
			t.Fatalf("Validate not stable: %v then %v", first, second)
		}
	})
}

// FuzzNewSchema compiles random schemas; an accepted schema must handle
// Prune, Default and Validate of a few documents without panicking.
func FuzzNewSchema(f *testing.F) {
	f.Add(widgetSchema, `{"spec":{"image":"a"}}`)
	f.Add(`{"type":"object","properties":{"a":{"x-kubernetes-int-or-string":true,"anyOf":[{"type":"integer"},{"type":"string"}]}}}`, `{"a":"x"}`)
	f.Add(`{"type":"object","x-kubernetes-preserve-unknown-fields":true,"properties":{"a":{"type":"array","items":{"type":"number","multipleOf":0.1}}}}`, `{"a":[0.3]}`)
	f.Add(`{"type":"object","properties":{"a":{"type":"object","additionalProperties":{"type":"string","default":"x"},"not":{"minProperties":3}}}}`, `{"a":{"b":null}}`)
	f.Fuzz(func(t *testing.T, schema, doc string) {
		var p apiextensionsv1.JSONSchemaProps
		if err := json.Unmarshal([]byte(schema), &p); err != nil {
			return
		}
		s, errs := NewSchema(&p, field.NewPath("openAPIV3Schema"))
		if len(errs) > 0 {
			return
		}
		v, err := decodeJSON([]byte(doc))
		if err != nil {
			return
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		s.Prune(obj)
		s.Default(obj)
		s.Validate(obj)
	})
}

// FuzzCELRules evaluates the rules of ruleSchema on random pairs of new
// and old documents: whatever their shape, evaluation ends without a
// panic, and a document that passes passes again against itself.
func FuzzCELRules(f *testing.F) {
	s := mustSchema(f, ruleSchema)
	for _, seed := range [][2]string{
		{`{"metadata":{"name":"w"},"spec":{"replicas":3,"maxReplicas":2}}`, ``},
		{`{"metadata":{"name":"w"},"spec":{"name":"a","level":1}}`, `{"metadata":{"name":"w"},"spec":{"name":"b","level":2}}`},
		{`{"spec":{"ports":[{"name":"a","port":1},{"name":"a"}],"labels":{"x":1}}}`, `{"spec":{"ports":[{"name":"a","port":2}]}}`},
		{`{"spec":{"sorted":[1.5,"x",null],"memory":"1Gi","url":"::"}}`, `{"spec":[]}`},
	} {
		f.Add(seed[0], seed[1])
	}
	decode := func(doc string) map[string]any {
		v, err := decodeJSON([]byte(doc))
		if err != nil {
			return nil
		}
		m, _ := v.(map[string]any)
		return m
	}
	f.Fuzz(func(t *testing.T, doc, oldDoc string) {
		obj := decode(doc)
		if obj == nil {
			return
		}
		old := decode(oldDoc)
		errs, _ := s.ValidateObject(t.Context(), obj, old)
		if len(errs) == 0 {
			if again, _ := s.ValidateObject(t.Context(), obj, deepCopy(obj).(map[string]any)); len(again) > 0 {
				t.Fatalf("%s passes on create or against %s but not against itself: %v", doc, oldDoc, again)
			}
		}
	})
}
