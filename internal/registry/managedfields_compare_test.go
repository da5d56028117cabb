package registry_test

import (
	"math/rand/v2"
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
