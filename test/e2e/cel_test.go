package e2e

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

// policiesGVR is the resource of the CEL tests' CRD.
var policiesGVR = schema.GroupVersionResource{Group: testGroup, Version: testVersion, Resource: "policies"}

// policyCRD has x-kubernetes-validations on spec, on spec fields and on
// status (a status subresource): a rule with a message, one with a
// messageExpression, one with fieldPath and reason, and an immutable field
// (a transition rule). specRules replaces the rules on spec when not nil.
func policyCRD(specRules apiextv1.ValidationRules) *apiextv1.CustomResourceDefinition {
	if specRules == nil {
		specRules = apiextv1.ValidationRules{
			{Rule: "!has(self.replicas) || !has(self.maxReplicas) || self.replicas <= self.maxReplicas", Message: "replicas must be <= maxReplicas"},
			{Rule: "!has(self.low) || !has(self.high) || self.low <= self.high", Message: "low must not exceed high",
				FieldPath: ".low", Reason: ptr.To(apiextv1.FieldValueForbidden)},
			{Rule: "!has(self.tier) || self.tier in ['gold', 'silver']", MessageExpression: "'tier ' + self.tier + ' is not offered'"},
		}
	}
	spec := apiextv1.JSONSchemaProps{
		Type:         "object",
		XValidations: specRules,
		Properties: map[string]apiextv1.JSONSchemaProps{
			"name": {Type: "string", MaxLength: ptr.To[int64](30),
				XValidations: apiextv1.ValidationRules{{Rule: "self == oldSelf", Message: "name is immutable"}}},
			"replicas":    {Type: "integer"},
			"maxReplicas": {Type: "integer"},
			"low":         {Type: "integer"},
			"high":        {Type: "integer"},
			"tier":        {Type: "string", MaxLength: ptr.To[int64](10)},
			"tags": {Type: "array", MaxItems: ptr.To[int64](5), Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &apiextv1.JSONSchemaProps{
				Type: "string", MaxLength: ptr.To[int64](10)}},
				XValidations: apiextv1.ValidationRules{{Rule: "self.all(t, t.lowerAscii() == t)", Message: "tags must be lower case"}}},
		},
	}
	status := apiextv1.JSONSchemaProps{
		Type:         "object",
		XValidations: apiextv1.ValidationRules{{Rule: "!has(self.ready) || self.ready >= 0", Message: "ready must not be negative", FieldPath: ".ready"}},
		Properties:   map[string]apiextv1.JSONSchemaProps{"ready": {Type: "integer"}},
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "policies." + testGroup},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: testGroup,
			Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{Plural: "policies", Singular: "policy", Kind: "Policy", ListKind: "PolicyList"},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: testVersion, Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type:       "object",
					Properties: map[string]apiextv1.JSONSchemaProps{"spec": spec, "status": status},
				}},
				Subresources: &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}
}

func policy(ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": testGroup + "/" + testVersion, "kind": "Policy", "spec": spec,
	}}
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// wantInvalid fails unless err is a 422 Invalid Status for the Policy
// name whose causes are exactly want (as "type field: message").
func wantInvalid(t *testing.T, err error, name string, want ...string) {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) || !apierrors.IsInvalid(err) || se.ErrStatus.Code != 422 {
		t.Fatalf("want 422 Invalid, got %v", err)
	}
	d := se.ErrStatus.Details
	if d == nil || d.Name != name || d.Kind != "Policy" || d.Group != testGroup {
		t.Fatalf("details %+v", d)
	}
	var got []string
	for _, c := range d.Causes {
		got = append(got, string(c.Type)+" "+c.Field+": "+c.Message)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("causes:\n got %q\nwant %q", got, want)
	}
}

// TestCELValidationRules creates, updates and patches custom resources
// whose CRD has x-kubernetes-validations, through client-go, and checks
// the 422 Status (message, causes and their field paths) Kubernetes gives.
func TestCELValidationRules(t *testing.T) {
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	installCRD(t, c, policyCRD(nil))
	createNamespace(t, c, "cel")
	cl := c.dynamic.Resource(policiesGVR).Namespace("cel")

	p := mustCreate(t, ctx, cl, policy("cel", "ok", map[string]any{"name": "first", "replicas": int64(1), "maxReplicas": int64(3), "tier": "gold"}))

	t.Run("invalid create", func(t *testing.T) {
		_, err := cl.Create(ctx, policy("cel", "bad", map[string]any{
			"replicas": int64(4), "maxReplicas": int64(3), "low": int64(5), "high": int64(1), "tier": "bronze", "tags": []any{"a", "B"},
		}), metav1.CreateOptions{})
		wantInvalid(t, err, "bad",
			`FieldValueInvalid spec: Invalid value: replicas must be <= maxReplicas`,
			`FieldValueForbidden spec.low: Forbidden: low must not exceed high`,
			`FieldValueInvalid spec: Invalid value: tier bronze is not offered`,
			`FieldValueInvalid spec.tags: Invalid value: tags must be lower case`,
		)
		if !strings.HasPrefix(err.Error(), `Policy.e2e.setpoint.dev "bad" is invalid: [spec: Invalid value: replicas must be <= maxReplicas, `) {
			t.Errorf("message %q", err.Error())
		}
		wantNotFound(t, ctx, cl, "bad")
	})
	t.Run("immutable field", func(t *testing.T) {
		changed := p.DeepCopy()
		_ = unstructured.SetNestedField(changed.Object, "second", "spec", "name")
		_, err := cl.Update(ctx, changed, metav1.UpdateOptions{})
		wantInvalid(t, err, "ok", `FieldValueInvalid spec.name: Invalid value: "second": name is immutable`)

		_, err = cl.Patch(ctx, "ok", types.MergePatchType, []byte(`{"spec":{"name":"third"}}`), metav1.PatchOptions{})
		wantInvalid(t, err, "ok", `FieldValueInvalid spec.name: Invalid value: "third": name is immutable`)

		// Other fields change; the immutable one stays.
		same := p.DeepCopy()
		_ = unstructured.SetNestedField(same.Object, int64(2), "spec", "replicas")
		got, err := cl.Update(ctx, same, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := nested[int64](t, got, "spec", "replicas"); n != 2 {
			t.Fatalf("replicas %d", n)
		}
		if n := nested[string](t, mustGet(t, ctx, cl, "ok"), "spec", "name"); n != "first" {
			t.Fatalf("name %q", n)
		}
	})
	t.Run("status subresource", func(t *testing.T) {
		_, err := cl.Patch(ctx, "ok", types.MergePatchType, []byte(`{"status":{"ready":-1}}`), metav1.PatchOptions{}, "status")
		wantInvalid(t, err, "ok", `FieldValueInvalid status.ready: Invalid value: ready must not be negative`)
		got, err := cl.Patch(ctx, "ok", types.MergePatchType, []byte(`{"status":{"ready":1}}`), metav1.PatchOptions{}, "status")
		if err != nil {
			t.Fatal(err)
		}
		if n := nested[int64](t, got, "status", "ready"); n != 1 {
			t.Fatalf("ready %d", n)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		_, err := cl.Create(ctx, policy("cel", "dry", map[string]any{"replicas": int64(9), "maxReplicas": int64(1)}), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		wantInvalid(t, err, "dry", `FieldValueInvalid spec: Invalid value: replicas must be <= maxReplicas`)
	})
}

// TestCELRatchetingWarns tightens a CRD's rules over a stored object:
// an update that leaves the failing value alone passes with a Warning
// header (as Kubernetes' ratcheting does), one that changes it gets 422.
func TestCELRatchetingWarns(t *testing.T) {
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	crd := installCRD(t, c, policyCRD(nil))
	createNamespace(t, c, "cel")
	rec := &warningRecorder{}
	cfg := s.restConfig()
	cfg.WarningHandler = rec
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl := dyn.Resource(policiesGVR).Namespace("cel")
	mustCreate(t, ctx, cl, policy("cel", "big", map[string]any{"replicas": int64(8)}))

	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].XValidations[0] = apiextv1.ValidationRule{
		Rule: "!has(self.replicas) || self.replicas < 5", Message: "replicas must be below 5"}
	if _, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Patch(ctx, "big", types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := rec.all(); !slices.Contains(w, "spec: Invalid value: replicas must be below 5") {
		t.Errorf("warnings %q", w)
	}
	_, err = cl.Patch(ctx, "big", types.MergePatchType, []byte(`{"spec":{"replicas":9}}`), metav1.PatchOptions{})
	wantInvalid(t, err, "big", `FieldValueInvalid spec: Invalid value: replicas must be below 5`)
}

// TestCELBrokenRulesRejected creates CRDs whose rules do not compile or
// cost too much: each gets 422 Invalid with the rule's field path, and
// nothing is stored.
func TestCELBrokenRulesRejected(t *testing.T) {
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	crds := c.apiext.ApiextensionsV1().CustomResourceDefinitions()
	const rulePath = "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0]"
	for _, tc := range []struct {
		name      string
		rules     apiextv1.ValidationRules
		unbounded bool
		cause     string
	}{
		{"undefined field", apiextv1.ValidationRules{{Rule: "self.replicas < self.limit"}}, false,
			`FieldValueInvalid ` + rulePath + `.rule: Invalid value: {"Rule":"self.replicas \u003c self.limit","Message":"","MessageExpression":"","Reason":null,"FieldPath":"","OptionalOldSelf":null}: ` +
				"compilation failed: ERROR: <input>:1:21: undefined field 'limit'\n | self.replicas < self.limit\n | ....................^"},
		{"not a bool", apiextv1.ValidationRules{{Rule: "self.replicas"}}, false,
			`FieldValueInvalid ` + rulePath + `.rule: Invalid value: {"Rule":"self.replicas","Message":"","MessageExpression":"","Reason":null,"FieldPath":"","OptionalOldSelf":null}: cel expression must evaluate to a bool`},
		{"too expensive", apiextv1.ValidationRules{{Rule: "self.tags.all(x, self.tags.all(y, self.tags.all(z, x + y + z != '')))"}}, true,
			"FieldValueForbidden " + rulePath + ".rule: Forbidden: estimated rule cost exceeds budget by factor of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crd := policyCRD(tc.rules)
			if tc.unbounded {
				// Without maxItems and maxLength the estimate assumes
				// the largest request.
				spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
				tags := spec.Properties["tags"]
				tags.MaxItems = nil
				tags.Items.Schema.MaxLength = nil
				spec.Properties["tags"] = tags
			}
			_, err := crds.Create(ctx, crd, metav1.CreateOptions{})
			var se *apierrors.StatusError
			if !errors.As(err, &se) || !apierrors.IsInvalid(err) {
				t.Fatalf("want 422 Invalid, got %v", err)
			}
			d := se.ErrStatus.Details
			if d == nil || d.Kind != "CustomResourceDefinition" || d.Group != "apiextensions.k8s.io" || len(d.Causes) == 0 {
				t.Fatalf("details %+v", d)
			}
			first := string(d.Causes[0].Type) + " " + d.Causes[0].Field + ": " + d.Causes[0].Message
			if !strings.HasPrefix(first, tc.cause) {
				t.Fatalf("causes %+v\nwant first starting with %q", d.Causes, tc.cause)
			}
			if _, err := crds.Get(ctx, crd.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("rejected CRD: get answered %v", err)
			}
		})
	}
}
