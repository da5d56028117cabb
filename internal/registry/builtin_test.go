package registry_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/registry/registrytest"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

func TestBuiltinSchemasFromGoTypes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		group, resource string
		path            []string
		typ, format     string
	}{
		{"", "configmaps", []string{"data"}, "object", ""},
		{"", "configmaps", []string{"immutable"}, "boolean", ""},
		{"", "secrets", []string{"type"}, "string", ""},
		{"", "secrets", []string{"stringData"}, "object", ""},
		{"coordination.k8s.io", "leases", []string{"spec", "renewTime"}, "string", "date-time"},
		{"coordination.k8s.io", "leases", []string{"spec", "leaseDurationSeconds"}, "integer", "int32"},
		{"", "events", []string{"involvedObject", "uid"}, "string", ""},
		{"", "events", []string{"count"}, "integer", "int32"},
		{"", "events", []string{"firstTimestamp"}, "string", "date-time"},
		{"events.k8s.io", "events", []string{"series", "lastObservedTime"}, "string", "date-time"},
		{"events.k8s.io", "events", []string{"regarding", "fieldPath"}, "string", ""},
	} {
		res := e.lookup(t, tc.group, "v1", tc.resource)
		if res.Schema == nil || res.OpenAPISchema == nil {
			t.Fatalf("%s has no schema", tc.resource)
		}
		s := *res.OpenAPISchema
		for _, p := range tc.path {
			next, ok := s.Properties[p]
			if !ok {
				t.Fatalf("%s: no property %s in %v", tc.resource, p, tc.path)
			}
			s = next
		}
		if s.Type != tc.typ || s.Format != tc.format || s.Description == "" {
			t.Errorf("%s %v: type %q format %q description %q", tc.resource, tc.path, s.Type, s.Format, s.Description)
		}
	}
	cm := e.lookup(t, "", "v1", "configmaps").OpenAPISchema
	if b := cm.Properties["binaryData"].AdditionalProperties; b == nil || b.Schema.Format != "byte" {
		t.Errorf("binaryData values %+v, want strings of format byte", b)
	}
	for _, k := range []string{"apiVersion", "kind", "metadata"} {
		if _, ok := cm.Properties[k]; ok {
			t.Errorf("root schema declares %s, which every object gets anyway", k)
		}
	}
}

// create writes m as an object of res in the default namespace.
func create(t *testing.T, e *env, res *registry.Resource, m map[string]any) (registry.Result, error) {
	t.Helper()
	return e.reg.Create(context.Background(), res, "default", obj(m), registry.WriteOptions{})
}

// wantInvalid fails unless err is a 422 whose message contains want.
func wantInvalid(t *testing.T, err error, want string) {
	t.Helper()
	wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("message %q, want it to contain %q", err.Error(), want)
	}
}

func TestConfigMapSemantics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cms := e.lookup(t, "", "v1", "configmaps")
	cm := func(name string, fields map[string]any) map[string]any {
		m := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name}}
		for k, v := range fields {
			m[k] = v
		}
		return m
	}
	_, err := create(t, e, cms, cm("bad", map[string]any{"data": map[string]any{"..": "x", "ok": "y"}}))
	wantInvalid(t, err, `data[..]: Invalid value: "..": must not be '..'`)
	_, err = create(t, e, cms, cm("dup", map[string]any{"data": map[string]any{"k": "x"}, "binaryData": map[string]any{"k": "eA=="}}))
	wantInvalid(t, err, `data[k]: Invalid value: "k": duplicate of key present in binaryData`)
	big := base64.StdEncoding.EncodeToString(make([]byte, 600<<10))
	_, err = create(t, e, cms, cm("big", map[string]any{"data": map[string]any{"a": strings.Repeat("x", 500<<10)}, "binaryData": map[string]any{"b": big}}))
	wantInvalid(t, err, "Too long: may not be more than 1048576 bytes")
	_, err = create(t, e, cms, cm("typed", map[string]any{"data": map[string]any{"a": int64(1)}}))
	wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)

	r, err := create(t, e, cms, cm("frozen", map[string]any{"data": map[string]any{"a": "1"}, "immutable": true, "extra": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Object.Object["extra"]; ok || len(r.Warnings) != 1 || r.Warnings[0] != `unknown field "extra"` {
		t.Errorf("unknown field kept or not warned: %v %v", r.Object.Object, r.Warnings)
	}
	if _, ok := r.Object.Object["metadata"].(map[string]any)["generation"]; ok {
		t.Error("ConfigMaps have no generation in Kubernetes")
	}
	_, err = e.reg.Patch(ctx, cms, "default", "frozen", types.MergePatchType, []byte(`{"data":{"a":"2"},"immutable":false}`), registry.WriteOptions{})
	wantInvalid(t, err, "[immutable: Forbidden: field is immutable when `immutable` is set, data: Forbidden: field is immutable when `immutable` is set]")
	if _, err := e.reg.Patch(ctx, cms, "default", "frozen", types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`), registry.WriteOptions{}); err != nil {
		t.Errorf("label an immutable ConfigMap: %v", err)
	}
}

func TestSecretSemantics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	secrets := e.lookup(t, "", "v1", "secrets")
	secret := func(name string, fields map[string]any) map[string]any {
		m := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": name}}
		for k, v := range fields {
			m[k] = v
		}
		return m
	}
	r, err := create(t, e, secrets, secret("s", map[string]any{
		"data":       map[string]any{"a": "YQ==", "b": "Yg=="},
		"stringData": map[string]any{"b": "bee", "c": "sea"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.reg.Get(ctx, secrets, "default", "s")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*unstructured.Unstructured{r.Object, got} {
		data, _, _ := unstructured.NestedStringMap(u.Object, "data")
		if data["a"] != "YQ==" || data["b"] != "YmVl" || data["c"] != "c2Vh" || u.Object["type"] != "Opaque" || u.Object["stringData"] != nil {
			t.Errorf("secret %v, want stringData merged into data and type Opaque", u.Object)
		}
	}
	_, err = e.reg.Patch(ctx, secrets, "default", "s", types.MergePatchType, []byte(`{"type":"kubernetes.io/tls"}`), registry.WriteOptions{})
	wantInvalid(t, err, `type: Invalid value: "kubernetes.io/tls": field is immutable`)
	_, err = e.reg.Patch(ctx, secrets, "default", "s", types.MergePatchType, []byte(`{"data":{"a":"not base64!"}}`), registry.WriteOptions{})
	wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	if strings.Contains(err.Error(), "not base64!") {
		t.Errorf("error echoes the value: %v", err)
	}
	_, err = create(t, e, secrets, secret("tls", map[string]any{"type": "kubernetes.io/tls", "data": map[string]any{"tls.key": "eA=="}}))
	wantInvalid(t, err, "data[tls.crt]: Required value")
	_, err = create(t, e, secrets, secret("sa", map[string]any{"type": "kubernetes.io/service-account-token"}))
	wantInvalid(t, err, "metadata.annotations[kubernetes.io/service-account.name]: Required value")
	if _, err := create(t, e, secrets, secret("sealed", map[string]any{"stringData": map[string]any{"k": "v"}, "immutable": true})); err != nil {
		t.Fatal(err)
	}
	_, err = e.reg.Patch(ctx, secrets, "default", "sealed", types.MergePatchType, []byte(`{"stringData":{"k":"w"}}`), registry.WriteOptions{})
	wantInvalid(t, err, "data: Forbidden: field is immutable when `immutable` is set")

	list, err := e.reg.List(ctx, secrets, "default", registry.ListOptions{Labels: labels.Everything(), Fields: fields.OneTermEqualSelector("type", "Opaque")})
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("secrets of type Opaque: %v %d", err, len(list.Items))
	}
}

func TestLeaseMicroTimeRoundTrip(t *testing.T) {
	e := newEnv(t)
	leases := e.lookup(t, "coordination.k8s.io", "v1", "leases")
	const renew = "2026-11-26T10:00:00.000007Z"
	if _, err := create(t, e, leases, map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": map[string]any{"name": "l"},
		"spec": map[string]any{"holderIdentity": "a", "renewTime": renew, "leaseDurationSeconds": int64(10)},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := e.reg.Get(context.Background(), leases, "default", "l")
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := unstructured.NestedString(got.Object, "spec", "renewTime"); s != renew {
		t.Errorf("renewTime %q, want %q", s, renew)
	}
	_, err = create(t, e, leases, map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": map[string]any{"name": "bad"},
		"spec": map[string]any{"leaseTransitions": int64(-1)},
	})
	wantInvalid(t, err, "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0")
	// Like Kubernetes' decoding of its typed objects, a malformed time is
	// a 400.
	_, err = create(t, e, leases, map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": map[string]any{"name": "bad"},
		"spec": map[string]any{"renewTime": "yesterday"},
	})
	wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
}

func TestEventsOneResourceTwoAPIs(t *testing.T) {
	fe := registrytest.StartWithFeed(t, feed.Options{})
	e := &env{reg: fe.Registry, store: fe.Store, feed: fe.Feed}
	ctx := context.Background()
	core := e.lookup(t, "", "v1", "events")
	events := e.lookup(t, "events.k8s.io", "v1", "events")
	w, err := e.reg.Watch(ctx, events, "default", everything())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := create(t, e, core, map[string]any{
		"apiVersion": "v1", "kind": "Event", "metadata": map[string]any{"name": "old"},
		"involvedObject": map[string]any{"kind": "Widget", "name": "w", "namespace": "default"},
		"message":        "hello", "count": int64(3), "source": map[string]any{"component": "ctl"},
		"reason": "Done", "type": "Normal",
	}); err != nil {
		t.Fatal(err)
	}
	ev := <-w
	u, ok := ev.Object.(*unstructured.Unstructured)
	if !ok || ev.Type != "ADDED" || u.GetAPIVersion() != "events.k8s.io/v1" || u.Object["note"] != "hello" ||
		u.Object["deprecatedCount"] != int64(3) || u.Object["message"] != nil || u.Object["involvedObject"] != nil {
		t.Fatalf("core event watched through events.k8s.io/v1: %s %v", ev.Type, ev.Object)
	}
	if name, _, _ := unstructured.NestedString(u.Object, "regarding", "name"); name != "w" {
		t.Errorf("regarding.name %q", name)
	}
	_, err = create(t, e, events, map[string]any{
		"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": map[string]any{"name": "new"},
		"regarding": map[string]any{"kind": "Widget", "name": "w", "namespace": "default"},
		"note":      "hi", "reason": "Done", "type": "Normal", "action": "Act",
		"eventTime": "2026-11-26T10:00:00.000001Z", "reportingController": "example.com/c", "reportingInstance": "c-0",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.reg.Patch(ctx, events, "default", "new", types.MergePatchType, []byte(`{"note":"patched"}`), registry.WriteOptions{})
	wantInvalid(t, err, `note: Invalid value: "patched": field is immutable`)
	r, err := e.reg.Patch(ctx, events, "default", "new", types.MergePatchType,
		[]byte(`{"series":{"count":2,"lastObservedTime":"2026-11-26T10:00:01.000000Z"}}`), registry.WriteOptions{})
	if err != nil || r.Object.Object["series"] == nil {
		t.Fatalf("series patch through events.k8s.io: %v %v", err, r.Object)
	}
	got, err := e.reg.Get(ctx, core, "default", "new")
	if err != nil {
		t.Fatal(err)
	}
	if got.Object["message"] != "hi" || got.Object["series"] == nil || got.Object["reportingComponent"] != "example.com/c" || got.Object["eventTime"] != "2026-11-26T10:00:00.000001Z" {
		t.Errorf("events.k8s.io event read through core v1: %v", got.Object)
	}
	for _, tc := range []struct {
		res      *registry.Resource
		selector string
		want     int
	}{
		{core, "involvedObject.name=w", 2},
		{core, "source=ctl", 1},
		{core, "source=example.com/c", 1},
		{events, "regarding.kind=Widget,reportingController=example.com/c", 1},
		{events, "reportingController!=example.com/c", 1},
	} {
		sel, err := fields.ParseSelector(tc.selector)
		if err != nil {
			t.Fatal(err)
		}
		list, err := e.reg.List(ctx, tc.res, "default", registry.ListOptions{Labels: labels.Everything(), Fields: sel})
		if err != nil || len(list.Items) != tc.want {
			t.Errorf("%s with %s: %v, %d items, want %d", tc.res.Group, tc.selector, err, len(list.Items), tc.want)
		}
	}
	_, err = create(t, e, events, map[string]any{
		"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": map[string]any{"name": "legacy-fields"},
		"regarding": map[string]any{"kind": "Widget", "name": "w", "namespace": "default"},
		"note":      "hi", "reason": "Done", "type": "Odd", "action": "Act", "deprecatedCount": int64(2),
		"eventTime": "2026-11-26T10:00:00.000000Z", "reportingController": "example.com/c", "reportingInstance": "c-0",
	})
	wantInvalid(t, err, "[type: Invalid value: \"\": has invalid value: Odd, deprecatedCount: Invalid value: \"\": needs to be unset]")
}

func TestEventTTL(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = t0.Add(d); mu.Unlock() }
	reg, err := registry.New(registry.Options{Store: store, Now: clock, EventTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	e := &env{reg: reg, store: store}
	core := e.lookup(t, "", "v1", "events")
	events := e.lookup(t, "events.k8s.io", "v1", "events")
	for _, name := range []string{"old", "seen-later"} {
		if _, err := create(t, e, core, map[string]any{
			"apiVersion": "v1", "kind": "Event", "metadata": map[string]any{"name": name},
			"involvedObject": map[string]any{"kind": "Widget", "name": "w", "namespace": "default"},
			"lastTimestamp":  "2026-11-26T12:00:00Z",
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := create(t, e, events, map[string]any{
		"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": map[string]any{"name": "series"},
		"regarding": map[string]any{"kind": "Widget", "name": "w", "namespace": "default"},
		"reason":    "R", "type": "Normal", "action": "A", "reportingController": "c", "reportingInstance": "i",
		"eventTime": "2026-11-26T12:00:00.000000Z",
	}); err != nil {
		t.Fatal(err)
	}
	cms := e.lookup(t, "", "v1", "configmaps")
	if _, err := create(t, e, cms, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "kept"}}); err != nil {
		t.Fatal(err)
	}
	advance(90 * time.Minute)
	if _, err := e.reg.Patch(ctx, core, "default", "seen-later", types.MergePatchType, []byte(`{"lastTimestamp":"2026-11-26T13:30:00Z","count":2}`), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Patch(ctx, events, "default", "series", types.MergePatchType,
		[]byte(`{"series":{"count":2,"lastObservedTime":"2026-11-26T13:29:00.000000Z"}}`), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := registry.ExpireEvents(ctx, e.reg); err != nil {
		t.Fatal(err)
	}
	if l, _ := e.reg.List(ctx, core, "default", everything()); len(l.Items) != 2 {
		t.Fatalf("%d events after 90 minutes, want 2 (old expired)", len(l.Items))
	}
	advance(3 * time.Hour)
	if err := registry.ExpireEvents(ctx, e.reg); err != nil {
		t.Fatal(err)
	}
	if l, _ := e.reg.List(ctx, events, "default", everything()); len(l.Items) != 0 {
		t.Errorf("%d events after 3 hours, want none", len(l.Items))
	}
	if _, err := e.reg.Get(ctx, cms, "default", "kept"); err != nil {
		t.Errorf("ConfigMap gone with the events: %v", err)
	}
}
