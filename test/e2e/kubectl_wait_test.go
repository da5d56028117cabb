package e2e

import (
	"strings"
	"testing"
	"time"
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
