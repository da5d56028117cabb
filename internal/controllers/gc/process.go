package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/pkg/client"
)

// process brings the object uid one step towards what its owners and
// finalizers ask for.
func (c *Collector) process(ctx context.Context, uid types.UID) error {
	n, ok := c.graph.get(uid)
	if !ok {
		return nil
	}
	if !n.orphaning() && !n.deletingDependents() && (n.deleting || len(n.owners) == 0 || c.graph.solidOwners(n)) {
		return nil
	}
	// What is left acts on the graph's dependents or asks the server
	// about owners the graph does not know: wait until every informer
	// has loaded its first list, so that the graph knows every object
	// (and a restart does not read every owner from the server).
	if c.park(uid) {
		return nil
	}
	switch {
	case n.orphaning():
		return c.orphanDependents(ctx, n)
	case n.deletingDependents():
		return c.awaitDependents(ctx, n)
	}
	return c.collect(ctx, n)
}

// ownerState is what a dependent's owner turned out to be.
type ownerState int

const (
	// solid owners exist and are not waiting for their dependents.
	solid ownerState = iota
	// dangling owners do not exist: no object of that kind, namespace,
	// name and uid.
	dangling
	// waiting owners are in foreground deletion.
	waiting
)

// errInvalidScope marks a cluster-scoped object that names a namespaced
// owner: Kubernetes treats such a reference as unresolvable and leaves
// the object alone.
var errInvalidScope = errors.New("a cluster-scoped object cannot have a namespaced owner")

// collect deletes the dependent n if none of its owners exists any more,
// or drops its references to owners that are gone or waiting when another
// owner remains. It reads n and its owners from the server first, so the
// decision never rests on a stale cache.
func (c *Collector) collect(ctx context.Context, n node) error {
	cl, latest, err := c.readFresh(ctx, n)
	if latest == nil || err != nil {
		return err
	}
	if latest.DeletionTimestamp != nil || len(latest.OwnerReferences) == 0 {
		// Replaced, being deleted, or released meanwhile: the events of
		// that change bring it back if needed.
		return nil
	}
	var live, gone []types.UID
	foreground := false
	for _, r := range latest.OwnerReferences {
		state, err := c.classify(ctx, latest.Namespace, r)
		if errors.Is(err, errInvalidScope) {
			c.log.Info("gc: leaving an object with an unresolvable owner reference", "kind", n.res.Kind, "name", n.name, "owner", r.Kind+"/"+r.Name, "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		switch state {
		case solid:
			live = append(live, r.UID)
		case waiting:
			foreground = true
			gone = append(gone, r.UID)
		case dangling:
			gone = append(gone, r.UID)
		}
	}
	switch {
	case len(live) > 0:
		if len(gone) == 0 {
			return nil
		}
		return c.dropOwners(ctx, cl, latest, gone)
	case foreground && c.graph.hasDependents(n.uid):
		// An owner waits for n: delete n in foreground too, so that the
		// owner waits for n's own blocking dependents. When one of those
		// is itself waiting for its dependents, the references may form
		// a cycle: n stops blocking its owners, as in Kubernetes, so
		// that the cycle cannot wait for itself forever.
		if c.graph.dependentWaiting(n.uid) {
			if err := c.unblock(ctx, cl, latest); err != nil {
				return err
			}
		}
		return c.delete(ctx, cl, latest, metav1.DeletePropagationForeground)
	}
	policy := metav1.DeletePropagationBackground
	switch {
	case slices.Contains(latest.Finalizers, metav1.FinalizerOrphanDependents):
		policy = metav1.DeletePropagationOrphan
	case slices.Contains(latest.Finalizers, metav1.FinalizerDeleteDependents):
		policy = metav1.DeletePropagationForeground
	}
	return c.delete(ctx, cl, latest, policy)
}

// classify reads the owner r of an object in namespace ns from the server.
func (c *Collector) classify(ctx context.Context, ns string, r metav1.OwnerReference) (ownerState, error) {
	if c.isAbsent(absentKey{uid: r.UID}) {
		// Seen deleted (or missing as a cluster-scoped object): the
		// kind may not even be served any more.
		return dangling, nil
	}
	c.mu.RLock()
	res, ok := c.cat.lookup(r.APIVersion, r.Kind)
	c.mu.RUnlock()
	if !ok {
		c.poke()
		return 0, fmt.Errorf("gc: owner kind %s %s is not served", r.APIVersion, r.Kind)
	}
	key := absentKey{uid: r.UID}
	if res.Namespaced {
		if ns == "" {
			return 0, errInvalidScope
		}
		key.namespace = ns
	}
	if c.isAbsent(key) {
		return dangling, nil
	}
	cl, err := c.clientFor(res)
	if err != nil {
		return 0, err
	}
	o, err := cl.Get(ctx, key.namespace, r.Name)
	if client.IsNotFound(err) || (err == nil && o.UID != r.UID) {
		c.markAbsent(key)
		return dangling, nil
	}
	if err != nil {
		return 0, fmt.Errorf("gc: read owner %s %s: %w", r.Kind, r.Name, err)
	}
	if o.DeletionTimestamp != nil && slices.Contains(o.Finalizers, metav1.FinalizerDeleteDependents) {
		return waiting, nil
	}
	return solid, nil
}

// delete deletes obj with policy, on condition that it is still the same
// object.
func (c *Collector) delete(ctx context.Context, cl *metaClient, obj *meta, policy metav1.DeletionPropagation) error {
	uid := obj.UID
	err := cl.Delete(ctx, obj.Namespace, obj.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	if client.IsNotFound(err) || client.IsConflict(err) {
		// Gone already, or replaced by another object of that name.
		return nil
	}
	if err != nil {
		return fmt.Errorf("gc: delete %s %s/%s: %w", cl.Resource().Kind, obj.Namespace, obj.Name, err)
	}
	c.log.Debug("gc: deleted", "kind", cl.Resource().Kind, "namespace", obj.Namespace, "name", obj.Name, "propagationPolicy", policy)
	return nil
}

// metadataPatch is a JSON merge patch of metadata, conditional on
// resourceVersion.
type metadataPatch struct {
	Metadata struct {
		ResourceVersion string                   `json:"resourceVersion"`
		OwnerReferences *[]metav1.OwnerReference `json:"ownerReferences,omitempty"`
		Finalizers      *[]string                `json:"finalizers,omitempty"`
	} `json:"metadata"`
}

// patch sends p for obj; a conflict is an error, to be retried from a
// fresh read.
func (c *Collector) patch(ctx context.Context, cl *metaClient, obj *meta, p *metadataPatch) error {
	p.Metadata.ResourceVersion = obj.ResourceVersion
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("gc: encode patch: %w", err)
	}
	_, err = cl.Patch(ctx, obj.Namespace, obj.Name, types.MergePatchType, body, metav1.PatchOptions{})
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gc: patch %s %s/%s: %w", cl.Resource().Kind, obj.Namespace, obj.Name, err)
	}
	return nil
}

// dropOwners removes obj's references to the owners uids.
func (c *Collector) dropOwners(ctx context.Context, cl *metaClient, obj *meta, uids []types.UID) error {
	keep := slices.DeleteFunc(slices.Clone(obj.OwnerReferences), func(r metav1.OwnerReference) bool {
		return slices.Contains(uids, r.UID)
	})
	if len(keep) == len(obj.OwnerReferences) {
		return nil
	}
	if keep == nil {
		keep = []metav1.OwnerReference{}
	}
	var p metadataPatch
	p.Metadata.OwnerReferences = &keep
	return c.patch(ctx, cl, obj, &p)
}

// unblock clears blockOwnerDeletion on every owner reference of obj.
func (c *Collector) unblock(ctx context.Context, cl *metaClient, obj *meta) error {
	refs := slices.Clone(obj.OwnerReferences)
	changed := false
	for i := range refs {
		if blocks(refs[i]) {
			refs[i].BlockOwnerDeletion = new(false)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	var p metadataPatch
	p.Metadata.OwnerReferences = &refs
	return c.patch(ctx, cl, obj, &p)
}

// readFresh reads the object n from the server with the client of its
// resource. The object is nil, and so is the error, when it is gone or has
// been replaced by another of the same name (another uid).
func (c *Collector) readFresh(ctx context.Context, n node) (*metaClient, *meta, error) {
	cl, err := c.clientFor(n.res)
	if err != nil {
		return nil, nil, err
	}
	latest, err := cl.Get(ctx, n.namespace, n.name)
	if client.IsNotFound(err) {
		return cl, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("gc: read %s %s/%s: %w", n.res.Kind, n.namespace, n.name, err)
	}
	if latest.UID != n.uid {
		return cl, nil, nil
	}
	return cl, latest, nil
}

// removeFinalizer removes finalizer f from the object n, read fresh.
func (c *Collector) removeFinalizer(ctx context.Context, n node, f string) error {
	cl, latest, err := c.readFresh(ctx, n)
	if latest == nil || err != nil {
		return err
	}
	if !slices.Contains(latest.Finalizers, f) {
		return nil
	}
	rest := slices.DeleteFunc(slices.Clone(latest.Finalizers), func(s string) bool { return s == f })
	var p metadataPatch
	p.Metadata.Finalizers = &rest
	return c.patch(ctx, cl, latest, &p)
}

// awaitDependents handles an owner in foreground deletion: each dependent
// is processed (an owner waiting for it is reason to delete it), and once
// no dependent with blockOwnerDeletion is left the owner's
// foregroundDeletion finalizer goes, which deletes it.
func (c *Collector) awaitDependents(ctx context.Context, n node) error {
	blocking := 0
	for _, d := range c.graph.dependentsOf(n.uid) {
		c.queue.Add(d.uid)
		if r, ok := d.ownerRef(n.uid); ok && blocks(r) {
			blocking++
		}
	}
	if blocking > 0 {
		return nil
	}
	return c.removeFinalizer(ctx, n, metav1.FinalizerDeleteDependents)
}

// orphanDependents handles an owner with the orphan finalizer: its
// references are removed from every dependent, then the finalizer.
func (c *Collector) orphanDependents(ctx context.Context, n node) error {
	for _, d := range c.graph.dependentsOf(n.uid) {
		cl, err := c.clientFor(d.res)
		if err != nil {
			return err
		}
		latest, err := cl.Get(ctx, d.namespace, d.name)
		if client.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("gc: read %s %s/%s: %w", d.res.Kind, d.namespace, d.name, err)
		}
		if latest.UID != d.uid {
			continue
		}
		if err := c.dropOwners(ctx, cl, latest, []types.UID{n.uid}); err != nil {
			return err
		}
	}
	return c.removeFinalizer(ctx, n, metav1.FinalizerOrphanDependents)
}
