package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// applyWidget is an apply configuration of widget name in ns.
func applyWidget(ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": testGroup + "/" + testVersion, "kind": "Widget",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     spec,
	}}
}

// fieldOwners maps each manager/operation[/subresource] of u's
// managedFields to the fieldsV1 it owns. (Entries kubectl writes itself
// carry no time.)
func fieldOwners(t testing.TB, u *unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, e := range u.GetManagedFields() {
		key := e.Manager + "/" + string(e.Operation)
		if e.Subresource != "" {
			key += "/" + e.Subresource
		}
		var fields map[string]any
		if e.FieldsV1 != nil {
			if err := json.Unmarshal(e.FieldsV1.Raw, &fields); err != nil {
				t.Fatalf("fieldsV1 of %s: %v", key, err)
			}
		}
		if e.APIVersion != testGroup+"/"+testVersion || e.FieldsType != "FieldsV1" {
			t.Fatalf("managedFields entry %s lacks apiVersion or fieldsType: %+v", key, e)
		}
		out[key] = fields
	}
	return out
}

// ownsField reports whether fields (a fieldsV1 tree) holds path, such as
// "f:spec", "f:size".
func ownsField(fields map[string]any, path ...string) bool {
	for _, p := range path {
		next, ok := fields[p].(map[string]any)
		if !ok {
			return false
		}
		fields = next
	}
	return fields != nil
}

// TestServerSideApplyClientGo applies with client-go's dynamic client:
// create, update, a second manager's conflict (409 with a cause per
// field), force, and the status subresource.
func TestServerSideApplyClientGo(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "ssa")
	ctx := t.Context()
	cl := c.widgets("ssa")

	created, err := cl.Apply(ctx, "w1", applyWidget("ssa", "w1", map[string]any{"size": int64(3), "color": "red"}), metav1.ApplyOptions{FieldManager: "alice"})
	if err != nil {
		t.Fatalf("apply create: %v", err)
	}
	owners := fieldOwners(t, created)
	if entry := created.GetManagedFields()[0]; entry.Time == nil || time.Since(entry.Time.Time) > time.Minute {
		t.Errorf("managedFields time %v", entry.Time)
	}
	if len(owners) != 1 || !ownsField(owners["alice/Apply"], "f:spec", "f:size") || !ownsField(owners["alice/Apply"], "f:spec", "f:color") {
		t.Fatalf("after create, managedFields %v", owners)
	}
	if nested[string](t, created, "spec", "mode") != "auto" {
		t.Errorf("apply create skipped defaulting: spec %v", created.Object["spec"])
	}

	updated, err := cl.Apply(ctx, "w1", applyWidget("ssa", "w1", map[string]any{"size": int64(4), "color": "red", "tags": []any{"a"}}), metav1.ApplyOptions{FieldManager: "alice"})
	if err != nil {
		t.Fatalf("apply update: %v", err)
	}
	if nested[int64](t, updated, "spec", "size") != 4 || updated.GetGeneration() != 2 || !ownsField(fieldOwners(t, updated)["alice/Apply"], "f:spec", "f:tags") {
		t.Fatalf("after update: %v", updated.Object)
	}

	_, err = cl.Apply(ctx, "w1", applyWidget("ssa", "w1", map[string]any{"size": int64(5), "color": "blue"}), metav1.ApplyOptions{FieldManager: "bob"})
	if !apierrors.IsConflict(err) {
		t.Fatalf("conflicting apply: %v, want 409 Conflict", err)
	}
	status := err.(apierrors.APIStatus).Status()
	var fields []string
	for _, cause := range status.Details.Causes {
		if cause.Type != metav1.CauseTypeFieldManagerConflict || cause.Message != `conflict with "alice"` {
			t.Errorf("cause %+v", cause)
		}
		fields = append(fields, cause.Field)
	}
	slices.Sort(fields)
	if !slices.Equal(fields, []string{".spec.color", ".spec.size"}) {
		t.Errorf("conflict causes name %v, want .spec.color and .spec.size", fields)
	}
	if !strings.HasPrefix(status.Message, `Apply failed with 2 conflicts: conflicts with "alice":`) {
		t.Errorf("conflict message %q", status.Message)
	}
	if got := mustGet(t, ctx, cl, "w1"); got.GetResourceVersion() != updated.GetResourceVersion() {
		t.Fatal("a conflicting apply changed the object")
	}

	forced, err := cl.Apply(ctx, "w1", applyWidget("ssa", "w1", map[string]any{"size": int64(5), "color": "blue"}), metav1.ApplyOptions{FieldManager: "bob", Force: true})
	if err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	owners = fieldOwners(t, forced)
	if nested[string](t, forced, "spec", "color") != "blue" || !ownsField(owners["bob/Apply"], "f:spec", "f:color") || ownsField(owners["alice/Apply"], "f:spec", "f:color") || !ownsField(owners["alice/Apply"], "f:spec", "f:tags") {
		t.Fatalf("after force: spec %v, managedFields %v", forced.Object["spec"], owners)
	}

	st := applyWidget("ssa", "w1", nil)
	delete(st.Object, "spec")
	st.Object["status"] = map[string]any{"phase": "Ready"}
	withStatus, err := cl.ApplyStatus(ctx, "w1", st, metav1.ApplyOptions{FieldManager: "controller"})
	if err != nil {
		t.Fatalf("status apply: %v", err)
	}
	if nested[string](t, withStatus, "status", "phase") != "Ready" || !ownsField(fieldOwners(t, withStatus)["controller/Apply/status"], "f:status", "f:phase") {
		t.Fatalf("after status apply: %v", withStatus.Object)
	}

	// Dry run answers the result and stores nothing.
	dry, err := cl.Apply(ctx, "w2", applyWidget("ssa", "w2", map[string]any{"size": int64(1), "color": "green"}), metav1.ApplyOptions{FieldManager: "alice", DryRun: []string{metav1.DryRunAll}})
	if err != nil || dry.GetName() != "w2" {
		t.Fatalf("dry-run apply: %v", err)
	}
	wantNotFound(t, ctx, cl, "w2")
}

// kubectlIn returns a runner of upstream kubectl against s from dir:
// fail says the command must fail, and then its standard output and
// standard error are returned, not only the output.
func kubectlIn(t *testing.T, s *server, dir string) func(fail bool, args ...string) string {
	kubectl := buildKubectl(t)
	return func(fail bool, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", s.kubeconfig, "--cache-dir", filepath.Join(dir, "cache")}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir, "KUBECTL_EXTERNAL_DIFF=diff -u")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if fail {
			if err == nil {
				t.Fatalf("kubectl %s succeeded, want a failure; stdout:\n%s", strings.Join(args, " "), stdout.String())
			}
			return stdout.String() + stderr.String()
		}
		if err != nil {
			t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
}

// writeManifests writes name: content files into dir.
func writeManifests(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// widgetManifest is a Widget manifest in namespace ns.
func widgetManifest(ns, name, color string, size int) string {
	b, _ := json.Marshal(applyWidget(ns, name, map[string]any{"size": size, "color": color}).Object)
	return string(b)
}

// TestKubectlServerSideApply runs kubectl apply --server-side twice, a
// second manager's conflicting apply and --force-conflicts. The CRD and
// the namespace are applied server-side too.
func TestKubectlServerSideApply(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	dir := t.TempDir()
	kubectl := kubectlIn(t, s, dir)
	crd := widgetCRD()
	crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
	crdMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
	if err != nil {
		t.Fatal(err)
	}
	delete(crdMap, "status")
	unstructured.RemoveNestedField(crdMap, "metadata", "creationTimestamp")
	crdJSON, err := json.Marshal(crdMap)
	if err != nil {
		t.Fatal(err)
	}
	writeManifests(t, dir, map[string]string{
		"crd.yaml":  string(crdJSON),
		"ns.yaml":   `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ssa","labels":{"team":"a"}}}`,
		"red.yaml":  widgetManifest("ssa", "w1", "red", 3),
		"blue.yaml": widgetManifest("ssa", "w1", "blue", 3),
	})
	want := func(out string, parts ...string) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(out, p) {
				t.Errorf("kubectl output lacks %q:\n%s", p, out)
			}
		}
	}
	for range 2 {
		want(kubectl(false, "apply", "--server-side", "-f", "crd.yaml"), "customresourcedefinition.apiextensions.k8s.io/"+widgetsCRD+" serverside-applied")
		want(kubectl(false, "apply", "--server-side", "-f", "ns.yaml"), "namespace/ssa serverside-applied")
	}
	waitEstablished(t, c, crd)
	ns, err := c.core.CoreV1().Namespaces().Get(t.Context(), "ssa", metav1.GetOptions{})
	if err != nil || ns.Labels["team"] != "a" || len(ns.ManagedFields) != 1 || ns.ManagedFields[0].Manager != "kubectl" || ns.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Fatalf("namespace applied server-side: %v %+v", err, ns)
	}

	want(kubectl(false, "apply", "--server-side", "-f", "red.yaml"), "widget."+testGroup+"/w1 serverside-applied")
	first := mustGet(t, t.Context(), c.widgets("ssa"), "w1")
	want(kubectl(false, "apply", "--server-side", "-f", "red.yaml"), "widget."+testGroup+"/w1 serverside-applied")
	second := mustGet(t, t.Context(), c.widgets("ssa"), "w1")
	if second.GetResourceVersion() != first.GetResourceVersion() {
		t.Errorf("a repeated server-side apply wrote: resourceVersion %s then %s", first.GetResourceVersion(), second.GetResourceVersion())
	}
	owners := fieldOwners(t, second)
	if len(owners) != 1 || !ownsField(owners["kubectl/Apply"], "f:spec", "f:color") {
		t.Fatalf("managedFields after kubectl apply --server-side: %v", owners)
	}

	stderr := kubectl(true, "apply", "--server-side", "--field-manager", "other", "-f", "blue.yaml")
	want(stderr, "Apply failed with 1 conflict", `conflict with "kubectl"`, ".spec.color")
	if got := mustGet(t, t.Context(), c.widgets("ssa"), "w1"); nested[string](t, got, "spec", "color") != "red" {
		t.Fatalf("a conflicting apply changed color to %v", got.Object["spec"])
	}

	want(kubectl(false, "apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", "blue.yaml"), "serverside-applied")
	got := mustGet(t, t.Context(), c.widgets("ssa"), "w1")
	owners = fieldOwners(t, got)
	if nested[string](t, got, "spec", "color") != "blue" || !ownsField(owners["other/Apply"], "f:spec", "f:color") || ownsField(owners["kubectl/Apply"], "f:spec", "f:color") || !ownsField(owners["kubectl/Apply"], "f:spec", "f:size") {
		t.Fatalf("after --force-conflicts: spec %v, managedFields %v", got.Object["spec"], owners)
	}

	// kubectl diff --server-side dry-runs the apply: exit 1 on a change,
	// and nothing written.
	writeManifests(t, dir, map[string]string{"green.yaml": widgetManifest("ssa", "w1", "green", 3)})
	want(kubectl(true, "diff", "--server-side", "--field-manager", "other", "-f", "green.yaml"), "-  color: blue", "+  color: green")
	if after := mustGet(t, t.Context(), c.widgets("ssa"), "w1"); after.GetResourceVersion() != got.GetResourceVersion() {
		t.Fatalf("kubectl diff --server-side wrote")
	}
}

// TestKubectlApplyClientToServerSide applies with client-side kubectl apply
// three times, then with --server-side: kubectl migrates the client-side
// manager's fields to its apply manager, so there is no conflict, and the
// server keeps last-applied-configuration current.
func TestKubectlApplyClientToServerSide(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "csa")
	dir := t.TempDir()
	kubectl := kubectlIn(t, s, dir)
	steps := []struct{ color string }{{"red"}, {"green"}, {"blue"}}
	for i, step := range steps {
		writeManifests(t, dir, map[string]string{"w.yaml": widgetManifest("csa", "w1", step.color, 2)})
		out := kubectl(false, "apply", "-f", "w.yaml")
		verb := "configured"
		if i == 0 {
			verb = "created"
		}
		if !strings.Contains(out, "widget."+testGroup+"/w1 "+verb) {
			t.Fatalf("client-side apply %d: %s", i+1, out)
		}
	}
	got := mustGet(t, t.Context(), c.widgets("csa"), "w1")
	if nested[string](t, got, "spec", "color") != "blue" || !ownsField(fieldOwners(t, got)["kubectl-client-side-apply/Update"], "f:spec", "f:color") {
		t.Fatalf("after three client-side applies: spec %v, managedFields %v", got.Object["spec"], fieldOwners(t, got))
	}

	writeManifests(t, dir, map[string]string{"w.yaml": widgetManifest("csa", "w1", "blue", 4)})
	if out := kubectl(false, "apply", "--server-side", "-f", "w.yaml"); !strings.Contains(out, "serverside-applied") {
		t.Fatalf("server-side apply after client-side: %s", out)
	}
	got = mustGet(t, t.Context(), c.widgets("csa"), "w1")
	owners := fieldOwners(t, got)
	if nested[int64](t, got, "spec", "size") != 4 || !ownsField(owners["kubectl/Apply"], "f:spec", "f:color") || !ownsField(owners["kubectl/Apply"], "f:spec", "f:size") {
		t.Fatalf("after the server-side apply: spec %v, managedFields %v", got.Object["spec"], owners)
	}
	if _, ok := owners["kubectl-client-side-apply/Update"]; ok {
		t.Errorf("the client-side manager survived the migration: %v", owners)
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(got.GetAnnotations()["kubectl.kubernetes.io/last-applied-configuration"]), &last); err != nil {
		t.Fatalf("last-applied-configuration: %v", err)
	}
	if spec, _ := last["spec"].(map[string]any); spec["size"] != float64(4) {
		t.Errorf("last-applied-configuration not updated by the server-side apply: %v", last)
	}
	// A client-side apply still works afterwards.
	writeManifests(t, dir, map[string]string{"w.yaml": widgetManifest("csa", "w1", "red", 4)})
	kubectl(false, "apply", "-f", "w.yaml")
	if got := mustGet(t, t.Context(), c.widgets("csa"), "w1"); nested[string](t, got, "spec", "color") != "red" {
		t.Fatalf("client-side apply after server-side: spec %v", got.Object["spec"])
	}
}
