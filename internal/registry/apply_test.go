package registry_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/registry"
)

// thingSchema exercises what server-side apply reads from a schema: a
// list of maps keyed by name, a set, an atomic list, an atomic map, a
// subtree keeping unknown fields, int-or-string and an embedded object.
const thingSchema = `{"openAPIV3Schema": {"type": "object", "properties": {
  "spec": {"type": "object", "properties": {
    "size": {"type": "integer"},
    "color": {"type": "string"},
    "port": {"x-kubernetes-int-or-string": true},
    "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
      "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
    "args": {"type": "array", "items": {"type": "string"}},
    "selector": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}},
    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    "template": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"data": {"type": "string"}}}
  }},
  "status": {"type": "object", "properties": {"ready": {"type": "boolean"}, "phase": {"type": "string"}}}
}}}`

// thingCRD is example.com Thing, namespaced, with the status subresource,
// served as v1 (stored) and v1beta1 with the same schema.
func thingCRD(t testing.TB) *unstructured.Unstructured {
	t.Helper()
	var schema map[string]any
	if err := json.Unmarshal([]byte(thingSchema), &schema); err != nil {
		t.Fatal(err)
	}
	version := func(name string, storage bool) map[string]any {
		return map[string]any{"name": name, "served": true, "storage": storage, "schema": schema,
			"subresources": map[string]any{"status": map[string]any{}}}
	}
	return obj(map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "things.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names":    map[string]any{"plural": "things", "kind": "Thing"},
			"versions": []any{version("v1", true), version("v1beta1", false)},
		},
	})
}

// things installs the Thing CRD and returns its v1 resource.
func (e *env) things(t testing.TB) *registry.Resource {
	t.Helper()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	if _, err := e.reg.Create(t.Context(), crds, "", thingCRD(t), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return e.lookup(t, "example.com", "v1", "things")
}

// apply sends an apply configuration (YAML) as manager.
func (e *env) apply(t testing.TB, res *registry.Resource, name, manager, config string, force bool) (registry.Result, error) {
	t.Helper()
	return e.reg.Patch(t.Context(), res, "default", name, types.ApplyYAMLPatchType, []byte(config), registry.WriteOptions{FieldManager: manager, Force: force})
}

// mustApply is apply that must succeed.
func (e *env) mustApply(t testing.TB, res *registry.Resource, name, manager, config string, force bool) *unstructured.Unstructured {
	t.Helper()
	r, err := e.apply(t, res, name, manager, config, force)
	if err != nil {
		t.Fatalf("apply by %s: %v", manager, err)
	}
	return r.Object
}

// managers summarises managedFields: manager/operation[/subresource] to
// the fields owned (fieldsV1 as JSON).
func managers(t testing.TB, o *unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range o.GetManagedFields() {
		key := m.Manager + "/" + string(m.Operation)
		if m.Subresource != "" {
			key += "/" + m.Subresource
		}
		// Entries carry a time, but for managers first seen through
		// the scale subresource, as in Kubernetes.
		if m.FieldsType != "FieldsV1" || m.FieldsV1 == nil || m.APIVersion == "" || (m.Time == nil && m.Subresource != "scale") {
			t.Fatalf("entry %s lacks fieldsType, fieldsV1, time or apiVersion: %+v", key, m)
		}
		out[key] = string(m.FieldsV1.Raw)
	}
	return out
}

// owns reports whether the fields JSON of an entry owns every path (a
// path is a list of keys such as "f:spec", "f:size").
func owns(t testing.TB, fields string, path ...string) bool {
	t.Helper()
	if fields == "" {
		return false
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(fields), &m); err != nil {
		t.Fatal(err)
	}
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			return false
		}
		m = next
	}
	return true
}

func TestManagedFieldsOnWrites(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.things(t)
	created, err := e.reg.Create(ctx, res, "default", obj(map[string]any{
		"apiVersion": "example.com/v1", "kind": "Thing",
		"metadata": map[string]any{"name": "t1", "labels": map[string]any{"a": "b"}},
		"spec":     map[string]any{"size": int64(1)},
		"status":   map[string]any{"ready": true},
	}), registry.WriteOptions{FieldManager: "creator"})
	if err != nil {
		t.Fatal(err)
	}
	got := managers(t, created.Object)
	if len(got) != 1 || !owns(t, got["creator/Update"], "f:spec", "f:size") || !owns(t, got["creator/Update"], "f:metadata", "f:labels", "f:a") {
		t.Fatalf("after create: %v", got)
	}
	if owns(t, got["creator/Update"], "f:status") {
		t.Fatalf("create owns the status it cannot set: %v", got)
	}
	if e := created.Object.GetManagedFields()[0]; e.APIVersion != "example.com/v1" {
		t.Fatalf("apiVersion %q", e.APIVersion)
	}

	u := created.Object.DeepCopy()
	unstructured.SetNestedField(u.Object, "blue", "spec", "color")
	updated, err := e.reg.Update(ctx, res, "default", "t1", u, registry.WriteOptions{FieldManager: "updater"})
	if err != nil {
		t.Fatal(err)
	}
	got = managers(t, updated.Object)
	if !owns(t, got["updater/Update"], "f:spec", "f:color") || owns(t, got["updater/Update"], "f:spec", "f:size") || !owns(t, got["creator/Update"], "f:spec", "f:size") {
		t.Fatalf("after update: %v", got)
	}

	s := updated.Object.DeepCopy()
	unstructured.SetNestedField(s.Object, "Running", "status", "phase")
	status, err := e.reg.Update(ctx, res, "default", "t1", s, registry.WriteOptions{FieldManager: "controller", Subresource: "status"})
	if err != nil {
		t.Fatal(err)
	}
	got = managers(t, status.Object)
	if !owns(t, got["controller/Update/status"], "f:status", "f:phase") || len(got) != 3 {
		t.Fatalf("after status update: %v", got)
	}

	patched, err := e.reg.Patch(ctx, res, "default", "t1", types.MergePatchType, []byte(`{"spec":{"size":5}}`), registry.WriteOptions{FieldManager: "patcher"})
	if err != nil {
		t.Fatal(err)
	}
	got = managers(t, patched.Object)
	if !owns(t, got["patcher/Update"], "f:spec", "f:size") || owns(t, got["creator/Update"], "f:spec", "f:size") {
		t.Fatalf("after merge patch: %v", got)
	}

	// The stored object carries them, not only the answer.
	stored, err := e.reg.Get(ctx, res, "default", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(managers(t, stored), got) {
		t.Fatalf("stored %v, answered %v", managers(t, stored), got)
	}

	// Built-in types without a schema are tracked too.
	ns := e.lookup(t, "", "v1", "namespaces")
	n, err := e.reg.Create(ctx, ns, "", obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "tracked"}}), registry.WriteOptions{FieldManager: "kubectl-create"})
	if err != nil {
		t.Fatal(err)
	}
	if got := managers(t, n.Object); got["kubectl-create/Update"] == "" {
		t.Fatalf("namespace managedFields %v", got)
	}
}

func TestApplyCreateUpdateConflictForce(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.things(t)
	const first = `apiVersion: example.com/v1
kind: Thing
metadata:
  name: t1
  labels: {app: demo}
spec:
  size: 1
  port: http
  ports: [{name: http, port: 80}]
  tags: [a]
  args: [x1, x2]
  selector: {k: v}
  extra: {anything: {goes: here}}
  template: {apiVersion: v1, kind: ConfigMap, metadata: {name: inner}, data: d}
`
	r, err := e.apply(t, res, "t1", "alice", first, false)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created || r.Object.GetUID() == "" || r.Object.GetGeneration() != 1 {
		t.Fatalf("apply did not create: created=%v %v", r.Created, r.Object.Object)
	}
	got := managers(t, r.Object)
	if len(got) != 1 || !owns(t, got["alice/Apply"], "f:spec", "f:ports", `k:{"name":"http"}`, "f:port") ||
		!owns(t, got["alice/Apply"], "f:spec", "f:tags", `v:"a"`) || !owns(t, got["alice/Apply"], "f:spec", "f:extra", "f:anything", "f:goes") ||
		!owns(t, got["alice/Apply"], "f:spec", "f:template", "f:metadata", "f:name") {
		t.Fatalf("after create: %v", got)
	}

	// Applying the same configuration again changes nothing.
	again := e.mustApply(t, res, "t1", "alice", first, false)
	if again.GetResourceVersion() != r.Object.GetResourceVersion() {
		t.Fatalf("a repeated apply wrote: rv %s then %s", r.Object.GetResourceVersion(), again.GetResourceVersion())
	}

	// Another manager adds to the list map and the set: both merge.
	o := e.mustApply(t, res, "t1", "bob", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"ports":[{"name":"https","port":443}],"tags":["b"]}}`, false)
	ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
	tags, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "tags")
	if len(ports) != 2 || !slices.Equal(tags, []string{"a", "b"}) {
		t.Fatalf("merge of list map and set: ports %v tags %v", ports, tags)
	}

	// Conflicts: scalar, atomic list and atomic map owned by alice.
	_, err = e.apply(t, res, "t1", "bob", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":2,"args":["z"],"selector":{"k":"w"}}}`, false)
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	status := err.(*apierrors.StatusError).ErrStatus
	var fields []string
	for _, c := range status.Details.Causes {
		if c.Type != metav1.CauseTypeFieldManagerConflict || c.Message != `conflict with "alice"` {
			t.Fatalf("cause %+v", c)
		}
		fields = append(fields, c.Field)
	}
	slices.Sort(fields)
	if !slices.Equal(fields, []string{".spec.args", ".spec.selector", ".spec.size"}) {
		t.Fatalf("conflicting fields %v", fields)
	}
	if !strings.HasPrefix(status.Message, "Apply failed with 3 conflicts: conflicts with \"alice\":") {
		t.Fatalf("message %q", status.Message)
	}
	if cur, _ := e.reg.Get(ctx, res, "default", "t1"); cur.GetResourceVersion() != o.GetResourceVersion() {
		t.Fatal("a conflicting apply wrote")
	}

	// force takes the fields.
	o = e.mustApply(t, res, "t1", "bob", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":2}}`, true)
	got = managers(t, o)
	if size, _, _ := unstructured.NestedInt64(o.Object, "spec", "size"); size != 2 || !owns(t, got["bob/Apply"], "f:spec", "f:size") || owns(t, got["alice/Apply"], "f:spec", "f:size") {
		t.Fatalf("after force: size %d, %v", size, got)
	}
	if o.GetGeneration() != 3 {
		t.Fatalf("generation %d", o.GetGeneration())
	}

	// bob applying without ports and tags drops what only bob owned.
	o = e.mustApply(t, res, "t1", "bob", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":2}}`, false)
	ports, _, _ = unstructured.NestedSlice(o.Object, "spec", "ports")
	tags, _, _ = unstructured.NestedStringSlice(o.Object, "spec", "tags")
	if len(ports) != 1 || !slices.Equal(tags, []string{"a"}) {
		t.Fatalf("fields bob dropped remain: ports %v tags %v", ports, tags)
	}

	// An Update of a field an applier owns takes it over without conflict.
	u := o.DeepCopy()
	unstructured.SetNestedField(u.Object, int64(9), "spec", "size")
	up, err := e.reg.Update(ctx, res, "default", "t1", u, registry.WriteOptions{FieldManager: "editor"})
	if err != nil {
		t.Fatal(err)
	}
	got = managers(t, up.Object)
	if !owns(t, got["editor/Update"], "f:spec", "f:size") || owns(t, got["bob/Apply"], "f:spec", "f:size") {
		t.Fatalf("after update: %v", got)
	}
	_, err = e.apply(t, res, "t1", "bob", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":3}}`, false)
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	if msg := err.(*apierrors.StatusError).ErrStatus.Message; msg != `Apply failed with 1 conflict: conflict with "editor" using example.com/v1: .spec.size` {
		t.Fatalf("message %q", msg)
	}
}

func TestApplyStatusDryRunAndVersions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.things(t)
	base := `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":1},"status":{"ready":true}}`
	o := e.mustApply(t, res, "t1", "alice", base, false)
	if _, ok := o.Object["status"]; ok {
		t.Fatal("apply to the main resource set status")
	}
	if owns(t, managers(t, o)["alice/Apply"], "f:status") {
		t.Fatal("main resource apply owns status")
	}

	// The status subresource: only status changes, tracked as such.
	r, err := e.reg.Patch(ctx, res, "default", "t1", types.ApplyYAMLPatchType,
		[]byte(`{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":50},"status":{"phase":"Up"}}`),
		registry.WriteOptions{FieldManager: "ctrl", Subresource: "status"})
	if err != nil {
		t.Fatal(err)
	}
	if phase, _, _ := unstructured.NestedString(r.Object.Object, "status", "phase"); phase != "Up" {
		t.Fatalf("status %v", r.Object.Object["status"])
	}
	if size, _, _ := unstructured.NestedInt64(r.Object.Object, "spec", "size"); size != 1 {
		t.Fatalf("status apply changed spec.size to %d", size)
	}
	got := managers(t, r.Object)
	if !owns(t, got["ctrl/Apply/status"], "f:status", "f:phase") || owns(t, got["ctrl/Apply/status"], "f:spec") {
		t.Fatalf("after status apply: %v", got)
	}
	// Applying status of an object that does not exist is 404: the status
	// subresource does not create.
	_, err = e.reg.Patch(ctx, res, "default", "nope", types.ApplyYAMLPatchType, []byte(`{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"nope"}}`), registry.WriteOptions{FieldManager: "ctrl", Subresource: "status"})
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)

	// Dry run: neither a create nor an update is stored.
	dry, err := e.reg.Patch(ctx, res, "default", "dry", types.ApplyYAMLPatchType, []byte(`{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"dry"},"spec":{"size":1}}`), registry.WriteOptions{FieldManager: "a", DryRun: true})
	if err != nil || !dry.Created || len(dry.Object.GetManagedFields()) != 1 {
		t.Fatal(dry.Object, err)
	}
	_, err = e.reg.Get(ctx, res, "default", "dry")
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
	before, _ := e.reg.Get(ctx, res, "default", "t1")
	if _, err := e.reg.Patch(ctx, res, "default", "t1", types.ApplyYAMLPatchType, []byte(`{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":7}}`), registry.WriteOptions{FieldManager: "alice", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if after, _ := e.reg.Get(ctx, res, "default", "t1"); after.GetResourceVersion() != before.GetResourceVersion() {
		t.Fatal("dry-run apply wrote")
	}

	// Another served version: managers of both versions are kept and
	// conflict with each other.
	beta := e.lookup(t, "example.com", "v1beta1", "things")
	_, err = e.apply(t, beta, "t1", "betty", `{"apiVersion":"example.com/v1beta1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":3}}`, false)
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	o = e.mustApply(t, beta, "t1", "betty", `{"apiVersion":"example.com/v1beta1","kind":"Thing","metadata":{"name":"t1"},"spec":{"color":"red"}}`, false)
	got = managers(t, o)
	if !owns(t, got["alice/Apply"], "f:spec", "f:size") || !owns(t, got["betty/Apply"], "f:spec", "f:color") {
		t.Fatalf("after apply through v1beta1: %v", got)
	}
	for _, m := range o.GetManagedFields() {
		if want := map[string]string{"alice": "example.com/v1", "betty": "example.com/v1beta1", "ctrl": "example.com/v1"}[m.Manager]; m.APIVersion != want {
			t.Fatalf("%s recorded with %s", m.Manager, m.APIVersion)
		}
	}
}

func TestApplyBadInput(t *testing.T) {
	e := newEnv(t)
	res := e.things(t)
	e.mustApply(t, res, "t1", "alice", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":1}}`, false)
	cases := []struct {
		name, target, config string
		code                 int32
		reason               metav1.StatusReason
		message              string
	}{
		{"not_yaml", "t1", "{", http.StatusBadRequest, metav1.StatusReasonBadRequest, "error decoding YAML"},
		{"wrong_version", "t1", `{"apiVersion":"example.com/v2","kind":"Thing","metadata":{"name":"t1"}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			"Incorrect version specified in apply patch. Specified patch version: example.com/v2, expected: example.com/v1"},
		{"no_version", "t1", `{"kind":"Thing","metadata":{"name":"t1"}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest, "Incorrect version specified in apply patch"},
		{"wrong_kind", "t1", `{"apiVersion":"example.com/v1","kind":"Other","metadata":{"name":"t1"}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest, "does not match"},
		{"unknown_field", "t1", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"nope":1}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest, ".spec.nope: field not declared in schema"},
		{"wrong_type", "t1", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"spec":{"size":"big"}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest, ".spec.size"},
		{"managed_fields", "t1", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1","managedFields":[{"manager":"x"}]}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest, "metadata.managedFields must be nil"},
		{"rename", "t1", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t2"}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest, "does not match the name on the URL"},
		{"create_without_name", "t3", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"generateName":"t-"}}`, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			"the name of the object () does not match the name on the URL (t3)"},
		{"create_with_uid", "t3", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t3","uid":"u1"}}`, http.StatusConflict, metav1.StatusReasonConflict, "uid mismatch"},
		{"invalid_value", "t3", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t3","labels":{"bad key!":"x"}}}`, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "metadata.labels"},
		{"stale_rv", "t1", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1","resourceVersion":"1"}}`, http.StatusConflict, metav1.StatusReasonConflict, "the object has been modified"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.apply(t, res, c.target, "bob", c.config, false)
			wantStatus(t, err, c.code, c.reason)
			if msg := err.(*apierrors.StatusError).ErrStatus.Message; !strings.Contains(msg, c.message) {
				t.Fatalf("message %q, want it to contain %q", msg, c.message)
			}
		})
	}
	if _, err := e.reg.Get(t.Context(), res, "default", "t3"); !apierrors.IsNotFound(err) {
		t.Fatalf("a failed apply created t3: %v", err)
	}
	// A namespace that does not exist: 404, as for a create.
	_, err := e.reg.Patch(t.Context(), res, "elsewhere", "t1", types.ApplyYAMLPatchType, []byte(`{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"}}`), registry.WriteOptions{FieldManager: "a"})
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
	// Duplicate fields fail under Strict and warn otherwise.
	dup := "apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: t1\nspec:\n  size: 1\n  size: 1\n"
	_, err = e.reg.Patch(t.Context(), res, "default", "t1", types.ApplyYAMLPatchType, []byte(dup), registry.WriteOptions{FieldManager: "alice", FieldValidation: "Strict"})
	wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	r, err := e.reg.Patch(t.Context(), res, "default", "t1", types.ApplyYAMLPatchType, []byte(dup), registry.WriteOptions{FieldManager: "alice"})
	if err != nil || len(r.Warnings) != 1 {
		t.Fatalf("duplicate field under Warn: %v %v", r.Warnings, err)
	}
}

// TestCreateManagedFieldsMatchFieldManager checks the cheaper path that
// computes a create's managedFields against the FieldManager's result.
func TestCreateManagedFieldsMatchFieldManager(t *testing.T) {
	e := newEnv(t)
	things := e.things(t)
	widgets := e.widgets(t)
	ns := e.lookup(t, "", "v1", "namespaces")
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	meta := map[string]any{
		"name": "x", "namespace": "default", "uid": "u", "generation": int64(1), "creationTimestamp": "2026-01-01T00:00:00Z",
		"labels": map[string]any{"a": "b"}, "annotations": map[string]any{"c": "d"}, "finalizers": []any{"f/1", "f/2"},
		"ownerReferences": []any{map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "ou"}},
	}
	cases := []struct {
		name string
		res  *registry.Resource
		obj  map[string]any
	}{
		{"schema", things, map[string]any{"apiVersion": "example.com/v1", "kind": "Thing", "metadata": meta,
			"spec": map[string]any{"size": int64(1), "port": "http", "ports": []any{map[string]any{"name": "a", "port": int64(1)}, map[string]any{"name": "b"}},
				"tags": []any{"x", "y"}, "args": []any{"1"}, "selector": map[string]any{"k": "v"}, "extra": map[string]any{"deep": map[string]any{"er": []any{int64(1)}}},
				"template": map[string]any{"apiVersion": "v1", "kind": "X", "metadata": map[string]any{"name": "in", "labels": map[string]any{"l": "v"}}}},
			"status": map[string]any{"ready": true}}},
		{"empty_containers", things, map[string]any{"apiVersion": "example.com/v1", "kind": "Thing", "metadata": map[string]any{"name": "x", "labels": map[string]any{}},
			"spec": map[string]any{"ports": []any{}, "extra": map[string]any{}}}},
		{"only_meta", things, map[string]any{"apiVersion": "example.com/v1", "kind": "Thing", "metadata": map[string]any{"name": "x"}}},
		{"preserve_unknown", widgets, map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta,
			"spec": map[string]any{"a": []any{map[string]any{"b": int64(1)}}, "c": nil}, "status": map[string]any{"x": int64(1)}}},
		{"no_schema", ns, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": meta, "spec": map[string]any{"finalizers": []any{"kubernetes"}}}},
		{"crd", crds, thingCRD(t).Object},
		{"configmap", e.lookup(t, "", "v1", "configmaps"), map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": map[string]any{"k": "v"}}},
	}
	for _, c := range cases {
		for _, manager := range []string{"m", ""} {
			t.Run(c.name+"/"+manager, func(t *testing.T) {
				fast, slow := e.reg.CreateManagedFields(c.res, c.obj, manager)
				strip := func(v any) any {
					list, _ := v.([]any)
					for _, entry := range list {
						delete(entry.(map[string]any), "time")
					}
					return list
				}
				if f, s := strip(fast), strip(slow); !reflect.DeepEqual(f, s) {
					t.Fatalf("managedFields differ:\nfast %v\nslow %v", f, s)
				}
				if c.name != "only_meta" && fast == nil {
					t.Fatal("no managedFields")
				}
				if (c.name == "schema" || c.name == "configmap" || c.name == "empty_containers") && !e.reg.CreateFieldsFromSchema(c.res, c.obj) {
					t.Fatal("fields not read from the schema")
				}
			})
		}
	}
}

// TestApplyBuiltinWithSchema applies ConfigMaps, a built-in type with a
// schema: keys of data merge between managers.
func TestApplyBuiltinWithSchema(t *testing.T) {
	e := newEnv(t)
	cms := e.lookup(t, "", "v1", "configmaps")
	cm := func(data string) string {
		return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":` + data + `}`
	}
	e.mustApply(t, cms, "c", "a", cm(`{"x":"1"}`), false)
	o := e.mustApply(t, cms, "c", "b", cm(`{"y":"2"}`), false)
	if data, _, _ := unstructured.NestedStringMap(o.Object, "data"); !reflect.DeepEqual(data, map[string]string{"x": "1", "y": "2"}) {
		t.Fatalf("data %v", data)
	}
	_, err := e.apply(t, cms, "c", "b", cm(`{"x":"3"}`), false)
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	got := managers(t, o)
	if !owns(t, got["a/Apply"], "f:data", "f:x") || !owns(t, got["b/Apply"], "f:data", "f:y") {
		t.Fatalf("managedFields %v", got)
	}
}

// TestScaleWritesTracked checks that a write through the scale subresource
// records its manager with subresource scale, so that an applier who set
// the replicas conflicts with it, as with an autoscaler in Kubernetes.
func TestScaleWritesTracked(t *testing.T) {
	e := newEnv(t)
	res := e.scalers(t)
	config := `{"apiVersion":"example.com/v1","kind":"Scaler","metadata":{"name":"s"},"spec":{"replicas":2}}`
	e.mustApply(t, res, "s", "alice", config, false)
	if _, err := e.reg.PatchScale(t.Context(), res, "default", "s", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), registry.WriteOptions{FieldManager: "hpa"}); err != nil {
		t.Fatal(err)
	}
	o, err := e.reg.Get(t.Context(), res, "default", "s")
	if err != nil {
		t.Fatal(err)
	}
	got := managers(t, o)
	if !owns(t, got["hpa/Update/scale"], "f:spec", "f:replicas") || owns(t, got["alice/Apply"], "f:spec", "f:replicas") {
		t.Fatalf("managedFields %v", got)
	}
	_, err = e.apply(t, res, "s", "alice", config, false)
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	if msg := err.(*apierrors.StatusError).ErrStatus.Message; msg != `Apply failed with 1 conflict: conflict with "hpa" with subresource "scale" using example.com/v1: .spec.replicas` {
		t.Fatalf("message %q", msg)
	}
}

// FuzzApply sends random apply configurations, forced or not, to an
// object with several managers: bad input answers 4xx, never 500.
func FuzzApply(f *testing.F) {
	e := newEnv(f)
	res := e.things(f)
	e.mustApply(f, res, "t1", "alice", `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1","labels":{"a":"b"}},"spec":{"size":1,"ports":[{"name":"a","port":1}],"tags":["x"]}}`, false)
	if _, err := e.reg.Patch(f.Context(), res, "default", "t1", types.MergePatchType, []byte(`{"spec":{"color":"red"}}`), registry.WriteOptions{FieldManager: "editor"}); err != nil {
		f.Fatal(err)
	}
	head := `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"`
	for _, seed := range []string{
		head + `},"spec":{"size":2}}`,
		head + `,"labels":{"a":"c"}},"spec":{"ports":[{"name":"a"},{"name":"a"}]}}`,
		head + `},"spec":{"ports":[{"port":3}],"tags":["x","x"]}}`,
		head + `,"managedFields":[{"manager":"x","operation":"Apply"}]}}`,
		head + `,"ownerReferences":[{"uid":"1"},{"uid":"1"}]}}`,
		head + `},"spec":{"extra":{"a":[1,{"b":null}]},"template":{"metadata":{"labels":{"k":1}}}}}`,
		head + `},"spec":null,"status":{"ready":"yes"}}`,
		head + `,"resourceVersion":"abc"}}`,
		"apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t1}\nspec: {size: 1e400}\n",
		"- 1\n- 2\n",
		"apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: t2\n  namespace: other\n",
		"",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, config string, force bool) {
		name := "t1"
		if strings.Contains(config, "t2") {
			name = "t2"
		}
		_, err := e.apply(t, res, name, "bob", config, force)
		wantClientError(t, err)
	})
}

// TestApplyScale applies Scales to the scale subresource: the object's
// appliers of the replicas conflict, force takes them, the owner is
// recorded on the object with subresource scale.
func TestApplyScale(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.scalers(t)
	e.mustApply(t, res, "s", "alice", `{"apiVersion":"example.com/v1","kind":"Scaler","metadata":{"name":"s"},"spec":{"replicas":2,"image":"x"}}`, false)
	scale := func(n int) []byte {
		return []byte(`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"s"},"spec":{"replicas":` + strconv.Itoa(n) + `}}`)
	}
	_, err := e.reg.PatchScale(ctx, res, "default", "s", types.ApplyYAMLPatchType, scale(3), registry.WriteOptions{FieldManager: "hpa"})
	wantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
	if msg := err.(*apierrors.StatusError).ErrStatus.Message; msg != `Apply failed with 1 conflict: conflict with "alice": .spec.replicas` {
		t.Fatalf("message %q", msg)
	}
	r, err := e.reg.PatchScale(ctx, res, "default", "s", types.ApplyYAMLPatchType, scale(3), registry.WriteOptions{FieldManager: "hpa", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if replicas(t, r.Object, "spec", "replicas") != 3 {
		t.Fatalf("scale %v", r.Object.Object)
	}
	o, err := e.reg.Get(ctx, res, "default", "s")
	if err != nil {
		t.Fatal(err)
	}
	got := managers(t, o)
	if replicas(t, o, "spec", "replicas") != 3 || !owns(t, got["hpa/Apply/scale"], "f:spec", "f:replicas") || owns(t, got["alice/Apply"], "f:spec", "f:replicas") || !owns(t, got["alice/Apply"], "f:spec", "f:image") {
		t.Fatalf("after forced scale apply: %v %v", o.Object["spec"], got)
	}
	for _, m := range o.GetManagedFields() {
		if m.APIVersion != "example.com/v1" {
			t.Fatalf("%s recorded with %s", m.Manager, m.APIVersion)
		}
	}
	// Re-applying the same Scale is a no-op; another version is refused.
	if again, err := e.reg.PatchScale(ctx, res, "default", "s", types.ApplyYAMLPatchType, scale(3), registry.WriteOptions{FieldManager: "hpa"}); err != nil || again.Object.GetResourceVersion() != o.GetResourceVersion() {
		t.Fatalf("repeated scale apply: %v", err)
	}
	_, err = e.reg.PatchScale(ctx, res, "default", "s", types.ApplyYAMLPatchType, []byte(`{"apiVersion":"autoscaling/v2","kind":"Scale","metadata":{"name":"s"}}`), registry.WriteOptions{FieldManager: "hpa"})
	wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	_, err = e.reg.PatchScale(ctx, res, "default", "nope", types.ApplyYAMLPatchType, scale(1), registry.WriteOptions{FieldManager: "hpa"})
	wantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
}
