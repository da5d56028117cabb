package e2e

import (
	"encoding/json"
	"maps"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestKubectlServerSideApplyKnobs applies a knob with kubectl apply
// --server-side: a repeat writes nothing, a field dropped from the
// manifest is removed while a field another manager set stays, get
// --show-managed-fields shows both managers, a server dry run changes
// nothing, and --subresource=status applies the status. A ConfigMap (a
// built-in type) drops a removed key the same way.
func TestKubectlServerSideApplyKnobs(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	manifest := func(spec string) string {
		return "apiVersion: e2e.setpoint.dev/v1\nkind: Knob\nmetadata:\n  name: s1\nspec:\n" + spec
	}
	applied := knobsResource + "/s1 serverside-applied"
	apply := func(t *testing.T, spec string, args ...string) string {
		t.Helper()
		e.write(t, "s1.yaml", manifest(spec))
		return e.kn(t, append([]string{"apply", "--server-side", "-f", "s1.yaml"}, args...)...)
	}

	wantOutput(t, apply(t, "  position: 10\n  label: volume\n  notes: slow\n"), applied)
	first := mustGet(t, t.Context(), e.knobs, "s1")
	if owners := fieldOwners(t, first); !ownsField(owners["kubectl/Apply"], "f:spec", "f:notes") {
		t.Fatalf("managedFields after kubectl apply --server-side: %v, want kubectl/Apply owning spec.notes", owners)
	}

	t.Run("repeat", func(t *testing.T) {
		wantOutput(t, apply(t, "  position: 10\n  label: volume\n  notes: slow\n"), applied)
		if got := mustGet(t, t.Context(), e.knobs, "s1"); got.GetResourceVersion() != first.GetResourceVersion() {
			t.Errorf("a repeated apply wrote the object: resourceVersion %s, was %s", got.GetResourceVersion(), first.GetResourceVersion())
		}
	})
	t.Run("remove-field", func(t *testing.T) {
		e.kn(t, "patch", "knob", "s1", "--type", "merge", "-p", `{"spec":{"limits":{"max":90}}}`, "--field-manager", "other")
		wantOutput(t, apply(t, "  position: 10\n  label: volume\n"), applied)
		got := mustGet(t, t.Context(), e.knobs, "s1")
		if _, found, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", "notes"); found {
			t.Errorf("spec.notes survived an apply that dropped it: spec %v", got.Object["spec"])
		}
		if max := nested[int64](t, got, "spec", "limits", "max"); max != 90 {
			t.Errorf("spec.limits.max %d, want 90 (owned by the other manager)", max)
		}
	})
	t.Run("show-managed-fields", func(t *testing.T) {
		var got unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(e.kn(t, "get", "knob", "s1", "-o", "yaml", "--show-managed-fields")), &got.Object); err != nil {
			t.Fatal(err)
		}
		owners := fieldOwners(t, &got)
		if !ownsField(owners["kubectl/Apply"], "f:spec", "f:position") || ownsField(owners["kubectl/Apply"], "f:spec", "f:notes") || !ownsField(owners["other/Update"], "f:spec", "f:limits", "f:max") {
			t.Errorf("managedFields printed by kubectl: %v, want kubectl/Apply owning position (not notes) and other/Update owning limits.max", owners)
		}
		var plain map[string]any
		if err := yaml.Unmarshal([]byte(e.kn(t, "get", "knob", "s1", "-o", "yaml")), &plain); err != nil {
			t.Fatal(err)
		}
		if md, _ := plain["metadata"].(map[string]any); md["managedFields"] != nil {
			t.Errorf("kubectl get -o yaml printed managedFields without --show-managed-fields")
		}
	})
	t.Run("dry-run", func(t *testing.T) {
		before := mustGet(t, t.Context(), e.knobs, "s1")
		wantOutput(t, apply(t, "  position: 11\n  label: volume\n", "--dry-run=server"), applied+" (server dry run)")
		got := mustGet(t, t.Context(), e.knobs, "s1")
		if got.GetResourceVersion() != before.GetResourceVersion() || nested[int64](t, got, "spec", "position") != 10 {
			t.Errorf("a server dry run changed the knob: resourceVersion %s (was %s), spec %v", got.GetResourceVersion(), before.GetResourceVersion(), got.Object["spec"])
		}
	})
	t.Run("status", func(t *testing.T) {
		e.write(t, "status.yaml", "apiVersion: e2e.setpoint.dev/v1\nkind: Knob\nmetadata:\n  name: s1\nstatus:\n  phase: Ready\n")
		wantOutput(t, e.kn(t, "apply", "--server-side", "--subresource=status", "-f", "status.yaml"), applied)
		got := mustGet(t, t.Context(), e.knobs, "s1")
		if phase := nested[string](t, got, "status", "phase"); phase != "Ready" {
			t.Errorf("status.phase %q after apply --subresource=status, want Ready", phase)
		}
		if !ownsField(fieldOwners(t, got)["kubectl/Apply/status"], "f:status", "f:phase") {
			t.Errorf("managedFields %v, want kubectl/Apply/status owning status.phase", fieldOwners(t, got))
		}
		if nested[int64](t, got, "spec", "position") != 10 {
			t.Errorf("an apply of the status changed the spec: %v", got.Object["spec"])
		}
	})
	t.Run("configmap", func(t *testing.T) {
		cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\ndata:\n  a: \"1\"\n"
		e.write(t, "cm1.yaml", cm+"  b: \"2\"\n")
		wantOutput(t, e.kn(t, "apply", "--server-side", "-f", "cm1.yaml"), "configmap/cm1 serverside-applied")
		e.write(t, "cm1.yaml", cm)
		wantOutput(t, e.kn(t, "apply", "--server-side", "-f", "cm1.yaml"), "configmap/cm1 serverside-applied")
		got, err := e.c.core.CoreV1().ConfigMaps(e.ns).Get(t.Context(), "cm1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"a": "1"}; !maps.Equal(got.Data, want) {
			t.Errorf("cm1 data %v after applying without b, want %v", got.Data, want)
		}
		if len(got.ManagedFields) != 1 || got.ManagedFields[0].Manager != "kubectl" || got.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
			t.Fatalf("cm1 managedFields %+v, want one kubectl Apply entry", got.ManagedFields)
		}
		var fields map[string]any
		if err := json.Unmarshal(got.ManagedFields[0].FieldsV1.Raw, &fields); err != nil || !ownsField(fields, "f:data", "f:a") || ownsField(fields, "f:data", "f:b") {
			t.Errorf("cm1 fields owned by kubectl: %s (%v), want data.a and not data.b", got.ManagedFields[0].FieldsV1.Raw, err)
		}
	})
}
