package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
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

// kubectlRunner runs upstream kubectl against one server from a private
// working and home directory.
type kubectlRunner struct {
	bin        string
	kubeconfig string
	// dir is kubectl's working directory, home, temporary directory and
	// discovery cache.
	dir string
}

// newKubectl prepares kubectl for s.
func newKubectl(t *testing.T, s *server) *kubectlRunner {
	t.Helper()
	return &kubectlRunner{bin: buildKubectl(t), kubeconfig: s.kubeconfig, dir: t.TempDir()}
}

// command prepares kubectl with args; env entries ("NAME=value") are added
// to its environment.
func (k *kubectlRunner) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"--kubeconfig", k.kubeconfig, "--cache-dir", filepath.Join(k.dir, "cache")}, args...)...)
	cmd.Dir = k.dir
	// kubectl edit keeps its files in TMPDIR; they go with the test's.
	cmd.Env = append(append(os.Environ(), "HOME="+k.dir, "TMPDIR="+k.dir), env...)
	return cmd
}

// exec runs kubectl to completion and returns its standard output, its
// standard error and how it exited.
func (k *kubectlRunner) exec(t testing.TB, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := k.command(testContext(t, time.Minute), env, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// run runs kubectl, fails the test unless it succeeds, and returns its
// standard output.
func (k *kubectlRunner) run(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := k.exec(t, nil, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// fail runs kubectl, fails the test unless it fails, and returns its
// standard error.
func (k *kubectlRunner) fail(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := k.exec(t, nil, args...)
	if err == nil {
		t.Fatalf("kubectl %s succeeded, want a failure; stdout:\n%s", strings.Join(args, " "), stdout)
	}
	return stderr
}

// write writes body to the file name in kubectl's working directory.
func (k *kubectlRunner) write(t testing.TB, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(k.dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantOutput fails the test unless out contains every part.
func wantOutput(t testing.TB, out string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Errorf("kubectl output lacks %q:\n%s", p, out)
		}
	}
}

// TestKubectl drives the server with upstream kubectl: apply, wait, get as
// a table and as YAML, patch, explain, apply again and delete.
func TestKubectl(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := newKubectl(t, s)
	c := newClients(t, s)
	k.write(t, "crd.yaml", crdManifest(t, widgetCRD()))
	for name, body := range kubectlManifests {
		k.write(t, name, body)
	}

	wantOutput(t, k.run(t, "apply", "-f", "crd.yaml"), "customresourcedefinition.apiextensions.k8s.io/"+widgetsCRD+" created")
	k.run(t, "wait", "--for", "condition=Established", "crd/"+widgetsCRD, "--timeout", "30s")
	wantOutput(t, k.run(t, "create", "namespace", "smoke"), "namespace/smoke created")
	wantOutput(t, k.run(t, "api-resources", "--api-group", testGroup), "widgets", "wd", "Widget")

	wantOutput(t, k.run(t, "apply", "-f", "widget.yaml"), "widget."+testGroup+"/w1 created")
	table := k.run(t, "get", "widgets", "-n", "smoke")
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
	wide := strings.Split(strings.TrimSpace(k.run(t, "get", "widgets", "-n", "smoke", "-o", "wide")), "\n")
	if len(wide) != 2 || !strings.Contains(wide[0], "MODE") || !strings.Contains(wide[1], "auto") {
		t.Errorf("kubectl get -o wide lacks the MODE column with the default auto:\n%s", strings.Join(wide, "\n"))
	}
	wantOutput(t, k.run(t, "get", "wd", "-A", "-l", "app=smoke"), "smoke", "w1", "red")

	var obj map[string]any
	if err := yaml.Unmarshal([]byte(k.run(t, "get", "widget", "w1", "-n", "smoke", "-o", "yaml")), &obj); err != nil {
		t.Fatalf("kubectl get -o yaml: %v", err)
	}
	spec, _ := obj["spec"].(map[string]any)
	if spec["size"] != float64(3) || spec["color"] != "red" || spec["mode"] != "auto" {
		t.Errorf("kubectl get -o yaml spec %v, want size 3, color red and the default mode auto", spec)
	}

	wantOutput(t, k.run(t, "apply", "-f", "crd.yaml"), "customresourcedefinition.apiextensions.k8s.io/"+widgetsCRD+" unchanged")
	// kubectl diff dry-runs the apply on the server and exits 1 on a
	// difference.
	diff := k.command(testContext(t, time.Minute), []string{"KUBECTL_EXTERNAL_DIFF=diff -u"}, "diff", "-f", "widget-blue.yaml")
	out, err := diff.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || !strings.Contains(string(out), "+  color: blue") {
		t.Errorf("kubectl diff: %v, want exit 1 and the color change:\n%s", err, out)
	}
	if got := mustGet(t, t.Context(), c.widgets("smoke"), "w1"); nested[string](t, got, "spec", "color") != "red" {
		t.Errorf("kubectl diff changed the object: spec %v", got.Object["spec"])
	}

	wantOutput(t, k.run(t, "patch", "widget", "w1", "-n", "smoke", "--type", "merge", "-p", `{"spec":{"size":5}}`), "widget."+testGroup+"/w1 patched")
	if got := mustGet(t, t.Context(), c.widgets("smoke"), "w1"); nested[int64](t, got, "spec", "size") != 5 {
		t.Errorf("after kubectl patch: spec %v, want size 5", got.Object["spec"])
	}
	wantOutput(t, k.run(t, "apply", "-f", "widget-blue.yaml"), "widget."+testGroup+"/w1 configured")
	got := mustGet(t, t.Context(), c.widgets("smoke"), "w1")
	if nested[string](t, got, "spec", "color") != "blue" {
		t.Errorf("after kubectl apply of a new color: spec %v, want color blue", got.Object["spec"])
	}
	if _, ok := got.GetAnnotations()["kubectl.kubernetes.io/last-applied-configuration"]; !ok {
		t.Errorf("kubectl apply left no last-applied-configuration annotation: %v", got.GetAnnotations())
	}
	wantOutput(t, k.fail(t, "apply", "-f", "typo.yaml"), "colour")
	wantOutput(t, k.run(t, "explain", "widgets.spec"), "size", "color")
	wantOutput(t, k.run(t, "get", "widget", "w1", "-n", "smoke", "-o", "jsonpath={.spec.color}"), "blue")

	wantOutput(t, k.run(t, "delete", "-f", "widget.yaml"), "widget."+testGroup, `"w1" deleted`)
	wantNotFound(t, t.Context(), c.widgets("smoke"), "w1")
	wantOutput(t, k.fail(t, "get", "widget", "w1", "-n", "smoke"), "NotFound", "w1")
	list, err := c.widgets("smoke").List(t.Context(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("widgets left after kubectl delete: %v, %v", names(list.Items), err)
	}
}

// crdManifest is the YAML a user would write for crd: no status, no
// creationTimestamp.
func crdManifest(t testing.TB, crd *apiextv1.CustomResourceDefinition) string {
	t.Helper()
	crd = crd.DeepCopy()
	crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
	if err != nil {
		t.Fatal(err)
	}
	delete(m, "status")
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Knobs are the custom resource of the kubectl tests: documented nested
// fields for explain and describe, status conditions for wait, a short name
// and a category for api-resources, and a priority-1 printer column.
const (
	knobsCRD      = "knobs." + testGroup
	knobsResource = "knob." + testGroup
	knobCategory  = "e2e-kubectl"
)

var knobsGVR = schema.GroupVersionResource{Group: testGroup, Version: testVersion, Resource: "knobs"}

// knobCRD is the namespaced CRD of the kubectl tests.
func knobCRD() *apiextv1.CustomResourceDefinition {
	integer := func(desc string) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "integer", Description: desc}
	}
	str := func(desc string) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "string", Description: desc}
	}
	condition := apiextv1.JSONSchemaProps{
		Type:     "object",
		Required: []string{"type", "status"},
		Properties: map[string]apiextv1.JSONSchemaProps{
			"type":               str("Type of the condition, such as Ready."),
			"status":             str("Status is True, False or Unknown."),
			"reason":             str("Reason is a one-word cause."),
			"message":            str("Message explains the reason."),
			"lastTransitionTime": {Type: "string", Format: "date-time", Description: "When the status last changed."},
		},
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: knobsCRD},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: testGroup,
			Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{
				Plural: "knobs", Singular: "knob", Kind: "Knob", ListKind: "KnobList",
				ShortNames: []string{"kn", "kb"}, Categories: []string{knobCategory},
			},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: testVersion, Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type:        "object",
					Description: "Knob is a dial that kubectl turns in the end-to-end tests.",
					Properties: map[string]apiextv1.JSONSchemaProps{
						"spec": {
							Type:        "object",
							Description: "Spec is where the knob should point.",
							Properties: map[string]apiextv1.JSONSchemaProps{
								"position": integer("Position is the setting, from 0 to 100."),
								"label":    str("Label is printed next to the knob."),
								"notes":    str("Notes are free text for the operator."),
								"mode":     {Type: "string", Description: "Mode is manual or auto.", Default: &apiextv1.JSON{Raw: []byte(`"manual"`)}},
								"limits": {
									Type:        "object",
									Description: "Limits bound the position.",
									Properties: map[string]apiextv1.JSONSchemaProps{
										"min": integer("Min is the lowest position allowed."),
										"max": integer("Max is the highest position allowed, at most 100."),
									},
								},
							},
						},
						"status": {
							Type:        "object",
							Description: "Status is what the knob reports.",
							Properties: map[string]apiextv1.JSONSchemaProps{
								"phase":      str("Phase is a one-word summary."),
								"reading":    integer("Reading is the position last measured."),
								"conditions": {Type: "array", Description: "Conditions of the knob.", Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &condition}},
							},
						},
					},
				}},
				Subresources: &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: []apiextv1.CustomResourceColumnDefinition{
					{Name: "Position", Type: "integer", JSONPath: ".spec.position"},
					{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
					{Name: "Mode", Type: "string", JSONPath: ".spec.mode", Priority: 1},
				},
			}},
		},
	}
}

// knob builds a Knob called name in namespace ns with the given spec.
func knob(ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": testGroup + "/" + testVersion, "kind": "Knob", "spec": spec}}
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// kubectlEnv is a server with the knob CRD installed and a namespace for
// knobs, the client-go clients to check outcomes, and kubectl.
type kubectlEnv struct {
	*kubectlRunner
	c     *clients
	ns    string
	knobs dynamic.ResourceInterface
}

// newKubectlEnv starts a server for one kubectl test.
func newKubectlEnv(t *testing.T) *kubectlEnv {
	t.Helper()
	s := startServer(t)
	c := newClients(t, s)
	installCRD(t, c, knobCRD())
	const ns = "dials"
	createNamespace(t, c, ns)
	return &kubectlEnv{kubectlRunner: newKubectl(t, s), c: c, ns: ns, knobs: c.dynamic.Resource(knobsGVR).Namespace(ns)}
}

// kn runs kubectl in the env's namespace and returns its output.
func (e *kubectlEnv) kn(t testing.TB, args ...string) string {
	t.Helper()
	return e.run(t, append([]string{"-n", e.ns}, args...)...)
}

// createKnob creates a knob with client-go.
func (e *kubectlEnv) createKnob(t testing.TB, name string, labels map[string]string, spec map[string]any) *unstructured.Unstructured {
	t.Helper()
	u := knob(e.ns, name, spec)
	if labels != nil {
		u.SetLabels(labels)
	}
	return mustCreate(t, t.Context(), e.knobs, u)
}

// setKnobStatus replaces a knob's status through the status subresource.
func (e *kubectlEnv) setKnobStatus(t testing.TB, name string, status map[string]any) *unstructured.Unstructured {
	t.Helper()
	u := mustGet(t, t.Context(), e.knobs, name)
	u.Object["status"] = status
	got, err := e.knobs.UpdateStatus(t.Context(), u, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status of %s: %v", name, err)
	}
	return got
}

// kubectlProc is kubectl running in the background; the test reads its
// standard output line by line.
type kubectlProc struct {
	args   []string
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{} // closed once standard output is read to its end
	stderr lineLog
}

// start starts kubectl with args in the background. The process is killed
// when the test ends.
func (k *kubectlRunner) start(t testing.TB, env []string, args ...string) *kubectlProc {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	p := &kubectlProc{args: args, cmd: k.command(ctx, env, args...), lines: make(chan string), done: make(chan struct{})}
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start kubectl %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		defer close(p.done)
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		_ = p.cmd.Wait()
	})
	return p
}

// waitWatching waits until kubectl, started with -v=6, logs the answer to
// its watch request: it has read the object, and every change from then on
// reaches it.
func (p *kubectlProc) waitWatching(t testing.TB) {
	t.Helper()
	select {
	case <-p.stderr.waitFor(func(line string) bool {
		return strings.Contains(line, `"Response"`) && strings.Contains(line, "watch=true")
	}):
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl %s logged no watch within 30s; stderr:\n%s", strings.Join(p.args, " "), p.stderr.String())
	}
}

// next returns the next line kubectl prints, failing the test if it ends
// or prints nothing for 30 seconds.
func (p *kubectlProc) next(t testing.TB) string {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			err := p.cmd.Wait()
			t.Fatalf("kubectl %s ended (%v); stderr:\n%s", strings.Join(p.args, " "), err, p.stderr.String())
		}
		return line
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl %s printed nothing for 30s", strings.Join(p.args, " "))
		return ""
	}
}

// wait waits for kubectl to exit by itself and returns the lines it printed
// that were not read yet, its standard error, and how it exited.
func (p *kubectlProc) wait(t testing.TB) (rest []string, stderr string, err error) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				err := p.cmd.Wait()
				return rest, p.stderr.String(), err
			}
			rest = append(rest, line)
		case <-timeout:
			t.Fatalf("kubectl %s did not exit within a minute", strings.Join(p.args, " "))
		}
	}
}
