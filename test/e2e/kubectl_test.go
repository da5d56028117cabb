package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// kubectlManifests are the files TestKubectl applies.
var kubectlManifests = map[string]string{
	"widget.yaml": `apiVersion: e2e.setpoint.dev/v1
kind: Widget
metadata:
  name: w1
  namespace: smoke
  labels:
    app: smoke
spec:
  size: 3
  color: red
`,
	"widget-blue.yaml": `apiVersion: e2e.setpoint.dev/v1
kind: Widget
metadata:
  name: w1
  namespace: smoke
  labels:
    app: smoke
spec:
  size: 3
  color: blue
`,
	"typo.yaml": `apiVersion: e2e.setpoint.dev/v1
kind: Widget
metadata:
  name: typo
  namespace: smoke
spec:
  size: 3
  color: red
  colour: red
`,
}

// buildKubectl returns $KUBECTL_BIN or builds cmd/kubectl (upstream kubectl,
// in its own module) into a temporary directory.
func buildKubectl(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("KUBECTL_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "kubectl")
	build := exec.CommandContext(testContext(t, 10*time.Minute), "go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("cmd", "kubectl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kubectl: %v\n%s", err, out)
	}
	return bin
}

// TestKubectl drives the server with upstream kubectl: apply, wait, get as
// a table and as YAML, patch, explain, apply again and delete.
func TestKubectl(t *testing.T) {
	t.Parallel()
	kubectl := buildKubectl(t)
	s := startServer(t)
	c := newClients(t, s)
	dir := t.TempDir()
	crd := widgetCRD()
	crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
	// Write the manifest a user would: no status, no creationTimestamp.
	crdMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
	if err != nil {
		t.Fatal(err)
	}
	delete(crdMap, "status")
	unstructured.RemoveNestedField(crdMap, "metadata", "creationTimestamp")
	crdYAML, err := yaml.Marshal(crdMap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "crd.yaml"), crdYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, body := range kubectlManifests {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// command prepares kubectl with args against the server.
	command := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", s.kubeconfig, "--cache-dir", filepath.Join(dir, "cache")}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir)
		return cmd
	}
	// run runs kubectl and returns its standard output; wantFail says the
	// command must fail, and then the standard error is returned.
	run := func(wantFail bool, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := command(ctx, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if wantFail {
			if err == nil {
				t.Fatalf("kubectl %s succeeded, want a failure; stdout:\n%s", strings.Join(args, " "), stdout.String())
			}
			return stderr.String()
		}
		if err != nil {
			t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	wantOutput := func(out string, parts ...string) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(out, p) {
				t.Errorf("kubectl output lacks %q:\n%s", p, out)
			}
		}
	}

	wantOutput(run(false, "apply", "-f", "crd.yaml"), "customresourcedefinition.apiextensions.k8s.io/"+widgetsCRD+" created")
	run(false, "wait", "--for", "condition=Established", "crd/"+widgetsCRD, "--timeout", "30s")
	wantOutput(run(false, "create", "namespace", "smoke"), "namespace/smoke created")
	wantOutput(run(false, "api-resources", "--api-group", testGroup), "widgets", "wd", "Widget")

	wantOutput(run(false, "apply", "-f", "widget.yaml"), "widget."+testGroup+"/w1 created")
	table := run(false, "get", "widgets", "-n", "smoke")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 {
		t.Fatalf("kubectl get widgets printed %d lines, want a header and one row:\n%s", len(lines), table)
	}
	header, row := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(header) < 3 || header[0] != "NAME" || header[1] != "COLOR" || header[2] != "SIZE" {
		t.Errorf("kubectl get widgets header %q, want NAME COLOR SIZE first (the printer columns)", lines[0])
	}
	if len(row) < 3 || row[0] != "w1" || row[1] != "red" || row[2] != "3" {
		t.Errorf("kubectl get widgets row %q, want w1 red 3", lines[1])
	}
	if strings.Contains(lines[0], "MODE") {
		t.Errorf("kubectl get shows the priority-1 column MODE without -o wide: %q", lines[0])
	}
	wide := strings.Split(strings.TrimSpace(run(false, "get", "widgets", "-n", "smoke", "-o", "wide")), "\n")
	if len(wide) != 2 || !strings.Contains(wide[0], "MODE") || !strings.Contains(wide[1], "auto") {
		t.Errorf("kubectl get -o wide lacks the MODE column with the default auto:\n%s", strings.Join(wide, "\n"))
	}
	wantOutput(run(false, "get", "wd", "-A", "-l", "app=smoke"), "smoke", "w1", "red")

	var obj map[string]any
	if err := yaml.Unmarshal([]byte(run(false, "get", "widget", "w1", "-n", "smoke", "-o", "yaml")), &obj); err != nil {
		t.Fatalf("kubectl get -o yaml: %v", err)
	}
	spec, _ := obj["spec"].(map[string]any)
	if spec["size"] != float64(3) || spec["color"] != "red" || spec["mode"] != "auto" {
		t.Errorf("kubectl get -o yaml spec %v, want size 3, color red and the default mode auto", spec)
	}

	wantOutput(run(false, "apply", "-f", "crd.yaml"), "customresourcedefinition.apiextensions.k8s.io/"+widgetsCRD+" unchanged")
	// kubectl diff dry-runs the apply on the server and exits 1 on a
	// difference.
	diff := command(testContext(t, time.Minute), "diff", "-f", "widget-blue.yaml")
	diff.Env = append(diff.Env, "KUBECTL_EXTERNAL_DIFF=diff -u")
	out, err := diff.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || !strings.Contains(string(out), "+  color: blue") {
		t.Errorf("kubectl diff: %v, want exit 1 and the color change:\n%s", err, out)
	}
	if got := mustGet(t, t.Context(), c.widgets("smoke"), "w1"); nested[string](t, got, "spec", "color") != "red" {
		t.Errorf("kubectl diff changed the object: spec %v", got.Object["spec"])
	}

	wantOutput(run(false, "patch", "widget", "w1", "-n", "smoke", "--type", "merge", "-p", `{"spec":{"size":5}}`), "widget."+testGroup+"/w1 patched")
	if got := mustGet(t, t.Context(), c.widgets("smoke"), "w1"); nested[int64](t, got, "spec", "size") != 5 {
		t.Errorf("after kubectl patch: spec %v, want size 5", got.Object["spec"])
	}
	wantOutput(run(false, "apply", "-f", "widget-blue.yaml"), "widget."+testGroup+"/w1 configured")
	got := mustGet(t, t.Context(), c.widgets("smoke"), "w1")
	if nested[string](t, got, "spec", "color") != "blue" {
		t.Errorf("after kubectl apply of a new color: spec %v, want color blue", got.Object["spec"])
	}
	if _, ok := got.GetAnnotations()["kubectl.kubernetes.io/last-applied-configuration"]; !ok {
		t.Errorf("kubectl apply left no last-applied-configuration annotation: %v", got.GetAnnotations())
	}
	wantOutput(run(true, "apply", "-f", "typo.yaml"), "colour")
	wantOutput(run(false, "explain", "widgets.spec"), "size", "color")
	wantOutput(run(false, "get", "widget", "w1", "-n", "smoke", "-o", "jsonpath={.spec.color}"), "blue")

	wantOutput(run(false, "delete", "-f", "widget.yaml"), "widget."+testGroup, `"w1" deleted`)
	wantNotFound(t, t.Context(), c.widgets("smoke"), "w1")
	wantOutput(run(true, "get", "widget", "w1", "-n", "smoke"), "NotFound", "w1")
	list, err := c.widgets("smoke").List(t.Context(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("widgets left after kubectl delete: %v, %v", names(list.Items), err)
	}
}
