package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/registry"
)

// lamps installs a CRD whose spec.color (string), spec.size (integer)
// and spec.on (boolean) are selectable fields and returns its resource.
func (e *env) lamps(t testing.TB) *registry.Resource {
	t.Helper()
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	props := map[string]any{"color": map[string]any{"type": "string"}, "size": map[string]any{"type": "integer"}, "on": map[string]any{"type": "boolean"}}
	crd := obj(map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "lamps.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "lamps", "kind": "Lamp"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "properties": map[string]any{
					"spec": map[string]any{"type": "object", "properties": props}}}},
				"selectableFields": []any{map[string]any{"jsonPath": ".spec.color"}, map[string]any{"jsonPath": ".spec.size"}, map[string]any{"jsonPath": ".spec.on"}},
			}},
		},
	})
	if _, err := e.reg.Create(context.Background(), crds, "", crd, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	res := e.lookup(t, "example.com", "v1", "lamps")
	if want := []string{"spec.color", "spec.size", "spec.on"}; !slices.Equal(res.SelectableFields, want) {
		t.Fatalf("SelectableFields %v, want %v", res.SelectableFields, want)
	}
	return res
}

func lamp(name string, spec map[string]any) *unstructured.Unstructured {
	return obj(map[string]any{
		"apiVersion": "example.com/v1", "kind": "Lamp",
		"metadata": map[string]any{"name": name}, "spec": spec,
	})
}

func selecting(t testing.TB, sel string) registry.ListOptions {
	t.Helper()
	o := everything()
	f, err := fields.ParseSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	o.Fields = f
	return o
}

func names(l *unstructured.UnstructuredList) []string {
	var out []string
	for _, it := range l.Items {
		out = append(out, it.GetName())
	}
	return out
}

func TestSelectableFieldsList(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.lamps(t)
	for _, g := range []*unstructured.Unstructured{
		lamp("a", map[string]any{"color": "red", "size": int64(3), "on": true}),
		lamp("b", map[string]any{"color": "blue", "size": int64(10), "on": false}),
		lamp("c", map[string]any{"color": "red", "size": int64(-3)}),
		lamp("d", map[string]any{}),
	} {
		if _, err := e.reg.Create(ctx, res, "default", g, registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		sel  string
		want []string
	}{
		{"spec.color=red", []string{"a", "c"}},
		{"spec.color==red", []string{"a", "c"}},
		{"spec.color!=red", []string{"b", "d"}},
		{"spec.size=3", []string{"a"}},
		{"spec.size=-3", []string{"c"}},
		{"spec.size=03", nil},
		{"spec.on=true", []string{"a"}},
		{"spec.on=false", []string{"b"}},
		{"spec.on=", []string{"c", "d"}},
		{"spec.color=", []string{"d"}},
		{"spec.color=red,spec.on!=true", []string{"c"}},
		{"spec.color=red,metadata.name!=a", []string{"c"}},
		{"spec.color=red,metadata.namespace=other", nil},
	}
	for _, tc := range cases {
		t.Run(tc.sel, func(t *testing.T) {
			l, err := e.reg.List(ctx, res, "default", selecting(t, tc.sel))
			if err != nil {
				t.Fatal(err)
			}
			if got := names(l); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("paginated", func(t *testing.T) {
		opts := selecting(t, "spec.color!=blue")
		opts.Limit = 1
		var got []string
		for {
			l, err := e.reg.List(ctx, res, "default", opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != 1 {
				t.Fatalf("page of %d items, want 1", len(l.Items))
			}
			got = append(got, names(l)...)
			if opts.Continue = l.GetContinue(); opts.Continue == "" {
				break
			}
		}
		if want := []string{"a", "c", "d"}; !slices.Equal(got, want) {
			t.Fatalf("pages gave %v, want %v", got, want)
		}
	})
	t.Run("unknown_field", func(t *testing.T) {
		_, err := e.reg.List(ctx, res, "default", selecting(t, "spec.shape=round"))
		wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
		if msg := err.Error(); msg != "field label not supported: spec.shape" {
			t.Fatalf("message %q", msg)
		}
		// Fields of other resources are not selectable here.
		_, err = e.reg.List(ctx, e.widgets(t), "default", selecting(t, "spec.color=red"))
		wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
	})
	t.Run("deletecollection", func(t *testing.T) {
		out, err := e.reg.DeleteCollection(ctx, res, "default", selecting(t, "spec.color=red"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(out); !slices.Equal(got, []string{"a", "c"}) {
			t.Fatalf("deleted %v", got)
		}
		l, err := e.reg.List(ctx, res, "default", everything())
		if err != nil {
			t.Fatal(err)
		}
		if got := names(l); !slices.Equal(got, []string{"b", "d"}) {
			t.Fatalf("left %v", got)
		}
	})
}

// TestSelectableFieldsWatch checks that a field-selector watch sends an
// object that starts matching as ADDED and one that stops as DELETED.
func TestSelectableFieldsWatch(t *testing.T) {
	e := newFeedEnv(t)
	ctx := t.Context()
	res := e.lamps(t)
	create := func(n, color string) {
		t.Helper()
		if _, err := e.reg.Create(ctx, res, "default", lamp(n, map[string]any{"color": color}), registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	paint := func(n, color string) string {
		t.Helper()
		patch := []byte(`{"spec":{"color":"` + color + `"}}`)
		r, err := e.reg.Patch(ctx, res, "default", n, types.MergePatchType, patch, registry.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Object.GetResourceVersion()
	}
	create("pre", "red")
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := e.reg.Watch(wctx, res, "default", selecting(t, "spec.color=red"))
	if err != nil {
		t.Fatal(err)
	}
	expect := func(typ, n, color string) *unstructured.Unstructured {
		t.Helper()
		ev := next(t, ch, false)
		u := ev.Object.(*unstructured.Unstructured)
		got, _, _ := unstructured.NestedString(u.Object, "spec", "color")
		if ev.Type != typ || u.GetName() != n || got != color {
			t.Fatalf("event %s %s color %q, want %s %s %q", ev.Type, u.GetName(), got, typ, n, color)
		}
		return u
	}
	expect("ADDED", "pre", "red") // initial state
	create("blue", "blue")        // never sent
	create("red", "red")
	expect("ADDED", "red", "red")
	paint("blue", "red")
	expect("ADDED", "blue", "red")
	rv := paint("red", "green")
	// The last state that matched, at the revision of the change.
	if ev := expect("DELETED", "red", "red"); ev.GetResourceVersion() != rv {
		t.Fatalf("DELETED at resourceVersion %s, want %s", ev.GetResourceVersion(), rv)
	}
	paint("red", "yellow") // still not matching: nothing sent
	if _, err := e.reg.Patch(ctx, res, "default", "pre", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("MODIFIED", "pre", "red")
	if _, _, err := e.reg.Delete(ctx, res, "default", "blue", nil); err != nil {
		t.Fatal(err)
	}
	expect("DELETED", "blue", "red")

	// Inequalities work the same way.
	ne, err := e.reg.Watch(wctx, res, "default", selecting(t, "spec.color!=red"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ne, false); ev.Type != "ADDED" || name(ev) != "red" {
		t.Fatalf("initial %s %s, want ADDED red", ev.Type, name(ev))
	}
	paint("pre", "blue")
	if ev := next(t, ne, false); ev.Type != "ADDED" || name(ev) != "pre" {
		t.Fatalf("got %s %s, want ADDED pre", ev.Type, name(ev))
	}
	expect("DELETED", "pre", "red")

	_, err = e.reg.Watch(wctx, res, "default", selecting(t, "spec.shape=round"))
	wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
}

// BenchmarkListSelectableField lists 2,000 objects, one in ten matching,
// by a selectable field (each object is decoded to be checked) and, for
// comparison, all of them.
func BenchmarkListSelectableField(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	res := e.lamps(b)
	for i := range 2000 {
		color := "blue"
		if i%10 == 0 {
			color = "red"
		}
		if _, err := e.reg.Create(ctx, res, "default", lamp(fmt.Sprintf("l%04d", i), map[string]any{"color": color, "size": int64(i)}), registry.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, sel := range []string{"spec.color=red", ""} {
		b.Run("selector="+sel, func(b *testing.B) {
			opts := selecting(b, sel)
			for range b.N {
				l, err := e.reg.List(ctx, res, "default", opts)
				if err != nil {
					b.Fatal(err)
				}
				want := 2000
				if sel != "" {
					want = 200
				}
				if len(l.Items) != want {
					b.Fatalf("%d items, want %d", len(l.Items), want)
				}
			}
		})
	}
}

// TestNamespacePhaseSelector: namespaces are selected by status.phase, as
// in Kubernetes.
func TestNamespacePhaseSelector(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	ns := e.lookup(t, "", "v1", "namespaces")
	l, err := e.reg.List(ctx, ns, "", selecting(t, "status.phase=Active"))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) == 0 || !slices.Contains(names(l), "default") {
		t.Fatalf("active namespaces %v, want default among them", names(l))
	}
	l, err = e.reg.List(ctx, ns, "", selecting(t, "status.phase=Terminating"))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Fatalf("terminating namespaces %v, want none", names(l))
	}
}
