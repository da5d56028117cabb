package gc

import (
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/pkg/client"
)

// node is what the graph knows of one object an informer delivered.
type node struct {
	res       client.Resource
	namespace string
	name      string
	uid       types.UID
	owners    []metav1.OwnerReference
	// deleting is set once the object has a deletionTimestamp.
	deleting   bool
	finalizers []string
}

// deletingDependents reports whether the object waits, in foreground
// deletion, for its dependents to go.
func (n *node) deletingDependents() bool {
	return n.deleting && slices.Contains(n.finalizers, metav1.FinalizerDeleteDependents)
}

// orphaning reports whether the object waits for its dependents to be
// released from their references to it.
func (n *node) orphaning() bool {
	return n.deleting && slices.Contains(n.finalizers, metav1.FinalizerOrphanDependents)
}

// ownerRef returns n's reference to owner, if any.
func (n *node) ownerRef(owner types.UID) (metav1.OwnerReference, bool) {
	for _, r := range n.owners {
		if r.UID == owner {
			return r, true
		}
	}
	return metav1.OwnerReference{}, false
}

// graph is the owner->dependents graph of every object the informers
// deliver, keyed by uid. Owners need not be known objects: a dependent's
// reference to an owner uid the graph never saw is kept in the dependents
// index all the same, so that the owner's absence can be checked. The
// graph is safe for concurrent use; its methods return the uids whose
// processing the change calls for.
type graph struct {
	mu    sync.Mutex
	nodes map[types.UID]*node
	// dependents maps an owner uid to the uids of the objects that
	// reference it.
	dependents map[types.UID]map[types.UID]struct{}
}

func newGraph() *graph {
	return &graph{nodes: map[types.UID]*node{}, dependents: map[types.UID]map[types.UID]struct{}{}}
}

// nodeOf builds the node of an object delivered by res's informer.
func nodeOf(res client.Resource, obj metav1.Object) *node {
	return &node{
		res:        res,
		namespace:  obj.GetNamespace(),
		name:       obj.GetName(),
		uid:        obj.GetUID(),
		owners:     slices.Clone(obj.GetOwnerReferences()),
		deleting:   obj.GetDeletionTimestamp() != nil,
		finalizers: slices.Clone(obj.GetFinalizers()),
	}
}

// needsWork reports whether processing n can do anything: it has owners,
// or waits for its dependents (see Collector.process). Most objects do
// not, and are not queued for their own events.
func (n *node) needsWork() bool {
	return len(n.owners) > 0 || n.orphaning() || n.deletingDependents()
}

// upsert records the current state of n and returns the uids to process:
// n itself when it needsWork, the owners it gained or lost (one waiting for its dependents
// may now be free), every owner when n starts being deleted, and n's
// dependents when n starts or stops waiting for them.
func (g *graph) upsert(n *node) []types.UID {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.nodes[n.uid]
	g.nodes[n.uid] = n
	var out []types.UID
	if n.needsWork() {
		out = append(out, n.uid)
	}
	var oldOwners []metav1.OwnerReference
	if old != nil {
		oldOwners = old.owners
	}
	for _, r := range oldOwners {
		if _, still := n.ownerRef(r.UID); !still {
			g.unlink(r.UID, n.uid)
			out = append(out, r.UID)
		}
	}
	oldDeleting := old != nil && old.deleting
	for _, r := range n.owners {
		prev, had := old.ownerRefOrNone(r.UID)
		g.link(r.UID, n.uid)
		if !had || n.deleting != oldDeleting || !sameBlocking(prev, r) {
			out = append(out, r.UID)
		}
	}
	if old == nil || old.deletingDependents() != n.deletingDependents() {
		for d := range g.dependents[n.uid] {
			out = append(out, d)
		}
	}
	return out
}

// ownerRefOrNone is ownerRef on a node that may be nil.
func (n *node) ownerRefOrNone(owner types.UID) (metav1.OwnerReference, bool) {
	if n == nil {
		return metav1.OwnerReference{}, false
	}
	return n.ownerRef(owner)
}

// sameBlocking reports whether two references to one owner agree on
// blockOwnerDeletion.
func sameBlocking(a, b metav1.OwnerReference) bool {
	return blocks(a) == blocks(b)
}

// blocks reports whether r has blockOwnerDeletion set.
func blocks(r metav1.OwnerReference) bool {
	return r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion
}

// remove forgets the object uid, seen deleted by res's informer, and
// returns the uids to process: its owners (one may have waited for it)
// and its dependents (their owner is gone). A delete from another
// resource's informer than the one that delivered the node is ignored.
func (g *graph) remove(res client.Resource, uid types.UID) []types.UID {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nodes[uid]
	if !ok || n.res != res {
		return nil
	}
	return g.removeLocked(n)
}

func (g *graph) removeLocked(n *node) []types.UID {
	delete(g.nodes, n.uid)
	var out []types.UID
	for _, r := range n.owners {
		g.unlink(r.UID, n.uid)
		out = append(out, r.UID)
	}
	for d := range g.dependents[n.uid] {
		out = append(out, d)
	}
	return out
}

// forget removes every node delivered by res's informer, which stopped
// (the resource is no longer served), and returns the uids to process.
func (g *graph) forget(res client.Resource) []types.UID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []types.UID
	for _, n := range g.nodes {
		if n.res == res {
			out = append(out, g.removeLocked(n)...)
		}
	}
	return out
}

// link and unlink maintain the dependents index; g.mu is held.
func (g *graph) link(owner, dependent types.UID) {
	set, ok := g.dependents[owner]
	if !ok {
		set = map[types.UID]struct{}{}
		g.dependents[owner] = set
	}
	set[dependent] = struct{}{}
}

func (g *graph) unlink(owner, dependent types.UID) {
	set := g.dependents[owner]
	delete(set, dependent)
	if len(set) == 0 {
		delete(g.dependents, owner)
	}
}

// get returns a copy of the node uid.
func (g *graph) get(uid types.UID) (node, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nodes[uid]
	if !ok {
		return node{}, false
	}
	return *n, true
}

// dependentsOf returns copies of the known nodes that reference owner.
func (g *graph) dependentsOf(owner types.UID) []node {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]node, 0, len(g.dependents[owner]))
	for d := range g.dependents[owner] {
		if n, ok := g.nodes[d]; ok {
			out = append(out, *n)
		}
	}
	return out
}

// hasDependents reports whether any known object references owner.
func (g *graph) hasDependents(owner types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.dependents[owner]) > 0
}

// dependentWaiting reports whether a known dependent of owner is itself
// in foreground deletion, waiting for its own dependents.
func (g *graph) dependentWaiting(owner types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for d := range g.dependents[owner] {
		if n, ok := g.nodes[d]; ok && n.deletingDependents() {
			return true
		}
	}
	return false
}

// solidOwners reports whether every owner n references is a known object
// that is plainly alive: of the right scope for n and not waiting for its
// dependents. Only then may the collector leave n alone without asking the
// server.
func (g *graph) solidOwners(n node) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range n.owners {
		o, ok := g.nodes[r.UID]
		if !ok || o.deletingDependents() || o.res.Kind != r.Kind {
			return false
		}
		if o.res.Namespaced && o.namespace != n.namespace {
			return false
		}
	}
	return true
}

// all returns the uids of every known node.
func (g *graph) all() []types.UID {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]types.UID, 0, len(g.nodes))
	for uid := range g.nodes {
		out = append(out, uid)
	}
	return out
}
