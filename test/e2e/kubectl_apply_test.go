package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/json"
)

// lastApplied is the annotation client-side kubectl apply keeps.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// TestKubectlApplyClientSide applies one knob three times with
// client-side apply: created, unchanged (no write), then configured from a
// manifest that drops a spec field and a label, which the server then no
// longer has, while a field set by another client survives.
func TestKubectlApplyClientSide(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	const first = `apiVersion: e2e.setpoint.dev/v1
kind: Knob
metadata:
  name: k1
  labels:
    app: dial
    stage: beta
spec:
  position: 10
  label: volume
  notes: turn slowly
`
	const third = `apiVersion: e2e.setpoint.dev/v1
kind: Knob
metadata:
  name: k1
  labels:
    app: dial
spec:
  position: 20
  label: volume
`
	e.write(t, "first.yaml", first)
	e.write(t, "third.yaml", third)

	wantOutput(t, e.kn(t, "apply", "-f", "first.yaml"), knobsResource+"/k1 created")
	created := mustGet(t, t.Context(), e.knobs, "k1")
	if got := nested[string](t, created, "spec", "notes"); got != "turn slowly" {
		t.Errorf("after the first apply: spec.notes %q, want %q", got, "turn slowly")
	}
	applied := lastAppliedOf(t, created)
	if notes, _, _ := unstructured.NestedString(applied, "spec", "notes"); notes != "turn slowly" {
		t.Errorf("last-applied-configuration %v lacks spec.notes", applied)
	}
	// Another client sets a field the manifest never mentions.
	e.kn(t, "patch", "knob", "k1", "--type", "merge", "-p", `{"spec":{"limits":{"max":90}}}`)
	patched := mustGet(t, t.Context(), e.knobs, "k1")

	wantOutput(t, e.kn(t, "apply", "-f", "first.yaml"), knobsResource+"/k1 unchanged")
	if got := mustGet(t, t.Context(), e.knobs, "k1"); got.GetResourceVersion() != patched.GetResourceVersion() {
		t.Errorf("an unchanged apply wrote the object: resourceVersion %s, was %s", got.GetResourceVersion(), patched.GetResourceVersion())
	}

	wantOutput(t, e.kn(t, "apply", "-f", "third.yaml"), knobsResource+"/k1 configured")
	got := mustGet(t, t.Context(), e.knobs, "k1")
	if _, found, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", "notes"); found {
		t.Errorf("spec.notes survived an apply that removed it: spec %v", got.Object["spec"])
	}
	if _, ok := got.GetLabels()["stage"]; ok || got.GetLabels()["app"] != "dial" {
		t.Errorf("labels %v after an apply that removed stage, want only app=dial", got.GetLabels())
	}
	if pos := nested[int64](t, got, "spec", "position"); pos != 20 {
		t.Errorf("spec.position %d after the third apply, want 20", pos)
	}
	if max := nested[int64](t, got, "spec", "limits", "max"); max != 90 {
		t.Errorf("spec.limits.max %d, want 90: apply removed a field it never applied", max)
	}
	if mode := nested[string](t, got, "spec", "mode"); mode != "manual" {
		t.Errorf("spec.mode %q, want the default manual kept", mode)
	}
	if gen := got.GetGeneration(); gen != 3 {
		t.Errorf("generation %d after create, a patch and one changing apply, want 3", gen)
	}
	applied = lastAppliedOf(t, got)
	if _, found, _ := unstructured.NestedFieldNoCopy(applied, "spec", "notes"); found {
		t.Errorf("last-applied-configuration still has spec.notes: %v", applied)
	}
	if pos, _, _ := unstructured.NestedInt64(applied, "spec", "position"); pos != 20 {
		t.Errorf("last-applied-configuration %v, want spec.position 20", applied)
	}
}

// lastAppliedOf decodes u's last-applied-configuration annotation, with
// integers as int64.
func lastAppliedOf(t testing.TB, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	raw, ok := u.GetAnnotations()[lastApplied]
	if !ok {
		t.Fatalf("%s has no %s annotation: %v", u.GetName(), lastApplied, u.GetAnnotations())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("%s annotation %q: %v", lastApplied, raw, err)
	}
	return m
}

// TestKubectlApplyValidation applies a knob with an unknown field under
// each of kubectl's --validate modes, which kubectl sends as the server's
// fieldValidation: strict fails and creates nothing, warn prints the
// server's warning, ignore is silent; the field is pruned either way. A
// server dry run shows the defaults and stores nothing.
func TestKubectlApplyValidation(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	manifest := func(name string) string {
		return "apiVersion: e2e.setpoint.dev/v1\nkind: Knob\nmetadata:\n  name: " + name + "\nspec:\n  position: 1\n  colour: red\n"
	}
	const warning = `Warning: unknown field "spec.colour"`
	for _, tc := range []struct {
		name, validate string
		fail, warn     bool
	}{
		{"strict", "--validate=strict", true, false},
		{"warn", "--validate=warn", false, true},
		{"ignore", "--validate=false", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.name + ".yaml"
			e.write(t, file, manifest(tc.name))
			stdout, stderr, err := e.exec(t, nil, "-n", e.ns, "apply", "-f", file, tc.validate)
			if (err != nil) != tc.fail || strings.Contains(stderr, warning) != tc.warn {
				t.Fatalf("kubectl apply %s: %v, want failure %v and warning %v\nstdout:\n%s\nstderr:\n%s", tc.validate, err, tc.fail, tc.warn, stdout, stderr)
			}
			if tc.fail {
				wantOutput(t, stderr, `strict decoding error: unknown field "spec.colour"`)
				wantNotFound(t, t.Context(), e.knobs, tc.name)
				return
			}
			got := mustGet(t, t.Context(), e.knobs, tc.name)
			if _, found, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", "colour"); found {
				t.Errorf("spec.colour was stored: spec %v", got.Object["spec"])
			}
		})
	}
	t.Run("dry-run-create", func(t *testing.T) {
		e.write(t, "dry.yaml", "apiVersion: e2e.setpoint.dev/v1\nkind: Knob\nmetadata:\n  name: dry\nspec:\n  position: 4\n")
		out := e.kn(t, "create", "-f", "dry.yaml", "--dry-run=server", "-o", "jsonpath={.spec.mode}/{.metadata.uid}")
		if mode, uid, _ := strings.Cut(out, "/"); mode != "manual" || uid == "" {
			t.Errorf("kubectl create --dry-run=server printed %q, want the default mode manual and a uid", out)
		}
		wantNotFound(t, t.Context(), e.knobs, "dry")
	})
	t.Run("dry-run-create-existing", func(t *testing.T) {
		wantOutput(t, e.fail(t, "-n", e.ns, "create", "-f", "warn.yaml", "--dry-run=server", "--validate=false"), "(AlreadyExists)")
	})
}

// TestKubectlApplyKustomize applies a kustomization with kubectl apply -k
// (name prefix, common labels, a generated ConfigMap) and a directory of
// manifests with apply -f, then deletes the directory's objects with
// delete -f.
func TestKubectlApplyKustomize(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	for _, dir := range []string{"base", "many"} {
		if err := os.Mkdir(filepath.Join(e.dir, dir), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.write(t, "base/knob.yaml", "apiVersion: e2e.setpoint.dev/v1\nkind: Knob\nmetadata:\n  name: k1\nspec:\n  position: 7\n")
	e.write(t, "base/kustomization.yaml", `namespace: `+e.ns+`
namePrefix: dev-
labels:
- pairs:
    env: dev
resources:
- knob.yaml
configMapGenerator:
- name: settings
  literals:
  - volume=11
`)
	out := e.run(t, "apply", "-k", "base")
	wantOutput(t, out, knobsResource+"/dev-k1 created", "configmap/dev-settings-")
	got := mustGet(t, t.Context(), e.knobs, "dev-k1")
	if got.GetLabels()["env"] != "dev" || nested[int64](t, got, "spec", "position") != 7 {
		t.Errorf("dev-k1: labels %v spec %v, want env=dev and position 7", got.GetLabels(), got.Object["spec"])
	}
	cms, err := e.c.core.CoreV1().ConfigMaps(e.ns).List(t.Context(), metav1.ListOptions{LabelSelector: "env=dev"})
	if err != nil || len(cms.Items) != 1 || !strings.HasPrefix(cms.Items[0].Name, "dev-settings-") || cms.Items[0].Data["volume"] != "11" {
		t.Errorf("generated ConfigMaps labelled env=dev: %v (%v), want one dev-settings-<hash> with volume=11", cms, err)
	}

	for _, name := range []string{"a", "b"} {
		e.write(t, "many/"+name+".yaml", "apiVersion: e2e.setpoint.dev/v1\nkind: Knob\nmetadata:\n  name: "+name+"\n  namespace: "+e.ns+"\nspec:\n  position: 1\n")
	}
	wantOutput(t, e.run(t, "apply", "-f", "many"), knobsResource+"/a created", knobsResource+"/b created")
	mustGet(t, t.Context(), e.knobs, "a")
	mustGet(t, t.Context(), e.knobs, "b")
	wantOutput(t, e.run(t, "delete", "-f", "many"), `"a" deleted`, `"b" deleted`)
	wantNotFound(t, t.Context(), e.knobs, "a")
	wantNotFound(t, t.Context(), e.knobs, "b")
}
