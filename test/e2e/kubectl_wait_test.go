package e2e

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// knobReadyStatus is a knob status with one condition of type Ready.
func knobReadyStatus(status string) map[string]any {
	return map[string]any{"conditions": []any{map[string]any{
		"type": "Ready", "status": status, "reason": "Test", "message": "set by the test",
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}}}
}

// wantKubectlExit waits for a background kubectl to exit successfully and print
// want.
func wantKubectlExit(t testing.TB, p *kubectlProc, want string) {
	t.Helper()
	rest, stderr, err := p.wait(t)
	out := strings.Join(rest, "\n")
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(p.args, " "), err, out, stderr)
	}
	wantOutput(t, out, want)
}

// TestKubectlWait waits with kubectl for status conditions and JSONPath
// values the test sets through the status subresource: a wait that times
// out while the value is wrong, then a wait in the background that ends
// when the test sets it.
func TestKubectlWait(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	e.createKnob(t, "w1", nil, map[string]any{"position": int64(10)})
	met := knobsResource + "/w1 condition met"

	t.Run("condition", func(t *testing.T) {
		wantOutput(t, e.fail(t, "-n", e.ns, "wait", "--for=condition=Ready", "knob/w1", "--timeout=1s"), "timed out waiting for the condition on knobs/w1")
		e.setKnobStatus(t, "w1", knobReadyStatus("False"))
		wantOutput(t, e.kn(t, "wait", "--for=condition=Ready=False", "knob/w1", "--timeout=30s"), met)
		wantOutput(t, e.fail(t, "-n", e.ns, "wait", "--for=condition=Ready", "knob/w1", "--timeout=1s"), "timed out waiting for the condition on knobs/w1")
		w := e.start(t, nil, "-n", e.ns, "wait", "--for=condition=Ready", "knob/w1", "--timeout=30s")
		e.setKnobStatus(t, "w1", knobReadyStatus("True"))
		wantKubectlExit(t, w, met)
	})
	t.Run("jsonpath", func(t *testing.T) {
		wantOutput(t, e.kn(t, "wait", "--for=jsonpath={.spec.position}=10", "knob/w1", "--timeout=30s"), met)
		wantOutput(t, e.fail(t, "-n", e.ns, "wait", "--for=jsonpath={.status.phase}=Done", "knob/w1", "--timeout=1s"), "timed out waiting for the condition on knobs/w1")
		w := e.start(t, nil, "-n", e.ns, "wait", "--for=jsonpath={.status.phase}=Done", "knob/w1", "--timeout=30s")
		status := knobReadyStatus("True")
		status["phase"] = "Done"
		e.setKnobStatus(t, "w1", status)
		wantKubectlExit(t, w, met)
	})
	t.Run("create", func(t *testing.T) {
		w := e.start(t, nil, "-n", e.ns, "wait", "--for=create", "knob/w2", "--timeout=30s")
		e.createKnob(t, "w2", nil, map[string]any{"position": int64(1)})
		wantKubectlExit(t, w, knobsResource+"/w2 condition met")
	})
}

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
		wantOutput(t, e.fail(t, "-n", e.ns, "wait", "--for=delete", "knob/f1", "--timeout=1s"), "timed out waiting for the condition on knobs/f1")
		w := e.start(t, nil, "-n", e.ns, "wait", "--for=delete", "knob/f1", "--timeout=30s")
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
