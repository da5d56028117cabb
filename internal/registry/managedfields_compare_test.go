package registry_test

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/setpoint/setpoint/internal/registry"
)

// randomObject is a random object of res: a spec of the Thing schema, of
// unknown fields for the others, a ConfigMap's data for the built-in
// type; status and metadata fields now and then.
func randomObject(g objGen, res *registry.Resource) map[string]any {
	o := map[string]any{"apiVersion": res.Group + "/" + res.Version, "kind": res.Kind,
		"metadata": map[string]any{"name": "x", "namespace": "default", "uid": "u", "generation": int64(1), "creationTimestamp": "2026-01-01T00:00:00Z"}}
	switch {
	case res.Group == "":
		o["apiVersion"] = res.Version
		o["data"] = g.strMap()
	case res.Kind == "Thing":
		o["spec"] = g.thingSpec()
	default:
		o["spec"] = map[string]any{g.str(): g.anyValue(3), "x": g.anyValue(2)}
	}
	if res.HasStatus && g.pick(2) == 0 {
		o["status"] = map[string]any{"ready": g.pick(2) == 0, "phase": g.str()}
	}
	g.meta(o["metadata"].(map[string]any))
	return o
}

// TestCompareMatchesEngine compares random pairs of objects (one changed
// from the other, or both random) with the schema walker and with the
// merge engine: wherever the walker answers, the engine must accept both
// objects and find the same removed, modified and added fields.
func TestCompareMatchesEngine(t *testing.T) {
	e := newEnv(t)
	kinds := []*registry.Resource{e.things(t), e.widgets(t), e.lookup(t, "", "v1", "configmaps")}
	g := objGen{rand.New(rand.NewPCG(3, 5))}
	walked, total := 0, 0
	for i := range 3000 {
		res := kinds[i%len(kinds)]
		live := randomObject(g, res)
		obj := runtime.DeepCopyJSON(live)
		next := randomObject(g, res)
		switch g.pick(4) {
		case 0:
			obj = next
		case 1:
			g.mutate(obj["metadata"].(map[string]any), next["metadata"].(map[string]any))
			fallthrough
		default:
			for _, field := range []string{"spec", "status", "data"} {
				m, _ := obj[field].(map[string]any)
				n, _ := next[field].(map[string]any)
				if m != nil && n != nil {
					g.mutate(m, n)
				}
			}
		}
		if g.pick(5) == 0 {
			// Shared values, as a status update shares the spec it
			// keeps.
			obj["spec"] = live["spec"]
		}
		total++
		walker, engine, ok, err := e.reg.CompareObjects(res, live, obj)
		if !ok {
			continue
		}
		walked++
		if err != nil {
			t.Fatalf("pair %d: walker answered where the engine fails (%v)\nlive %v\nobj  %v", i, err, live, obj)
		}
		if !walker.Removed.Equals(engine.Removed) || !walker.Modified.Equals(engine.Modified) || !walker.Added.Equals(engine.Added) {
			t.Fatalf("pair %d: comparisons differ\nlive %v\nobj  %v\nwalker %v\nengine %v", i, live, obj, walker, engine)
		}
	}
	t.Logf("walker compared %d of %d pairs", walked, total)
	if walked < total/2 {
		t.Fatalf("walker compared only %d of %d pairs", walked, total)
	}
}

// TestNonCanonicalFieldsMatchFieldManager updates objects whose stored
// managedFields spell their fieldsV1 in ways the FieldManager reads but
// never writes (a leaf as {".":{}}, keys of unknown kinds, "." at the
// top, a key with spaces): trackUpdateFast, which keeps the fieldsV1 of
// entries an update leaves alone, must write what the FieldManager does.
func TestNonCanonicalFieldsMatchFieldManager(t *testing.T) {
	e := newEnv(t)
	res := e.things(t)
	base := e.reg.TrackCreate(res, map[string]any{"apiVersion": "example.com/v1", "kind": "Thing",
		"metadata": map[string]any{"name": "x", "namespace": "default", "uid": "u", "generation": int64(1), "creationTimestamp": "2026-01-01T00:00:00Z"},
		"spec":     map[string]any{"size": int64(1), "ports": []any{map[string]any{"name": "c", "port": int64(1)}}}}, "creator")
	variants := map[string]map[string]any{
		"leaf with dot":    {"f:spec": map[string]any{".": map[string]any{}, "f:size": map[string]any{".": map[string]any{}}}},
		"unknown kind":     {"f:spec": map[string]any{".": map[string]any{}, "f:size": map[string]any{}, "x:y": map[string]any{}}},
		"dot at the top":   {".": map[string]any{}, "f:spec": map[string]any{"f:size": map[string]any{}}},
		"key with spaces":  {"f:spec": map[string]any{"f:ports": map[string]any{`k:{"name": "c"}`: map[string]any{"f:port": map[string]any{}}}}},
		"dot not empty":    {"f:spec": map[string]any{".": map[string]any{"f:x": map[string]any{}}, "f:size": map[string]any{}}},
		"canonical, as is": {"f:spec": map[string]any{".": map[string]any{}, "f:size": map[string]any{}}},
	}
	for name, fields := range variants {
		t.Run(name, func(t *testing.T) {
			live := runtime.DeepCopyJSON(base)
			entry := live["metadata"].(map[string]any)["managedFields"].([]any)[0].(map[string]any)
			entry["fieldsV1"] = runtime.DeepCopyJSONValue(fields)
			entry["time"] = "2000-01-01T00:00:00Z"
			for _, sub := range []string{"status", ""} {
				obj := runtime.DeepCopyJSON(live)
				obj["status"] = map[string]any{"ready": true}
				if sub == "" {
					obj["metadata"].(map[string]any)["labels"] = map[string]any{"a": "b"}
				}
				slow, _ := e.reg.TrackUpdate(res, runtime.DeepCopyJSON(live), runtime.DeepCopyJSON(obj), "m", sub, true)
				quick, ok := e.reg.TrackUpdate(res, runtime.DeepCopyJSON(live), runtime.DeepCopyJSON(obj), "m", sub, false)
				if !ok {
					t.Fatalf("sub %q: trackUpdateFast declined", sub)
				}
				if s, q := normalTimes(slow), normalTimes(quick); !reflect.DeepEqual(s, q) {
					t.Fatalf("sub %q: managedFields differ\nfield manager %v\nfast          %v", sub, s["metadata"].(map[string]any)["managedFields"], q["metadata"].(map[string]any)["managedFields"])
				}
			}
		})
	}
}
