package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// kubectlStep is one kubectl command, what it must print (on standard
// output, or on standard error when it must fail) and a check of the object
// client-go reads afterwards, which returns "" when the object is right.
type kubectlStep struct {
	name  string
	args  []string
	fail  bool
	out   string
	check func(u *unstructured.Unstructured) string
}

// runSteps runs steps in order in e's namespace, each reading the knob
// name afterwards.
func (e *kubectlEnv) runSteps(t *testing.T, name string, steps []kubectlStep) {
	t.Helper()
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			args := append([]string{"-n", e.ns}, st.args...)
			var out string
			if st.fail {
				out = e.fail(t, args...)
			} else {
				out = e.run(t, args...)
			}
			wantOutput(t, out, st.out)
			if st.check == nil {
				return
			}
			if msg := st.check(mustGet(t, t.Context(), e.knobs, name)); msg != "" {
				t.Errorf("after kubectl %s: %s", strings.Join(st.args, " "), msg)
			}
		})
	}
}

// wantKnobMap returns a check that the labels or annotations get reads are
// exactly want.
func wantKnobMap(what string, get func(*unstructured.Unstructured) map[string]string, want map[string]string) func(*unstructured.Unstructured) string {
	return func(u *unstructured.Unstructured) string {
		got := get(u)
		delete(got, lastApplied)
		if !maps.Equal(got, want) {
			return fmt.Sprintf("%s %v, want %v", what, got, want)
		}
		return ""
	}
}

// wantKnobSpec returns a check that the knob's spec is exactly want (integers
// as int64).
func wantKnobSpec(want map[string]any) func(*unstructured.Unstructured) string {
	return func(u *unstructured.Unstructured) string {
		if got := fmt.Sprint(u.Object["spec"]); got != fmt.Sprint(want) {
			return fmt.Sprintf("spec %s, want %v", got, want)
		}
		return ""
	}
}

// TestKubectlLabelAnnotate adds, overwrites and removes labels and
// annotations with kubectl and reads them back.
func TestKubectlLabelAnnotate(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	created := e.createKnob(t, "k1", map[string]string{"app": "dial"}, map[string]any{"position": int64(10)})
	e.createKnob(t, "k2", nil, map[string]any{"position": int64(20)})
	labels := func(want map[string]string) func(*unstructured.Unstructured) string {
		return wantKnobMap("labels", (*unstructured.Unstructured).GetLabels, want)
	}
	annotations := func(want map[string]string) func(*unstructured.Unstructured) string {
		return wantKnobMap("annotations", (*unstructured.Unstructured).GetAnnotations, want)
	}
	labelled := knobsResource + "/k1 labeled"
	annotated := knobsResource + "/k1 annotated"
	e.runSteps(t, "k1", []kubectlStep{
		{name: "label-add", args: []string{"label", "knob", "k1", "tier=gold"}, out: labelled,
			check: labels(map[string]string{"app": "dial", "tier": "gold"})},
		{name: "label-no-overwrite", args: []string{"label", "knob", "k1", "tier=silver"}, fail: true, out: "'tier' already has a value (gold), and --overwrite is false",
			check: labels(map[string]string{"app": "dial", "tier": "gold"})},
		{name: "label-overwrite", args: []string{"label", "knob", "k1", "tier=silver", "--overwrite"}, out: labelled,
			check: labels(map[string]string{"app": "dial", "tier": "silver"})},
		{name: "label-remove", args: []string{"label", "knob", "k1", "tier-"}, out: knobsResource + "/k1 unlabeled",
			check: labels(map[string]string{"app": "dial"})},
		// A stale resourceVersion makes the server refuse the patch.
		{name: "label-stale", args: []string{"label", "knob", "k1", "tier=bronze", "--resource-version", created.GetResourceVersion()}, fail: true, out: "Conflict",
			check: labels(map[string]string{"app": "dial"})},
		{name: "label-all", args: []string{"label", "knobs", "--all", "env=test"}, out: knobsResource + "/k2 labeled",
			check: labels(map[string]string{"app": "dial", "env": "test"})},
		{name: "annotate-add", args: []string{"annotate", "knob", "k1", "note=turn it up"}, out: annotated,
			check: annotations(map[string]string{"note": "turn it up"})},
		{name: "annotate-no-overwrite", args: []string{"annotate", "knob", "k1", "note=down"}, fail: true, out: "--overwrite is false",
			check: annotations(map[string]string{"note": "turn it up"})},
		{name: "annotate-overwrite", args: []string{"annotate", "knob", "k1", "note=down", "owner=ops", "--overwrite"}, out: annotated,
			check: annotations(map[string]string{"note": "down", "owner": "ops"})},
		{name: "annotate-remove", args: []string{"annotate", "knob", "k1", "note-"}, out: annotated,
			check: annotations(map[string]string{"owner": "ops"})},
	})
	if got := mustGet(t, t.Context(), e.knobs, "k2"); got.GetLabels()["env"] != "test" {
		t.Errorf("kubectl label knobs --all left k2 with labels %v", got.GetLabels())
	}
}

// TestKubectlPatch patches a knob with merge and JSON patches, on the main
// resource and on its status, and checks the patches the server refuses
// change nothing.
func TestKubectlPatch(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	e.createKnob(t, "k1", nil, map[string]any{"position": int64(10)})
	patched := knobsResource + "/k1 patched"
	e.runSteps(t, "k1", []kubectlStep{
		{name: "merge", args: []string{"patch", "knob", "k1", "--type", "merge", "-p", `{"spec":{"position":7,"label":"vol"}}`}, out: patched,
			check: wantKnobSpec(map[string]any{"label": "vol", "mode": "manual", "position": int64(7)})},
		{name: "merge-null-removes", args: []string{"patch", "knob", "k1", "--type", "merge", "-p", `{"spec":{"label":null}}`}, out: patched,
			check: wantKnobSpec(map[string]any{"mode": "manual", "position": int64(7)})},
		{name: "json-add", args: []string{"patch", "knob", "k1", "--type", "json", "-p", `[{"op":"add","path":"/spec/limits","value":{"min":1,"max":9}}]`}, out: patched,
			check: wantKnobSpec(map[string]any{"limits": map[string]any{"max": int64(9), "min": int64(1)}, "mode": "manual", "position": int64(7)})},
		{name: "json-replace-remove", args: []string{"patch", "knob", "k1", "--type", "json", "-p",
			`[{"op":"test","path":"/spec/position","value":7},{"op":"replace","path":"/spec/position","value":8},{"op":"remove","path":"/spec/limits/min"}]`}, out: patched,
			check: wantKnobSpec(map[string]any{"limits": map[string]any{"max": int64(9)}, "mode": "manual", "position": int64(8)})},
		{name: "json-test-fails", args: []string{"patch", "knob", "k1", "--type", "json", "-p", `[{"op":"test","path":"/spec/position","value":99},{"op":"replace","path":"/spec/position","value":1}]`}, fail: true, out: "The request is invalid",
			check: wantKnobSpec(map[string]any{"limits": map[string]any{"max": int64(9)}, "mode": "manual", "position": int64(8)})},
		// kubectl's default strategic merge patch is not served for
		// custom resources: 415, as Kubernetes answers.
		{name: "strategic-refused", args: []string{"patch", "knob", "k1", "-p", `{"spec":{"position":1}}`}, fail: true, out: "the body of the request was in an unknown format",
			check: wantKnobSpec(map[string]any{"limits": map[string]any{"max": int64(9)}, "mode": "manual", "position": int64(8)})},
		{name: "schema-refused", args: []string{"patch", "knob", "k1", "--type", "merge", "-p", `{"spec":{"position":"high"}}`}, fail: true, out: "Invalid",
			check: wantKnobSpec(map[string]any{"limits": map[string]any{"max": int64(9)}, "mode": "manual", "position": int64(8)})},
		{name: "dry-run", args: []string{"patch", "knob", "k1", "--type", "merge", "-p", `{"spec":{"position":2}}`, "--dry-run=server", "-o", "jsonpath={.spec.position}"}, out: "2",
			check: wantKnobSpec(map[string]any{"limits": map[string]any{"max": int64(9)}, "mode": "manual", "position": int64(8)})},
		{name: "status", args: []string{"patch", "knob", "k1", "--subresource", "status", "--type", "merge", "-p", `{"status":{"phase":"Turning"},"spec":{"position":3}}`}, out: patched,
			check: func(u *unstructured.Unstructured) string {
				if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); phase != "Turning" {
					return fmt.Sprintf("status %v, want phase Turning", u.Object["status"])
				}
				return wantKnobSpec(map[string]any{"limits": map[string]any{"max": int64(9)}, "mode": "manual", "position": int64(8)})(u)
			}},
	})
}

// TestKubectlReplace replaces a knob from a file with its resourceVersion,
// again from the now stale file (a conflict that changes nothing), without
// a resourceVersion, and with --force (a new object).
func TestKubectlReplace(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	orig := e.createKnob(t, "k1", nil, map[string]any{"position": int64(10)})
	// write saves the knob as kubectl printed it, with position set and
	// resourceVersion kept or dropped.
	var current map[string]any
	if err := yaml.Unmarshal([]byte(e.kn(t, "get", "knob", "k1", "-o", "yaml")), &current); err != nil {
		t.Fatal(err)
	}
	write := func(file string, position int64, keepVersion bool) {
		u := &unstructured.Unstructured{Object: current}
		u = u.DeepCopy()
		if err := unstructured.SetNestedField(u.Object, position, "spec", "position"); err != nil {
			t.Fatal(err)
		}
		if !keepVersion {
			u.SetResourceVersion("")
		}
		out, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		e.write(t, file, string(out))
	}
	position := func(want int64) func(*unstructured.Unstructured) string {
		return func(u *unstructured.Unstructured) string {
			if got, _, _ := unstructured.NestedInt64(u.Object, "spec", "position"); got != want {
				return fmt.Sprintf("spec.position %d, want %d", got, want)
			}
			return ""
		}
	}
	write("v1.yaml", 20, true)
	write("stale.yaml", 30, true)
	write("unversioned.yaml", 40, false)
	replaced := knobsResource + "/k1 replaced"
	e.runSteps(t, "k1", []kubectlStep{
		{name: "with-version", args: []string{"replace", "-f", "v1.yaml"}, out: replaced, check: position(20)},
		{name: "stale-version", args: []string{"replace", "-f", "stale.yaml"}, fail: true, out: "the object has been modified; please apply your changes to the latest version and try again", check: position(20)},
		{name: "without-version", args: []string{"replace", "-f", "unversioned.yaml"}, out: replaced, check: position(40)},
		{name: "force", args: []string{"replace", "--force", "-f", "stale.yaml"}, out: replaced, check: func(u *unstructured.Unstructured) string {
			if u.GetUID() == orig.GetUID() {
				return "replace --force kept the object's uid; want a new object"
			}
			return position(30)(u)
		}},
	})
}

// TestKubectlEdit edits a knob through KUBE_EDITOR scripts: a change is
// saved, no change writes nothing, and a change the schema refuses leaves the
// object as it was.
func TestKubectlEdit(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	e.createKnob(t, "k1", nil, map[string]any{"position": int64(10)})
	// editor writes a script that rewrites the position line of the file
	// kubectl opens.
	editor := func(name, position string) []string {
		path := filepath.Join(e.dir, name)
		script := fmt.Sprintf("#!/bin/sh\nsed -i 's/^  position: .*/  position: %s/' \"$1\"\n", position)
		if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		return []string{"KUBE_EDITOR=" + path}
	}
	for _, tc := range []struct {
		name     string
		env      []string
		fail     bool
		out      string
		position int64
		written  bool
	}{
		{"change", editor("to42.sh", "42"), false, knobsResource + "/k1 edited", 42, true},
		{"no-change", []string{"KUBE_EDITOR=true"}, false, "Edit cancelled, no changes made.", 42, false},
		{"refused", editor("high.sh", "high"), true, `"k1" is invalid`, 42, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := mustGet(t, t.Context(), e.knobs, "k1")
			stdout, stderr, err := e.exec(t, tc.env, "-n", e.ns, "edit", "knob", "k1")
			if (err != nil) != tc.fail {
				t.Fatalf("kubectl edit: %v, want failure %v\nstdout:\n%s\nstderr:\n%s", err, tc.fail, stdout, stderr)
			}
			wantOutput(t, stdout+stderr, tc.out)
			got := mustGet(t, t.Context(), e.knobs, "k1")
			if pos := nested[int64](t, got, "spec", "position"); pos != tc.position {
				t.Errorf("spec.position %d after kubectl edit, want %d", pos, tc.position)
			}
			if written := got.GetResourceVersion() != before.GetResourceVersion(); written != tc.written {
				t.Errorf("kubectl edit wrote the object: %v, want %v", written, tc.written)
			}
		})
	}
}
