package registry_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/setpoint/setpoint/internal/registry"
)

// objGen makes random values of one resource's objects.
type objGen struct {
	rng *rand.Rand
}

func (g objGen) pick(n int) int { return g.rng.IntN(n) }

func (g objGen) str() string { return []string{"a", "b", "c", "d"}[g.pick(4)] }

// anyValue is a random JSON value, nested up to depth.
func (g objGen) anyValue(depth int) any {
	switch k := g.pick(7); {
	case k == 0:
		return int64(g.pick(3))
	case k == 1:
		return g.str()
	case k == 2:
		return g.pick(2) == 0
	case k == 3:
		return nil
	case k == 4 && depth > 0:
		var l []any
		for range g.pick(3) {
			l = append(l, g.anyValue(depth-1))
		}
		return l
	case depth > 0:
		m := map[string]any{}
		for range g.pick(4) {
			m[g.str()] = g.anyValue(depth - 1)
		}
		return m
	}
	return g.str()
}

func (g objGen) strMap() map[string]any {
	m := map[string]any{}
	for range g.pick(3) {
		m[g.str()] = g.str()
	}
	return m
}

func (g objGen) strList() []any {
	var l []any
	for range g.pick(4) {
		l = append(l, g.str())
	}
	return l
}

// thingSpec is a random spec of the Thing schema: lists of every type,
// duplicates included now and then.
func (g objGen) thingSpec() map[string]any {
	fields := map[string]func() any{
		"size":  func() any { return int64(g.pick(3)) },
		"color": func() any { return g.str() },
		"port": func() any {
			if g.pick(2) == 0 {
				return int64(80)
			}
			return "http"
		},
		"ports": func() any {
			var l []any
			for range g.pick(4) {
				p := map[string]any{"name": g.str()}
				if g.pick(2) == 0 {
					p["port"] = int64(g.pick(3))
				}
				l = append(l, p)
			}
			return l
		},
		"tags":     func() any { return g.strList() },
		"args":     func() any { return g.strList() },
		"selector": func() any { return g.strMap() },
		"extra":    func() any { return map[string]any{g.str(): g.anyValue(3)} },
		"template": func() any {
			return map[string]any{"apiVersion": "v1", "kind": "K", "metadata": map[string]any{"name": g.str(), "labels": g.strMap()}, "data": g.str()}
		},
	}
	spec := map[string]any{}
	for k, f := range fields {
		if g.pick(2) == 0 {
			spec[k] = f()
		}
	}
	return spec
}

// mutate changes some of m's fields with fresh values from fresh.
func (g objGen) mutate(m, fresh map[string]any) {
	for k, v := range fresh {
		if g.pick(3) == 0 {
			m[k] = v
		}
	}
	for k := range m {
		if g.pick(6) == 0 {
			delete(m, k)
		}
	}
}

func (g objGen) meta(md map[string]any) {
	for k, f := range map[string]func() any{
		"labels":      func() any { return g.strMap() },
		"annotations": func() any { return g.strMap() },
		"finalizers":  func() any { return g.strList() },
		"ownerReferences": func() any {
			return []any{map[string]any{"apiVersion": "v1", "kind": "K", "name": "o", "uid": g.str()}}
		},
	} {
		switch g.pick(4) {
		case 0:
			md[k] = f()
		case 1:
			delete(md, k)
		}
	}
}

// TestUpdateManagedFieldsMatchFieldManager drives random sequences of
// updates by random managers, through the main resource and the status
// subresource, of objects of a typed schema, of one keeping unknown
// fields and of a built-in type, and checks that every update's
// managedFields (and object) computed by trackUpdateFast are the
// FieldManager's. Entries sent in the body, entries of Apply and more
// managers than the FieldManager keeps make trackUpdateFast decline; it
// must take the common cases.
func TestUpdateManagedFieldsMatchFieldManager(t *testing.T) {
	e := newEnv(t)
	type kind struct {
		res  *registry.Resource
		spec func(objGen) map[string]any
	}
	kinds := []kind{
		{e.things(t), objGen.thingSpec},
		{e.widgets(t), func(g objGen) map[string]any { return map[string]any{g.str(): g.anyValue(3), "x": g.anyValue(2)} }},
		{e.lookup(t, "", "v1", "configmaps"), nil},
	}
	g := objGen{rand.New(rand.NewPCG(4, 2))}
	managers := []string{"a", "b", "c", ""}
	for i := range 40 {
		managers = append(managers, fmt.Sprintf("m%d", i))
	}
	fast, total := 0, 0
	for round := range 150 {
		k := kinds[round%len(kinds)]
		fresh := func() map[string]any {
			o := map[string]any{"apiVersion": k.res.Group + "/" + k.res.Version, "kind": k.res.Kind,
				"metadata": map[string]any{"name": "x", "namespace": "default", "uid": "u", "generation": int64(1), "creationTimestamp": "2026-01-01T00:00:00Z"}}
			if k.res.Group == "" {
				o["apiVersion"] = k.res.Version
				o["data"] = g.strMap()
			} else {
				o["spec"] = k.spec(g)
			}
			if k.res.HasStatus {
				o["status"] = map[string]any{"ready": g.pick(2) == 0, "phase": g.str()}
			}
			g.meta(o["metadata"].(map[string]any))
			return o
		}
		// Old times, as after every step: an entry of this second
		// and the update's would sort by the clock.
		live := oldTimes(g, e.reg.TrackCreate(k.res, fresh(), managers[g.pick(4)]))
		for step := range 12 {
			sub := ""
			if k.res.HasStatus && g.pick(2) == 0 {
				sub = "status"
			}
			obj := runtime.DeepCopyJSON(live)
			next := fresh()
			switch {
			case sub == "status":
				g.mutate(obj["status"].(map[string]any), next["status"].(map[string]any))
			case k.res.Group == "":
				for k, v := range map[string]any{"data": next["data"], "binaryData": map[string]any{"b": "YQ=="}} {
					switch g.pick(3) {
					case 0:
						obj[k] = v
					case 1:
						delete(obj, k)
					}
				}
			default:
				g.mutate(obj["spec"].(map[string]any), next["spec"].(map[string]any))
			}
			md := obj["metadata"].(map[string]any)
			if sub == "" {
				g.meta(md)
			}
			if g.pick(3) == 0 {
				// Fields nobody owns.
				md["generation"] = int64(step + 2)
				md["resourceVersion"] = fmt.Sprint(step)
			}
			switch g.pick(10) {
			case 0:
				delete(md, "managedFields")
			case 1:
				md["managedFields"] = []any{}
			case 2:
				if mf, ok := md["managedFields"].([]any); ok && len(mf) > 0 {
					mf[0].(map[string]any)["manager"] = "edited"
				}
			}
			manager := managers[g.pick(4)]
			if step > 6 && g.pick(2) == 0 {
				manager = managers[g.pick(len(managers))]
			}
			slow, _ := e.reg.TrackUpdate(k.res, runtime.DeepCopyJSON(live), runtime.DeepCopyJSON(obj), manager, sub, true)
			quick, ok := e.reg.TrackUpdate(k.res, runtime.DeepCopyJSON(live), runtime.DeepCopyJSON(obj), manager, sub, false)
			total++
			if ok {
				fast++
				if s, q := normalTimes(slow), normalTimes(quick); !reflect.DeepEqual(s, q) {
					t.Fatalf("round %d step %d (%s, manager %q, sub %q): objects differ\nlive %v\nobj  %v\nfield manager %v\nfast          %v",
						round, step, k.res.Kind, manager, sub, live, obj, s["metadata"].(map[string]any)["managedFields"], q["metadata"].(map[string]any)["managedFields"])
				}
			}
			live = oldTimes(g, slow)
			if g.pick(8) == 0 {
				live = withApplier(e, k.res, live, fresh())
			}
		}
	}
	t.Logf("fast path took %d of %d updates", fast, total)
	if fast < total/2 {
		t.Fatalf("fast path took only %d of %d updates", fast, total)
	}
}

// normalTimes replaces the times of entries the update wrote (this year's
// last days) by NOW: both computations read the clock.
func normalTimes(obj map[string]any) map[string]any {
	obj = runtime.DeepCopyJSON(obj)
	mf, _ := obj["metadata"].(map[string]any)["managedFields"].([]any)
	for _, e := range mf {
		m := e.(map[string]any)
		if ts, _ := m["time"].(string); !strings.HasPrefix(ts, "2000-") {
			m["time"] = "NOW"
		}
	}
	return obj
}

// oldTimes gives live's entries old times, a few of them equal, so that
// the entries of the next update sort after them whatever the clock says.
func oldTimes(g objGen, live map[string]any) map[string]any {
	mf, _ := live["metadata"].(map[string]any)["managedFields"].([]any)
	for _, e := range mf {
		if g.pick(6) > 0 {
			e.(map[string]any)["time"] = fmt.Sprintf("2000-01-01T00:00:0%dZ", g.pick(3))
		} else {
			delete(e.(map[string]any), "time")
		}
	}
	return live
}

// withApplier adds an Apply entry owning what a create of obj would.
func withApplier(e *env, res *registry.Resource, live, obj map[string]any) map[string]any {
	created := e.reg.TrackCreate(res, obj, "applier")
	mf, _ := created["metadata"].(map[string]any)["managedFields"].([]any)
	if len(mf) == 0 {
		return live
	}
	entry := mf[0].(map[string]any)
	entry["operation"] = "Apply"
	entry["time"] = "2000-01-01T00:00:01Z"
	md := live["metadata"].(map[string]any)
	list, _ := md["managedFields"].([]any)
	for _, x := range list {
		if x.(map[string]any)["manager"] == "applier" {
			return live
		}
	}
	md["managedFields"] = append(list, entry)
	return live
}

// BenchmarkTrackUpdateStatus measures the managedFields of a controller's
// first status update of an object of about a kilobyte, computed by
// trackUpdateFast and by the FieldManager.
func BenchmarkTrackUpdateStatus(b *testing.B) {
	e := newEnv(b)
	res := e.things(b)
	live := e.reg.TrackCreate(res, map[string]any{"apiVersion": "example.com/v1", "kind": "Thing",
		"metadata": map[string]any{"name": "x", "namespace": "default", "uid": "u", "generation": int64(1), "creationTimestamp": "2026-01-01T00:00:00Z", "labels": map[string]any{"bucket": "b7"}},
		"spec":     map[string]any{"size": int64(1), "color": "red", "extra": map[string]any{"data": strings.Repeat("x", 800)}}}, "bench")
	obj := runtime.DeepCopyJSON(live)
	obj["status"] = map[string]any{"ready": true, "phase": "Ready"}
	for _, library := range []bool{false, true} {
		b.Run(fmt.Sprintf("library=%v", library), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := e.reg.TrackUpdate(res, live, runtime.DeepCopyJSON(obj), "bench", "status", library); !ok {
					b.Fatal("declined")
				}
			}
		})
	}
}

// TestRandomCreateManagedFieldsMatchFieldManager checks the managedFields
// of creates of random objects of a typed schema, of one keeping unknown
// fields and of a built-in type against the FieldManager's; the schema
// path must take most of them.
func TestRandomCreateManagedFieldsMatchFieldManager(t *testing.T) {
	e := newEnv(t)
	kinds := []*registry.Resource{e.things(t), e.widgets(t), e.lookup(t, "", "v1", "configmaps")}
	g := objGen{rand.New(rand.NewPCG(7, 9))}
	bySchema, total := 0, 0
	for i := range 600 {
		res := kinds[i%len(kinds)]
		o := randomObject(g, res)
		if g.pick(2) == 0 {
			o["status"] = map[string]any{"ready": true, "x": g.anyValue(2)}
		}
		total++
		if e.reg.CreateFieldsFromSchema(res, o) {
			bySchema++
		}
		fast, slow := e.reg.CreateManagedFields(res, o, []string{"m", ""}[g.pick(2)])
		if f, s := stripTimes(fast), stripTimes(slow); !reflect.DeepEqual(f, s) {
			t.Fatalf("object %v: managedFields differ:\nfast %v\nslow %v", o, f, s)
		}
	}
	t.Logf("schema path took %d of %d creates", bySchema, total)
	if bySchema < total/3 {
		t.Fatalf("schema path took only %d of %d creates", bySchema, total)
	}
}

func stripTimes(v any) any {
	list, _ := runtime.DeepCopyJSONValue(v).([]any)
	for _, entry := range list {
		delete(entry.(map[string]any), "time")
	}
	return list
}

// BenchmarkTrackCreate measures the managedFields of a create of an
// object of about a kilobyte of a typed schema, read from the schema and
// computed by the FieldManager.
func BenchmarkTrackCreate(b *testing.B) {
	e := newEnv(b)
	res := e.things(b)
	obj := map[string]any{"apiVersion": "example.com/v1", "kind": "Thing",
		"metadata": map[string]any{"name": "x", "namespace": "default", "uid": "u", "generation": int64(1), "creationTimestamp": "2026-01-01T00:00:00Z", "labels": map[string]any{"bucket": "b7"}},
		"spec":     map[string]any{"size": int64(1), "color": "red", "tags": []any{"a", "b"}, "extra": map[string]any{"data": strings.Repeat("x", 800)}}}
	if !e.reg.CreateFieldsFromSchema(res, obj) {
		b.Fatal("not read from the schema")
	}
	for _, library := range []bool{false, true} {
		b.Run(fmt.Sprintf("library=%v", library), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o := runtime.DeepCopyJSON(obj)
				if library {
					e.reg.TrackUpdate(res, nil, o, "bench", "", true)
				} else {
					e.reg.TrackCreate(res, o, "bench")
				}
			}
		})
	}
}
