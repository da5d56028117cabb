package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// ruleSchema declares rules of every kind on a widget-like schema.
const ruleSchema = `{
  "type": "object",
  "x-kubernetes-validations": [
    {"rule": "self.metadata.name.startsWith('w')", "message": "name must start with w"}
  ],
  "properties": {
    "spec": {
      "type": "object",
      "x-kubernetes-validations": [
        {"rule": "!has(self.replicas) || !has(self.maxReplicas) || self.replicas <= self.maxReplicas", "message": "replicas must be <= maxReplicas"},
        {"rule": "!has(self.low) || !has(self.high) || self.low <= self.high", "message": "low must not exceed high", "fieldPath": ".low", "reason": "FieldValueForbidden"},
        {"rule": "!has(self.count) || self.count < 100", "messageExpression": "self.count >= 1000 ? 'count is far over 100' : 'count is not below 100'"},
        {"rule": "!has(oldSelf.mode) || has(self.mode)", "message": "mode cannot be unset"}
      ],
      "properties": {
        "name": {"type": "string", "maxLength": 63,
          "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "name is immutable"}]},
        "level": {"type": "integer",
          "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "message": "level may not decrease", "optionalOldSelf": true}]},
        "replicas": {"type": "integer"},
        "maxReplicas": {"type": "integer"},
        "low": {"type": "integer"},
        "high": {"type": "integer"},
        "count": {"type": "integer"},
        "mode": {"type": "string", "maxLength": 10,
          "x-kubernetes-validations": [{"rule": "self.lowerAscii() == self", "message": "mode must be lower case"}]},
        "sorted": {"type": "array", "maxItems": 10, "items": {"type": "integer"},
          "x-kubernetes-validations": [{"rule": "self.isSorted()", "message": "must be sorted"}, {"rule": "self.sum() < 100", "message": "sum must be below 100"}]},
        "tags": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 20,
          "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')", "message": "tag must be lower-case letters"}]}},
        "labels": {"type": "object", "maxProperties": 10, "additionalProperties": {"type": "string", "maxLength": 20},
          "x-kubernetes-validations": [{"rule": "self.all(k, k.size() <= 5)", "message": "label keys are at most 5 characters"}]},
        "ports": {"type": "array", "maxItems": 10, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
          "items": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 10},
            "port": {"type": "integer", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "port is immutable"}]}}}},
        "url": {"type": "string", "maxLength": 100, "x-kubernetes-validations": [{"rule": "isURL(self) && url(self).getScheme() == 'https'", "message": "must be an https URL"}]},
        "memory": {"type": "string", "maxLength": 20, "x-kubernetes-validations": [{"rule": "isQuantity(self) && quantity(self).isLessThan(quantity('1Gi'))", "message": "must be a quantity below 1Gi"}]},
        "digits": {"type": "string", "maxLength": 20, "x-kubernetes-validations": [{"rule": "self.findAll('[0-9]').size() == 2", "message": "must hold exactly two digits"}]}
      }
    }
  }
}`

// celError is one expected error as "field|type|detail".
func celErrors(errs field.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = fmt.Sprintf("%s|%s|%s", e.Field, string(e.Type), e.Detail)
	}
	return out
}

func TestCELRules(t *testing.T) {
	s := mustSchema(t, ruleSchema)
	obj := func(spec string) string {
		return `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":` + spec + `}`
	}
	cases := []struct {
		name string
		old  string // the stored object on update, "" on create
		obj  string
		want []string
	}{
		{"valid create", "", obj(`{"name":"a","replicas":1,"maxReplicas":2}`), nil},
		{"self rule on an object", "", obj(`{"replicas":3,"maxReplicas":2}`),
			[]string{"spec|FieldValueInvalid|replicas must be <= maxReplicas"}},
		{"root rule sees metadata.name", "", strings.Replace(obj(`{}`), `"w1"`, `"x1"`, 1),
			[]string{"<nil>|FieldValueInvalid|name must start with w"}},
		{"fieldPath and reason", "", obj(`{"low":5,"high":1}`),
			[]string{"spec.low|FieldValueForbidden|low must not exceed high"}},
		{"messageExpression", "", obj(`{"count":120}`),
			[]string{"spec|FieldValueInvalid|count is not below 100"}},
		{"transition rules do not run on create", "", obj(`{"name":"a","level":1}`), nil},
		{"immutable field unchanged", obj(`{"name":"a"}`), obj(`{"name":"a","replicas":1}`), nil},
		{"immutable field changed", obj(`{"name":"a"}`), obj(`{"name":"b"}`),
			[]string{"spec.name|FieldValueInvalid|name is immutable"}},
		{"transition rule skipped when the old value is absent", obj(`{}`), obj(`{"name":"b"}`), nil},
		{"transition rule on the parent", obj(`{"mode":"fast"}`), obj(`{}`),
			[]string{"spec|FieldValueInvalid|mode cannot be unset"}},
		{"optionalOldSelf on create", "", obj(`{"level":3}`), nil},
		{"optionalOldSelf on update", obj(`{"level":3}`), obj(`{"level":2}`),
			[]string{"spec.level|FieldValueInvalid|level may not decrease"}},
		{"optionalOldSelf when the old value is absent", obj(`{}`), obj(`{"level":2}`), nil},
		{"strings library", "", obj(`{"mode":"Fast"}`),
			[]string{"spec.mode|FieldValueInvalid|mode must be lower case"}},
		{"lists library", "", obj(`{"sorted":[3,1,99]}`),
			[]string{"spec.sorted|FieldValueInvalid|must be sorted", "spec.sorted|FieldValueInvalid|sum must be below 100"}},
		{"rule on list items", "", obj(`{"tags":["ok","Bad","fine","no1"]}`),
			[]string{"spec.tags[1]|FieldValueInvalid|tag must be lower-case letters", "spec.tags[3]|FieldValueInvalid|tag must be lower-case letters"}},
		{"rule on a map", "", obj(`{"labels":{"a":"1","toolong":"2"}}`),
			[]string{"spec.labels|FieldValueInvalid|label keys are at most 5 characters"}},
		{"map list items are correlated by key", obj(`{"ports":[{"name":"http","port":80},{"name":"https","port":443}]}`),
			obj(`{"ports":[{"name":"https","port":443},{"name":"http","port":8080},{"name":"new","port":1}]}`),
			[]string{"spec.ports[1].port|FieldValueInvalid|port is immutable"}},
		{"url library", "", obj(`{"url":"http://example.com"}`),
			[]string{"spec.url|FieldValueInvalid|must be an https URL"}},
		{"quantity library", "", obj(`{"memory":"2Gi"}`),
			[]string{"spec.memory|FieldValueInvalid|must be a quantity below 1Gi"}},
		{"quantity library accepts", "", obj(`{"memory":"512Mi","url":"https://example.com/x","digits":"a1b2"}`), nil},
		{"regex findAll", "", obj(`{"digits":"123"}`),
			[]string{"spec.digits|FieldValueInvalid|must hold exactly two digits"}},
		{"unchanged invalid values ratchet on update", obj(`{"replicas":3,"maxReplicas":2}`),
			strings.Replace(obj(`{"replicas":3,"maxReplicas":2}`), `"name":"w1"`, `"name":"w1","labels":{"a":"b"}`, 1), nil},
		{"changed invalid values do not ratchet", obj(`{"replicas":3,"maxReplicas":2}`), obj(`{"replicas":4,"maxReplicas":2}`),
			[]string{"spec|FieldValueInvalid|replicas must be <= maxReplicas"}},
		{"type errors block the rules", "", obj(`{"replicas":"three","maxReplicas":2}`),
			[]string{
				`spec.replicas|FieldValueTypeInvalid|spec.replicas in body must be of type integer: "string"`,
				"<nil>|FieldValueInvalid|some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var old map[string]any
			if tc.old != "" {
				old = mustObject(t, tc.old)
			}
			errs, _ := s.ValidateObject(context.Background(), mustObject(t, tc.obj), old)
			got := celErrors(errs)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// schemaWithRule is a schema whose spec.value (described by value) has
// the given rules.
func schemaWithRule(value, rules string) string {
	return `{"type":"object","properties":{"spec":{"type":"object","properties":{"value":` +
		strings.TrimSuffix(value, "}") + `,"x-kubernetes-validations":` + rules + `}}}}}`
}

// crdRuleErrors validates a CRD (validCRD's) whose schema is raw and
// returns its errors.
func crdRuleErrors(t *testing.T, raw string) field.ErrorList {
	t.Helper()
	crd := validCRD(t)
	var p apiextensionsv1.JSONSchemaProps
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatalf("unmarshal schema: %v", err)
	}
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema = &p
	crd.Spec.Versions[0].AdditionalPrinterColumns = nil
	return ValidateCRD(crd)
}

func TestCELRuleCompileErrors(t *testing.T) {
	const rulesPath = "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[value].x-kubernetes-validations[0]"
	str := `{"type":"string","maxLength":10}`
	cases := []struct {
		name   string
		schema string
		want   string // field|type|detail prefix of the only error
	}{
		{"undeclared reference", schemaWithRule(str, `[{"rule":"self == foo"}]`),
			rulesPath + ".rule|FieldValueInvalid|compilation failed: ERROR: <input>:1:9: undeclared reference to 'foo'"},
		{"not a bool", schemaWithRule(str, `[{"rule":"self + 'x'"}]`),
			rulesPath + ".rule|FieldValueInvalid|cel expression must evaluate to a bool"},
		{"type mismatch with the schema", schemaWithRule(str, `[{"rule":"self > 1"}]`),
			rulesPath + ".rule|FieldValueInvalid|compilation failed: ERROR: <input>:1:6: found no matching overload for '_>_' applied to '(string, int)'"},
		{"empty rule", schemaWithRule(str, `[{"rule":"  "}]`),
			rulesPath + ".rule|FieldValueRequired|rule is not specified"},
		{"message with a line break", schemaWithRule(str, `[{"rule":"true","message":"a\nb"}]`),
			rulesPath + ".message|FieldValueInvalid|must not contain line breaks"},
		{"multi-line rule needs a message", schemaWithRule(str, `[{"rule":"true &&\ntrue"}]`),
			rulesPath + ".message|FieldValueRequired|message must be specified if rule contains line breaks"},
		{"messageExpression not a string", schemaWithRule(str, `[{"rule":"true","messageExpression":"1"}]`),
			rulesPath + ".messageExpression|FieldValueInvalid|messageExpression must evaluate to a string"},
		{"messageExpression does not compile", schemaWithRule(str, `[{"rule":"true","messageExpression":"'a' + nope"}]`),
			rulesPath + ".messageExpression|FieldValueInvalid|messageExpression compilation failed: ERROR: <input>:1:7: undeclared reference to 'nope'"},
		{"unsupported reason", schemaWithRule(str, `[{"rule":"true","reason":"Nope"}]`),
			rulesPath + `.reason|FieldValueNotSupported|supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"`},
		{"invalid fieldPath", schemaWithRule(`{"type":"object","properties":{"a":{"type":"string"}}}`, `[{"rule":"true","fieldPath":".b"}]`),
			rulesPath + ".fieldPath|FieldValueInvalid|must be a valid path"},
		{"optionalOldSelf without oldSelf", schemaWithRule(str, `[{"rule":"true","optionalOldSelf":true}]`),
			rulesPath + ".optionalOldSelf|FieldValueInvalid|may not be set if oldSelf is not used in rule"},
		{"oldSelf in an atomic list", `{"type":"object","properties":{"spec":{"type":"object","properties":{"list":{"type":"array","maxItems":5,"items":` +
			`{"type":"string","maxLength":5,"x-kubernetes-validations":[{"rule":"self == oldSelf"}]}}}}}}`,
			"spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[list].items.x-kubernetes-validations[0].rule|FieldValueInvalid|" +
				"oldSelf cannot be used on the uncorrelatable portion of the schema within spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[list]"},
		{"rules in a junctor", `{"type":"object","properties":{"spec":{"type":"object","properties":{"a":{"type":"string"}},` +
			`"allOf":[{"x-kubernetes-validations":[{"rule":"true"}]}]}}}`,
			"spec.versions[0].schema.openAPIV3Schema.properties[spec].allOf[0].x-kubernetes-validations|FieldValueForbidden|must be empty to be structural"},
		{"estimated cost over the limit", schemaWithRule(`{"type":"array","items":{"type":"string"}}`, `[{"rule":"self.all(x, self.all(y, x == y))"}]`),
			rulesPath + ".rule|FieldValueForbidden|estimated rule cost exceeds budget by factor of more than 100x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := celErrors(crdRuleErrors(t, tc.schema))
			if len(got) == 0 || !strings.HasPrefix(got[0], tc.want) {
				t.Fatalf("errors:\n got %q\nwant one starting with %q", got, tc.want)
			}
		})
	}
}

// TestCELTotalCostLimit checks the limit on the estimated cost of all the
// rules of a schema, which names the most expensive rules.
func TestCELTotalCostLimit(t *testing.T) {
	// Each rule costs about 8% of the total limit: under the per-rule
	// limit, but fifteen of them are over the total.
	var props []string
	for i := range 15 {
		props = append(props, fmt.Sprintf(`"v%d":{"type":"array","maxItems":20000,"items":{"type":"string","maxLength":1000},`+
			`"x-kubernetes-validations":[{"rule":"self.all(x, x.contains('a'))"}]}`, i))
	}
	raw := `{"type":"object","properties":{"spec":{"type":"object","properties":{` + strings.Join(props, ",") + `}}}}`
	got := celErrors(crdRuleErrors(t, raw))
	if len(got) != 5 {
		t.Fatalf("want 4 most expensive rules and the total, got %q", got)
	}
	for _, e := range got[:4] {
		if !strings.HasSuffix(e, "|FieldValueForbidden|contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema") {
			t.Errorf("unexpected error %q", e)
		}
	}
	if want := "spec.versions[0].schema.openAPIV3Schema|FieldValueForbidden|x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of"; !strings.HasPrefix(got[4], want) {
		t.Errorf("got %q, want prefix %q", got[4], want)
	}
}

// TestCELRuntimeCostLimit evaluates a rule whose estimated cost passes but
// whose actual cost on a large value exceeds the per-call limit: it stops
// with Kubernetes' message instead of running on. The limit is lowered from
// Kubernetes' 1,000,000 so that the test is quick under the race detector.
func TestCELRuntimeCostLimit(t *testing.T) {
	var p apiextensionsv1.JSONSchemaProps
	raw := schemaWithRule(`{"type":"array","maxItems":1200,"items":{"type":"string","maxLength":3}}`,
		`[{"rule":"self.all(x, self.exists_one(y, x == y))","message":"must be unique"}]`)
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	s, errs := newSchema(&p, nil, 10_000)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	list := make([]any, 1200)
	for i := range list {
		list[i] = fmt.Sprintf("%03x", i)
	}
	obj := map[string]any{"spec": map[string]any{"value": list}}
	errs, _ = s.ValidateObject(context.Background(), obj, nil)
	want := "spec.value|FieldValueInvalid|'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: must be unique"
	if got := celErrors(errs); len(got) != 1 || got[0] != want {
		t.Fatalf("errors:\n got %q\nwant %q", got, want)
	}
	// The same value within the limit passes.
	obj["spec"] = map[string]any{"value": list[:10]}
	if errs, _ := s.ValidateObject(context.Background(), obj, nil); len(errs) > 0 {
		t.Fatalf("errors on a small value: %q", celErrors(errs))
	}
}

// TestCELRatchetingWarns updates an object whose stored spec already
// breaks a rule without changing spec: the update passes, with the
// failure as a warning, as in Kubernetes.
func TestCELRatchetingWarns(t *testing.T) {
	s := mustSchema(t, ruleSchema)
	old := mustObject(t, `{"metadata":{"name":"w1"},"spec":{"replicas":3,"maxReplicas":2}}`)
	obj := mustObject(t, `{"metadata":{"name":"w1","labels":{"a":"b"}},"spec":{"replicas":3,"maxReplicas":2}}`)
	errs, warns := s.ValidateObject(context.Background(), obj, old)
	if len(errs) > 0 {
		t.Fatalf("errors %q", celErrors(errs))
	}
	if want := "spec: Invalid value: replicas must be <= maxReplicas"; len(warns) != 1 || warns[0] != want {
		t.Fatalf("warnings %q, want %q", warns, want)
	}
}

// TestCELRulesOnCRDUpdate checks what a CRD update keeps: a version whose
// schema did not change keeps a rule over the per-rule cost limit (stored
// by an older server); a changed schema, or a new CRD, may not have one.
func TestCELRulesOnCRDUpdate(t *testing.T) {
	costly := schemaWithRule(`{"type":"array","maxItems":1000,"items":{"type":"string","maxLength":100}}`,
		`[{"rule":"self.all(x, self.exists(y, x == y))"}]`)
	const want = "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[value].x-kubernetes-validations[0].rule|FieldValueForbidden|estimated rule cost exceeds budget by factor of"
	errs := celErrors(crdRuleErrors(t, costly))
	if len(errs) != 1 || !strings.HasPrefix(errs[0], want) {
		t.Fatalf("create: errors %q, want %q", errs, want)
	}

	old := validCRD(t)
	var p apiextensionsv1.JSONSchemaProps
	if err := json.Unmarshal([]byte(costly), &p); err != nil {
		t.Fatal(err)
	}
	old.Spec.Versions[0].Schema.OpenAPIV3Schema = &p
	old.Spec.Versions[0].AdditionalPrinterColumns = nil
	old.Status.StoredVersions = []string{"v1"}
	next := old.DeepCopy()
	next.Spec.Names.ShortNames = []string{"wdg"}
	if errs := ValidateCRDUpdate(next, old); len(errs) > 0 {
		t.Fatalf("update keeping the schema: %v", errs)
	}
	next.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["value"].Items.Schema.MaxLength = ptr.To[int64](101)
	errs = celErrors(ValidateCRDUpdate(next, old))
	if len(errs) != 1 || !strings.HasPrefix(errs[0], want) {
		t.Fatalf("update changing the schema: errors %q, want %q", errs, want)
	}
}

// TestCELStoredBrokenRule serves a schema whose rule does not compile
// (as one stored by another server version could be): NewSchema accepts
// it and each write fails with Kubernetes' "rule compile error".
func TestCELStoredBrokenRule(t *testing.T) {
	s := mustSchema(t, schemaWithRule(`{"type":"string"}`, `[{"rule":"self == nope"}]`))
	errs, _ := s.ValidateObject(context.Background(), map[string]any{"spec": map[string]any{"value": "x"}}, nil)
	got := celErrors(errs)
	if len(got) != 1 || !strings.HasPrefix(got[0], "spec.value|FieldValueInvalid|rule compile error: compilation failed: ERROR: <input>:1:9: undeclared reference to 'nope'") {
		t.Fatalf("errors %q", got)
	}
}
