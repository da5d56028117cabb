package cli

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func object(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	objs, err := decodeManifests("test", []byte(s))
	if err != nil || len(objs) != 1 {
		t.Fatalf("decode %q: %v (%d objects)", s, err, len(objs))
	}
	return objs[0]
}

// live is what the server holds after applying applied, then letting
// others change it by merging extra.
func live(t *testing.T, applied, extra string) *unstructured.Unstructured {
	t.Helper()
	modified, err := withLastApplied(object(t, applied))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(modified, &m); err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{Object: m}
	spec, _, _ := unstructured.NestedMap(m, "spec")
	var more map[string]any
	if err := json.Unmarshal([]byte(extra), &more); err != nil {
		t.Fatal(err)
	}
	for k, v := range more {
		spec[k] = v
	}
	if err := unstructured.SetNestedMap(obj.Object, spec, "spec"); err != nil {
		t.Fatal(err)
	}
	obj.SetResourceVersion("7")
	return obj
}

func TestThreeWayPatch(t *testing.T) {
	const v1 = `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"a"},"spec":{"size":1,"color":"red"}}`
	tests := []struct {
		name, next, want string
	}{
		{"unchanged", v1, `{}`},
		{"changed_and_removed", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"a"},"spec":{"size":2}}`,
			`{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"a\"},\"spec\":{\"size\":2}}\n"}},"spec":{"color":null,"size":2}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modified, err := withLastApplied(object(t, tt.next))
			if err != nil {
				t.Fatal(err)
			}
			// owner was set by someone else and is not in the patch.
			patch, err := threeWayPatch(live(t, v1, `{"owner":"ops"}`), modified)
			if err != nil {
				t.Fatal(err)
			}
			if string(patch) != tt.want {
				t.Errorf("patch\n%s\nwant\n%s", patch, tt.want)
			}
		})
	}
	t.Run("rename_refused", func(t *testing.T) {
		modified, err := withLastApplied(object(t, `{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"a"}}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := threeWayPatch(live(t, v1, `{}`), modified); err == nil {
			t.Error("a patch that changes kind was accepted")
		}
	})
}

func TestWithLastAppliedIgnoresOldAnnotation(t *testing.T) {
	obj := object(t, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"stale","team":"a"}}}`)
	modified, err := withLastApplied(obj)
	if err != nil {
		t.Fatal(err)
	}
	var got unstructured.Unstructured
	if err := json.Unmarshal(modified, &got.Object); err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"v1","kind":"Namespace","metadata":{"annotations":{"team":"a"},"name":"x"}}` + "\n"
	if a := got.GetAnnotations()[lastAppliedAnnotation]; a != want {
		t.Errorf("last applied = %q, want %q", a, want)
	}
	if obj.GetAnnotations()[lastAppliedAnnotation] != "stale" {
		t.Error("withLastApplied changed its argument")
	}
}

func TestLoadingRules(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	f := &clientFlags{kubeconfig: "/flag"}
	if r := f.loadingRules(env(map[string]string{"KUBECONFIG": "/env"})); r.ExplicitPath != "/flag" {
		t.Errorf("--kubeconfig: rules %+v", r)
	}
	f = &clientFlags{}
	if r := f.loadingRules(env(map[string]string{"KUBECONFIG": "/a:/b"})); len(r.Precedence) != 2 || r.Precedence[0] != "/a" || r.ExplicitPath != "" {
		t.Errorf("$KUBECONFIG: rules %+v", r)
	}
}
