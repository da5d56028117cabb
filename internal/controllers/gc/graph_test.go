package gc

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/pkg/client"
)

var (
	widgets = client.Resource{Group: "example.com", Version: "v1", Resource: "widgets", Kind: "Widget", Namespaced: true}
	gizmos  = client.Resource{Group: "example.com", Version: "v1", Resource: "gizmos", Kind: "Gizmo"}
)

// testNode is a node of res in namespace "default" (none for a
// cluster-scoped res) owned by owners.
func testNode(res client.Resource, uid types.UID, owners ...*node) *node {
	n := &node{res: res, name: string(uid), uid: uid}
	if res.Namespaced {
		n.namespace = "default"
	}
	for _, o := range owners {
		n.owners = append(n.owners, metav1.OwnerReference{APIVersion: "example.com/v1", Kind: o.res.Kind, Name: o.name, UID: o.uid, BlockOwnerDeletion: new(true)})
	}
	return n
}

func sorted(uids []types.UID) []types.UID {
	slices.Sort(uids)
	return slices.Compact(uids)
}

// TestGraphLinks follows an object through the graph: it is linked to its
// owners, a dropped owner is unlinked and processed, and its removal
// processes its owners and its dependents.
func TestGraphLinks(t *testing.T) {
	g := newGraph()
	a, b := testNode(widgets, "a"), testNode(widgets, "b")
	if got := g.upsert(a); len(got) != 0 {
		t.Errorf("object without owners or dependents: process %v, want nothing", got)
	}
	g.upsert(b)
	c := testNode(widgets, "c", a, b)
	if got := sorted(g.upsert(c)); !slices.Equal(got, []types.UID{"a", "b", "c"}) {
		t.Errorf("new dependent: process %v, want a, b, c", got)
	}
	if got := sorted(g.upsert(testNode(widgets, "c", a, b))); !slices.Equal(got, []types.UID{"c"}) {
		t.Errorf("unchanged dependent (a resync): process %v, want c alone", got)
	}
	if got := sorted(g.upsert(testNode(widgets, "c", a))); !slices.Equal(got, []types.UID{"b", "c"}) {
		t.Errorf("dependent dropping owner b: process %v, want b, c", got)
	}
	if g.hasDependents("b") || !g.hasDependents("a") {
		t.Errorf("after dropping b: dependents of a %v, of b %v", g.dependentsOf("a"), g.dependentsOf("b"))
	}
	d := testNode(widgets, "d", c)
	g.upsert(d)
	if got := sorted(g.remove(gizmos, "c")); got != nil {
		t.Errorf("delete of c from another resource's informer: process %v, want nothing", got)
	}
	if got := sorted(g.remove(widgets, "c")); !slices.Equal(got, []types.UID{"a", "d"}) {
		t.Errorf("c deleted: process %v, want its owner a and its dependent d", got)
	}
	if _, ok := g.get("c"); ok || g.hasDependents("a") {
		t.Error("c still in the graph after its deletion")
	}
}

// TestGraphForegroundTransition checks that an owner starting foreground
// deletion gets its dependents processed, and that a dependent being
// deleted gets its owners processed.
func TestGraphForegroundTransition(t *testing.T) {
	g := newGraph()
	o := testNode(widgets, "o")
	g.upsert(o)
	g.upsert(testNode(widgets, "d", o))
	fg := testNode(widgets, "o")
	fg.deleting, fg.finalizers = true, []string{metav1.FinalizerDeleteDependents}
	if got := sorted(g.upsert(fg)); !slices.Equal(got, []types.UID{"d", "o"}) {
		t.Errorf("owner in foreground deletion: process %v, want d, o", got)
	}
	dd := testNode(widgets, "d", o)
	dd.deleting = true
	if got := sorted(g.upsert(dd)); !slices.Equal(got, []types.UID{"d", "o"}) {
		t.Errorf("dependent being deleted: process %v, want d, o", got)
	}
}

// TestGraphSolidOwners checks when the graph alone may say a dependent's
// owners are alive: every one known, of the reference's kind, in the
// dependent's namespace unless cluster-scoped, and not in foreground
// deletion.
func TestGraphSolidOwners(t *testing.T) {
	g := newGraph()
	w, cluster := testNode(widgets, "w"), testNode(gizmos, "g")
	elsewhere := testNode(widgets, "x")
	elsewhere.namespace = "other"
	fg := testNode(widgets, "fg")
	fg.deleting, fg.finalizers = true, []string{metav1.FinalizerDeleteDependents}
	held := testNode(widgets, "held")
	held.deleting, held.finalizers = true, []string{"example.com/hold"}
	for _, n := range []*node{w, cluster, elsewhere, fg, held} {
		g.upsert(n)
	}
	unknown := testNode(widgets, "unknown")
	for _, tc := range []struct {
		name  string
		dep   *node
		solid bool
	}{
		{"namespaced owner", testNode(widgets, "d1", w), true},
		{"cluster-scoped owner", testNode(widgets, "d2", cluster), true},
		{"owner being deleted for another finalizer", testNode(widgets, "d3", held), true},
		{"unknown owner", testNode(widgets, "d4", w, unknown), false},
		{"owner in another namespace", testNode(widgets, "d5", elsewhere), false},
		{"owner in foreground deletion", testNode(widgets, "d6", fg), false},
	} {
		if got := g.solidOwners(*tc.dep); got != tc.solid {
			t.Errorf("%s: solid %v, want %v", tc.name, got, tc.solid)
		}
	}
	wrongKind := testNode(widgets, "d7", w)
	wrongKind.owners[0].Kind = "Gizmo"
	if g.solidOwners(*wrongKind) {
		t.Error("a reference naming another kind than the object with its uid is solid")
	}
}

// TestGraphForget drops every node of a resource no longer served and
// processes their dependents.
func TestGraphForget(t *testing.T) {
	g := newGraph()
	gz := testNode(gizmos, "g")
	g.upsert(gz)
	g.upsert(testNode(widgets, "w", gz))
	if got := sorted(g.forget(gizmos)); !slices.Equal(got, []types.UID{"w"}) {
		t.Errorf("forget gizmos: process %v, want w", got)
	}
	if _, ok := g.get("g"); ok {
		t.Error("g still in the graph")
	}
	if got := sorted(g.all()); !slices.Equal(got, []types.UID{"w"}) {
		t.Errorf("nodes left %v, want w", got)
	}
}
