package e2e

import (
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// TestKubectlDeleteFinalizer deletes knobs held by a finalizer: kubectl
// delete --wait=false returns at once and leaves the object with a
// deletionTimestamp; kubectl wait --for=delete ends once a patch removes
// the finalizer and the object is gone; kubectl delete without --wait=false
// blocks until then.
func TestKubectlDeleteFinalizer(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	held := func(name string) {
		u := knob(e.ns, name, map[string]any{"position": int64(1)})
		u.SetFinalizers([]string{holdFinalizer})
		mustCreate(t, t.Context(), e.knobs, u)
	}

	t.Run("no-wait", func(t *testing.T) {
		held("f1")
		wantOutput(t, e.kn(t, "delete", "knob", "f1", "--wait=false"), knobsResource+` "f1" deleted`)
		got := mustGet(t, t.Context(), e.knobs, "f1")
		if got.GetDeletionTimestamp() == nil || len(got.GetFinalizers()) != 1 {
			t.Fatalf("after kubectl delete --wait=false: deletionTimestamp %v, finalizers %v; want both set", got.GetDeletionTimestamp(), got.GetFinalizers())
		}
		if out := e.kn(t, "get", "knob", "f1", "-o", "jsonpath={.metadata.deletionTimestamp}"); out != got.GetDeletionTimestamp().UTC().Format(time.RFC3339) {
			t.Errorf("kubectl get prints deletionTimestamp %q, client-go reads %v", out, got.GetDeletionTimestamp())
		}
		wantOutput(t, e.fail(t, "-n", e.ns, "wait", "--for=delete", "knob/f1", "--timeout=2s"), "timed out waiting for the condition on knobs/f1")
		w := e.start(t, nil, "-n", e.ns, "wait", "--for=delete", "knob/f1", "--timeout=30s", "-v=6")
		w.waitWatching(t)
		wantOutput(t, e.kn(t, "patch", "knob", "f1", "--type", "json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`), knobsResource+"/f1 patched")
		wantKubectlExit(t, w, knobsResource+"/f1 condition met")
		wantNotFound(t, t.Context(), e.knobs, "f1")
		wantOutput(t, e.kn(t, "wait", "--for=delete", "knob/f1", "--timeout=5s"), "")
	})
	t.Run("wait", func(t *testing.T) {
		held("f2")
		d := e.start(t, nil, "-n", e.ns, "delete", "knob", "f2", "--timeout=30s")
		// The deletion is under way once the object has its timestamp;
		// then the finalizer goes.
		waitForObject(t, e.knobs, "f2", func(u *unstructured.Unstructured) bool { return u.GetDeletionTimestamp() != nil })
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := e.knobs.Patch(t.Context(), "f2", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("remove the finalizer of f2: %v", err)
		}
		wantKubectlExit(t, d, knobsResource+` "f2" deleted`)
		wantNotFound(t, t.Context(), e.knobs, "f2")
	})
}

// TestKubectlDelete deletes knobs by name with a server dry run, by label
// selector, all at once, and a missing one with and without
// --ignore-not-found; kubectl create of an existing knob fails.
func TestKubectlDelete(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	gold := map[string]string{"tier": "gold"}
	for name, labels := range map[string]map[string]string{"k1": gold, "k2": gold, "k3": {"tier": "silver"}, "k4": nil} {
		e.createKnob(t, name, labels, map[string]any{"position": int64(1)})
	}
	remaining := func(t *testing.T, want ...string) {
		t.Helper()
		list, err := e.knobs.List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(list.Items); !slices.Equal(got, want) {
			t.Errorf("knobs left: %v, want %v", got, want)
		}
	}
	deleted := func(name string) string { return knobsResource + ` "` + name + `" deleted` }

	t.Run("dry-run", func(t *testing.T) {
		wantOutput(t, e.kn(t, "delete", "knob", "k4", "--dry-run=server"), deleted("k4"), "(server dry run)")
		remaining(t, "k1", "k2", "k3", "k4")
	})
	t.Run("selector", func(t *testing.T) {
		wantOutput(t, e.kn(t, "delete", "knobs", "-l", "tier=gold"), deleted("k1"), deleted("k2"))
		remaining(t, "k3", "k4")
	})
	t.Run("not-found", func(t *testing.T) {
		wantOutput(t, e.fail(t, "-n", e.ns, "delete", "knob", "k1"), "(NotFound)", knobsCRD+` "k1" not found`)
		if out := e.kn(t, "delete", "knob", "k1", "--ignore-not-found"); out != "" {
			t.Errorf("kubectl delete --ignore-not-found of a missing knob printed %q", out)
		}
	})
	t.Run("all", func(t *testing.T) {
		wantOutput(t, e.kn(t, "delete", "knobs", "--all"), deleted("k3"), deleted("k4"))
		remaining(t)
	})
	t.Run("create-exists", func(t *testing.T) {
		e.write(t, "c1.yaml", "apiVersion: e2e.setpoint.dev/v1\nkind: Knob\nmetadata:\n  name: c1\nspec:\n  position: 5\n")
		wantOutput(t, e.kn(t, "create", "-f", "c1.yaml"), knobsResource+"/c1 created")
		wantOutput(t, e.fail(t, "-n", e.ns, "create", "-f", "c1.yaml"), "(AlreadyExists)", `"c1" already exists`)
		remaining(t, "c1")
	})
}

// TestKubectlDeleteNamespace deletes a namespace holding a knob with a
// finalizer and a ConfigMap with kubectl: the namespace is Terminating and
// refuses new objects until the finalizer goes, then kubectl wait
// --for=delete sees it gone with everything in it.
func TestKubectlDeleteNamespace(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	e.write(t, "objects.yaml", `apiVersion: e2e.setpoint.dev/v1
kind: Knob
metadata:
  name: held
  finalizers: [`+holdFinalizer+`]
spec:
  position: 1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  a: b
`)
	wantOutput(t, e.kn(t, "apply", "-f", "objects.yaml"), knobsResource+"/held created", "configmap/settings created")
	wantOutput(t, e.run(t, "delete", "namespace", e.ns, "--wait=false"), `namespace "`+e.ns+`" deleted`)
	if out := e.run(t, "get", "namespace", e.ns, "-o", "jsonpath={.status.phase}"); out != "Terminating" {
		t.Errorf("namespace phase %q after kubectl delete, want Terminating", out)
	}
	wantOutput(t, e.fail(t, "-n", e.ns, "create", "configmap", "late"), "forbidden", "because it is being terminated")
	w := e.start(t, nil, "wait", "--for=delete", "namespace/"+e.ns, "--timeout=30s", "-v=6")
	w.waitWatching(t)
	e.kn(t, "patch", "knob", "held", "--type", "merge", "-p", `{"metadata":{"finalizers":null}}`)
	wantKubectlExit(t, w, "namespace/"+e.ns+" condition met")
	if _, err := e.c.core.CoreV1().Namespaces().Get(t.Context(), e.ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get namespace %s after kubectl wait --for=delete: %v, want NotFound", e.ns, err)
	}
	wantNotFound(t, t.Context(), e.knobs, "held")
	if _, err := e.c.core.CoreV1().ConfigMaps(e.ns).Get(t.Context(), "settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get configmap settings after its namespace went: %v, want NotFound", err)
	}
}
