package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/storage"
)

// protectedNamespaces are created at start and may not be deleted.
var protectedNamespaces = []string{"default", "kube-system", "kube-public"}

// namespaceFinalizer is the spec.finalizers entry the namespace
// controller removes, through the finalize subresource, once the
// namespace is empty.
const namespaceFinalizer = "kubernetes"

func namespaceResource() *Resource { return &builtins[0].Resource }

// prepareNamespace defaults spec.finalizers and status.phase on create.
func prepareNamespace(_ *Registry, obj map[string]any) error {
	obj["spec"] = map[string]any{"finalizers": []any{namespaceFinalizer}}
	obj["status"] = map[string]any{"phase": "Active"}
	return nil
}

// checkNamespaceOpen fails unless namespace exists and is not terminating.
// Like Kubernetes' namespace lifecycle admission it answers from a cache
// (kept by the feed and by this replica's own writes, so a namespace this
// replica marked Terminating is refused at once, one marked by another
// replica as soon as the feed delivers it) and reads the store on a miss.
func (r *Registry) checkNamespaceOpen(ctx context.Context, namespace string) error {
	e, ok := r.namespaces.get(namespace)
	if !ok {
		o, err := r.store.Get(ctx, storage.Key{Resource: namespaceResource().StorageKey, Name: namespace})
		if err != nil {
			return storageError(err, namespaceResource(), namespace)
		}
		if e, err = namespaceState(o); err != nil {
			return apierrors.NewInternalError(err)
		}
	}
	if e.terminating {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, namespace,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
	}
	return nil
}

// namespaceEntry is a namespace as last seen, at revision rev.
type namespaceEntry struct {
	rev         int64
	gone        bool
	terminating bool
}

// namespaceState reads the entry of a stored namespace.
func namespaceState(o storage.Object) (namespaceEntry, error) {
	m, err := decodeValue(o.Value)
	if err != nil {
		return namespaceEntry{}, fmt.Errorf("stored namespace %s: %w", o.Name, err)
	}
	return namespaceEntry{rev: o.Revision, terminating: deletionTimestamp(m) != ""}, nil
}

// namespaceCache holds the latest known state of every namespace. Entries
// only move forward in revision, so feed events and local writes can be
// applied in any order; deleted namespaces stay as gone entries until the
// next reload.
type namespaceCache struct {
	mu     sync.RWMutex
	byName map[string]namespaceEntry
}

// get returns the state of name; false when unknown or deleted, and always
// for a nil cache.
func (c *namespaceCache) get(name string) (namespaceEntry, bool) {
	if c == nil {
		return namespaceEntry{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.byName[name]
	return e, ok && !e.gone
}

// set records e for name unless a newer state is known. A nil cache
// ignores it.
func (c *namespaceCache) set(name string, e namespaceEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byName[name]; !ok || old.rev < e.rev {
		c.byName[name] = e
	}
}

// reset replaces the cache with a list of every namespace at rev, keeping
// entries newer than the list.
func (c *namespaceCache) reset(objs []storage.Object, rev int64) error {
	byName := make(map[string]namespaceEntry, len(objs))
	for _, o := range objs {
		e, err := namespaceState(o)
		if err != nil {
			return fmt.Errorf("registry: load namespaces: %w", err)
		}
		byName[o.Name] = e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, old := range c.byName {
		if old.rev > rev && old.rev > byName[name].rev {
			byName[name] = old
		}
	}
	c.byName = byName
	return nil
}

// namespaceMirror keeps the namespace cache current from the feed.
func (r *Registry) namespaceMirror() mirror {
	return mirror{resource: namespaceResource().StorageKey, reset: r.namespaces.reset, progress: r.newProgress(), apply: func(ev *feed.Event) {
		if ev.Type == storage.Deleted {
			r.namespaces.set(ev.Object.Name, namespaceEntry{rev: ev.Revision, gone: true})
			return
		}
		if e, err := namespaceState(ev.Object); err == nil {
			r.namespaces.set(ev.Object.Name, e)
		}
	}}
}

// markNamespaceTerminating sets phase Terminating on a namespace being
// deleted.
func markNamespaceTerminating(obj map[string]any) {
	status, ok := obj["status"].(map[string]any)
	if !ok {
		status = map[string]any{}
		obj["status"] = status
	}
	status["phase"] = "Terminating"
}

// specFinalizers returns spec.finalizers of a namespace.
func specFinalizers(obj map[string]any) []any {
	list, _ := specOf(obj)["finalizers"].([]any)
	return list
}

// specOf returns obj's spec, nil when it has none.
func specOf(obj map[string]any) map[string]any {
	spec, _ := obj["spec"].(map[string]any)
	return spec
}

// deleteAll deletes every object of res in namespace (all namespaces if
// empty) and returns how many are left (objects waiting for finalizers).
func (r *Registry) deleteAll(ctx context.Context, res *Resource, namespace string) (int, error) {
	list, err := r.store.List(ctx, storage.ListOptions{Resource: res.StorageKey, Namespace: namespace})
	if err != nil {
		return 0, err
	}
	left := 0
	for _, o := range list.Objects {
		_, gone, err := r.delete(ctx, res, o.Namespace, o.Name, nil, false)
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
		if err == nil && !gone {
			left++
		}
	}
	return left, nil
}

// ignoreNotFound drops storage's not-found error.
func ignoreNotFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}
