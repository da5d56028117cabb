package cli_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/setpoint/setpoint/internal/cli"
	"github.com/setpoint/setpoint/internal/server"
)

var widgetsGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

// startServer runs a real server on a temporary data directory and returns
// the path of the kubeconfig it wrote.
func startServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	srv, err := server.New(server.Config{
		DataDir:        dir,
		Listen:         "127.0.0.1:0",
		KubeconfigPath: kubeconfig,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("server.Run: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server stopped before it was ready: %v", err)
	}
	return kubeconfig
}

// setpoint runs the CLI in-process with args and stdin, against the server
// of kubeconfig (when not empty), and returns its output and error.
func setpoint(ctx context.Context, kubeconfig, stdin string, out io.Writer, args ...string) (stderr string, err error) {
	if kubeconfig != "" {
		args = append(args, "--kubeconfig", kubeconfig)
	}
	var errOut strings.Builder
	root := cli.NewRootCommand(cli.Env{
		In:     strings.NewReader(stdin),
		Out:    out,
		ErrOut: &errOut,
		Getenv: func(string) string { return "" },
	})
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return errOut.String(), err
}

// run runs the CLI and fails the test if it fails.
func run(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	var out strings.Builder
	stderr, err := setpoint(t.Context(), kubeconfig, "", &out, args...)
	if err != nil {
		t.Fatalf("setpoint %s: %s\nstderr: %s", strings.Join(args, " "), cli.FormatError(err), stderr)
	}
	return out.String()
}

// runFails runs the CLI, expects it to fail, and returns the message main
// would print.
func runFails(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	var out strings.Builder
	_, err := setpoint(t.Context(), kubeconfig, "", &out, args...)
	if err == nil {
		t.Fatalf("setpoint %s succeeded, want an error; output:\n%s", strings.Join(args, " "), out.String())
	}
	return cli.FormatError(err)
}

func dynamicClient(t *testing.T, kubeconfig string) dynamic.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

const namespaceAndCRD = `apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    listKind: WidgetList
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
              owner: {type: string}
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
`

const widgetsV1 = `apiVersion: example.com/v1
kind: Widget
metadata:
  name: a
  namespace: team
  labels: {app: web}
spec:
  size: 1
  color: red
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: b
  namespace: team
  labels: {app: db}
spec:
  size: 20
`

const widgetC = `{"apiVersion": "example.com/v1", "kind": "Widget",
 "metadata": {"name": "c", "namespace": "team", "labels": {"app": "cache"}},
 "spec": {"size": 300}}`

// widgetsV2 grows a and drops its color.
const widgetsV2 = `apiVersion: example.com/v1
kind: Widget
metadata:
  name: a
  namespace: team
  labels: {app: web}
spec:
  size: 2
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: b
  namespace: team
  labels: {app: db}
spec:
  size: 20
`

func TestApplyGetDelete(t *testing.T) {
	kubeconfig := startServer(t)
	dc := dynamicClient(t, kubeconfig)
	widgets := dc.Resource(widgetsGVR).Namespace("team")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "setup.yaml"), namespaceAndCRD)
	manifests := filepath.Join(dir, "widgets")
	writeFile(t, filepath.Join(manifests, "ab.yaml"), widgetsV1)
	writeFile(t, filepath.Join(manifests, "more", "c.json"), widgetC)

	t.Run("apply_creates", func(t *testing.T) {
		out := run(t, kubeconfig, "apply", "-f", filepath.Join(dir, "setup.yaml"), "-f", manifests)
		want := "namespace/team created\n" +
			"customresourcedefinition.apiextensions.k8s.io/widgets.example.com created\n" +
			"widget.example.com/a created\n" +
			"widget.example.com/b created\n" +
			"widget.example.com/c created\n"
		if out != want {
			t.Fatalf("apply output:\n%s\nwant:\n%s", out, want)
		}
		a, err := widgets.Get(t.Context(), "a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if color, _, _ := unstructured.NestedString(a.Object, "spec", "color"); color != "red" {
			t.Errorf("a.spec.color = %q, want red", color)
		}
		if _, ok := a.GetAnnotations()["kubectl.kubernetes.io/last-applied-configuration"]; !ok {
			t.Error("a has no last-applied-configuration annotation")
		}
	})

	t.Run("apply_configures", func(t *testing.T) {
		// Someone else sets a field the manifest does not manage: a
		// three-way merge keeps it.
		patch := []byte(`{"spec":{"owner":"ops"}}`)
		if _, err := widgets.Patch(t.Context(), "a", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(manifests, "ab.yaml"), widgetsV2)
		out := run(t, kubeconfig, "apply", "-f", manifests)
		want := "widget.example.com/a configured\n" +
			"widget.example.com/b unchanged\n" +
			"widget.example.com/c unchanged\n"
		if out != want {
			t.Fatalf("apply output:\n%s\nwant:\n%s", out, want)
		}
		a, err := widgets.Get(t.Context(), "a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec, _, _ := unstructured.NestedMap(a.Object, "spec")
		if spec["size"] != int64(2) || spec["owner"] != "ops" {
			t.Errorf("a.spec = %v, want size 2 and owner kept", spec)
		}
		if _, ok := spec["color"]; ok {
			t.Errorf("a.spec.color = %v, want it removed with the manifest's field", spec["color"])
		}
	})

	t.Run("apply_unchanged", func(t *testing.T) {
		out := run(t, kubeconfig, "apply", "-f", manifests, "-f", filepath.Join(dir, "setup.yaml"))
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasSuffix(line, " unchanged") {
				t.Errorf("third apply: %q, want unchanged", line)
			}
		}
	})

	t.Run("apply_stdin", func(t *testing.T) {
		var out strings.Builder
		stdin := strings.Replace(widgetC, `"c"`, `"d"`, 1)
		if stderr, err := setpoint(t.Context(), kubeconfig, stdin, &out, "apply", "-f", "-"); err != nil {
			t.Fatalf("apply -f -: %v\n%s", err, stderr)
		}
		if out.String() != "widget.example.com/d created\n" {
			t.Errorf("apply -f - output %q", out.String())
		}
	})

	t.Run("get_table", func(t *testing.T) {
		out := run(t, kubeconfig, "get", "widgets", "-n", "team")
		checkTable(t, out, []string{"NAME", "SIZE"}, "a 2", "b 20", "c 300", "d 300")
		for _, resource := range []string{"widget", "wd", "Widget", "widgets.example.com", "widget.v1.example.com"} {
			out := run(t, kubeconfig, "get", resource, "a", "-n", "team")
			checkTable(t, out, []string{"NAME", "SIZE"}, "a 2")
		}
		out = run(t, kubeconfig, "get", "widgets", "-A", "-l", "app in (web,db)")
		checkTable(t, out, []string{"NAMESPACE", "NAME", "SIZE"}, "team a 2", "team b 20")
		out = run(t, kubeconfig, "get", "widgets", "-n", "team", "--field-selector", "metadata.name=c")
		checkTable(t, out, []string{"NAME", "SIZE"}, "c 300")
		out = run(t, kubeconfig, "get", "namespaces", "team")
		checkTable(t, out, nil, "team")
	})

	t.Run("get_yaml_json_name", func(t *testing.T) {
		var a map[string]any
		if err := yaml.Unmarshal([]byte(run(t, kubeconfig, "get", "widget", "a", "-n", "team", "-o", "yaml")), &a); err != nil {
			t.Fatal(err)
		}
		if size, _, _ := unstructured.NestedFloat64(a, "spec", "size"); size != 2 {
			t.Errorf("-o yaml: spec.size = %v in %v", size, a)
		}
		var list map[string]any
		if err := yaml.Unmarshal([]byte(run(t, kubeconfig, "get", "widgets", "-n", "team", "-l", "app=db", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		items, _, _ := unstructured.NestedSlice(list, "items")
		if list["kind"] != "List" || len(items) != 1 {
			t.Errorf("-o json -l app=db: %v, want a List of b", list)
		}
		if out := run(t, kubeconfig, "get", "widgets", "-n", "team", "-l", "app=web", "-o", "name"); out != "widget.example.com/a\n" {
			t.Errorf("-o name: %q", out)
		}
	})

	t.Run("get_watch", func(t *testing.T) {
		testWatch(t, kubeconfig, widgets, false)
	})
	t.Run("get_watch_only", func(t *testing.T) {
		testWatch(t, kubeconfig, widgets, true)
	})

	t.Run("delete_by_name", func(t *testing.T) {
		out := run(t, kubeconfig, "delete", "widgets", "a", "-n", "team")
		if out != "widget.example.com \"a\" deleted\n" {
			t.Errorf("delete output %q", out)
		}
		checkGone(t, widgets, "a")
	})
	t.Run("delete_by_file", func(t *testing.T) {
		out := run(t, kubeconfig, "delete", "-f", filepath.Join(manifests, "more"))
		if out != "widget.example.com \"c\" deleted\n" {
			t.Errorf("delete output %q", out)
		}
		checkGone(t, widgets, "c")
	})
	t.Run("delete_by_selector", func(t *testing.T) {
		out := run(t, kubeconfig, "delete", "wd", "-n", "team", "-l", "app=db")
		if out != "widget.example.com \"b\" deleted\n" {
			t.Errorf("delete output %q", out)
		}
		checkGone(t, widgets, "b")
		if _, err := widgets.Get(t.Context(), "d", metav1.GetOptions{}); err != nil {
			t.Errorf("d, not selected, is gone: %v", err)
		}
	})

	t.Run("bad_input", func(t *testing.T) {
		before, err := widgets.List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(dir, "bad.yaml")
		writeFile(t, bad, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: z, namespace: team}\n---\nkind: [\n")
		unknownKind := filepath.Join(dir, "unknown.yaml")
		writeFile(t, unknownKind, "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: z, namespace: team}\n")
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"unknown_resource", []string{"get", "gizmos"}, `error: the server doesn't have a resource type "gizmos"`},
			{"missing_object", []string{"get", "widgets", "nope", "-n", "team"}, `Error from server (NotFound): widgets.example.com "nope" not found`},
			{"delete_missing_object", []string{"delete", "widgets", "nope", "-n", "team"}, `Error from server (NotFound): widgets.example.com "nope" not found`},
			{"missing_file", []string{"apply", "-f", filepath.Join(dir, "missing.yaml")}, "missing.yaml: no such file or directory"},
			{"invalid_yaml", []string{"apply", "-f", bad}, "bad.yaml: document 2: invalid YAML"},
			{"bad_selector", []string{"get", "widgets", "-l", "a in in"}, "Error from server (BadRequest)"},
			{"no_resource", []string{"get"}, "example:"},
			{"apply_without_files", []string{"apply"}, "example:"},
			{"bad_output", []string{"get", "widgets", "-o", "xml"}, `unknown output format "xml"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := runFails(t, kubeconfig, tt.args...); !strings.Contains(got, tt.want) {
					t.Errorf("error %q, want it to contain %q", got, tt.want)
				}
			})
		}
		after, err := widgets.List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if before.GetResourceVersion() != after.GetResourceVersion() || len(after.Items) != len(before.Items) {
			t.Errorf("bad input changed the widgets: %d items at %s, then %d at %s",
				len(before.Items), before.GetResourceVersion(), len(after.Items), after.GetResourceVersion())
		}
	})
}

// testWatch runs "get widgets -w" (or --watch-only), creates a widget and
// waits for its row to be printed.
func testWatch(t *testing.T, kubeconfig string, widgets dynamic.ResourceInterface, watchOnly bool) {
	name, flag := "watched", "-w"
	if watchOnly {
		name, flag = "watched-only", "--watch-only"
	}
	out := newLineWaiter()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := setpoint(ctx, kubeconfig, "", out, "get", "widgets", "-n", "team", flag)
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("get %s: %v", flag, err)
		}
	}()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": name, "namespace": "team"},
		"spec":     map[string]any{"size": int64(7)},
	}}
	if !watchOnly {
		// Once the list is printed, the watch resumes from its revision:
		// a create after this point is always seen.
		out.waitFor(t, regexp.MustCompile(`(?m)^d\s+300\s`))
		if _, err := widgets.Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		out.waitFor(t, regexp.MustCompile(`(?m)^`+name+`\s+7\s`))
	} else {
		// --watch-only prints nothing until an event arrives, so there is
		// no sign that the watch has started: change the widget until a
		// change shows up.
		if _, err := widgets.Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(waitTimeout)
		for size := 8; ; size++ {
			patch := []byte(fmt.Sprintf(`{"spec":{"size":%d}}`, size))
			if _, err := widgets.Patch(t.Context(), name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			if out.waitUntil(regexp.MustCompile(fmt.Sprintf(`(?m)^%s\s+%d\s`, name, size)), 200*time.Millisecond) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("get --watch-only printed no change in %v:\n%s", waitTimeout, out.String())
			}
		}
		if regexp.MustCompile(`(?m)^d\s`).MatchString(out.String()) {
			t.Errorf("--watch-only printed the initial list:\n%s", out.String())
		}
	}
	if err := widgets.Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitTimeout bounds waits for output that an event should produce.
const waitTimeout = 15 * time.Second

// lineWaiter is an io.Writer whose content a test can wait on.
type lineWaiter struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{}
}

func newLineWaiter() *lineWaiter {
	return &lineWaiter{changed: make(chan struct{}, 1)}
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitUntil reports whether the output matches re within timeout.
func (w *lineWaiter) waitUntil(re *regexp.Regexp, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for !re.MatchString(w.String()) {
		select {
		case <-w.changed:
		case <-timer.C:
			return false
		}
	}
	return true
}

func (w *lineWaiter) waitFor(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	if !w.waitUntil(re, waitTimeout) {
		t.Fatalf("output does not match %s after %v:\n%s", re, waitTimeout, w.String())
	}
}

// checkTable checks a table's header (when header is not nil) and that its
// rows start with the fields of rows, in order.
func checkTable(t *testing.T, out string, header []string, rows ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != len(rows)+1 {
		t.Fatalf("table has %d rows, want %d:\n%s", len(lines)-1, len(rows), out)
	}
	if header != nil && strings.Join(strings.Fields(lines[0]), " ") != strings.Join(header, " ") {
		t.Errorf("header %q, want %q", lines[0], header)
	}
	for i, row := range rows {
		if got := strings.Join(strings.Fields(lines[i+1]), " "); !strings.HasPrefix(got+" ", row+" ") {
			t.Errorf("row %d is %q, want it to start with %q", i+1, lines[i+1], row)
		}
	}
}

func checkGone(t *testing.T, widgets dynamic.ResourceInterface, name string) {
	t.Helper()
	if _, err := widgets.Get(t.Context(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete, get %s: %v, want NotFound", name, err)
	}
}

func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	banner := newLineWaiter()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		root := cli.NewRootCommand(cli.Env{
			In: strings.NewReader(""), Out: io.Discard, ErrOut: banner,
			Getenv: func(k string) string {
				return map[string]string{"SETPOINT_DATA_DIR": dir, "SETPOINT_LOG_LEVEL": "error"}[k]
			},
		})
		root.SetArgs([]string{"serve", "--listen", "127.0.0.1:0"})
		done <- root.ExecuteContext(ctx)
	}()
	export := regexp.MustCompile(`export KUBECONFIG=(\S+)`)
	banner.waitFor(t, export)
	kubeconfig := export.FindStringSubmatch(banner.String())[1]
	if want := filepath.Join(dir, "kubeconfig"); kubeconfig != want {
		t.Errorf("banner names kubeconfig %s, want %s", kubeconfig, want)
	}
	for _, want := range []string{"kubectl get namespaces", "setpoint get"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner does not mention %q:\n%s", want, banner.String())
		}
	}
	run(t, kubeconfig, "get", "customresourcedefinitions")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
