package informer

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NamespaceIndex is the built-in index of objects by namespace:
// ByIndex(NamespaceIndex, "ns") returns the objects in namespace ns
// ("" for cluster-scoped objects).
const NamespaceIndex = "namespace"

// IndexFunc returns the values under which an object is indexed; an object
// may have none, one or many.
type IndexFunc[PT any] func(obj PT) []string

// KeyOf returns an object's cache key: "namespace/name", or "name" for a
// cluster-scoped object.
func KeyOf(obj metav1.Object) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns + "/" + obj.GetName()
	}
	return obj.GetName()
}

// objKey names a cached object without allocating a joined string.
type objKey struct{ namespace, name string }

// cache is the informer's thread-safe store. Objects are kept by namespace
// then name, which doubles as the namespace index at no extra cost; other
// indexes map an index value to the keys of the objects that have it.
type cache[PT metav1.Object] struct {
	indexers map[string]IndexFunc[PT]

	mu      sync.RWMutex
	items   map[string]map[string]PT
	indices map[string]map[string]map[objKey]struct{}
	count   int
}

func newCache[PT metav1.Object](indexers map[string]IndexFunc[PT]) *cache[PT] {
	c := &cache[PT]{
		indexers: indexers,
		items:    map[string]map[string]PT{},
		indices:  make(map[string]map[string]map[objKey]struct{}, len(indexers)),
	}
	for name := range indexers {
		c.indices[name] = map[string]map[objKey]struct{}{}
	}
	return c
}

func (c *cache[PT]) get(namespace, name string) (PT, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	obj, ok := c.items[namespace][name]
	return obj, ok
}

// put stores obj, replacing and returning the object with its key, if any.
func (c *cache[PT]) put(obj PT) (old PT, existed bool) {
	k := objKey{obj.GetNamespace(), obj.GetName()}
	c.mu.Lock()
	defer c.mu.Unlock()
	names := c.items[k.namespace]
	if names == nil {
		names = map[string]PT{}
		c.items[k.namespace] = names
	}
	old, existed = names[k.name]
	if existed {
		c.unindex(k, old)
	} else {
		c.count++
	}
	names[k.name] = obj
	c.index(k, obj)
	return old, existed
}

// remove deletes and returns the object with obj's key, if cached.
func (c *cache[PT]) remove(namespace, name string) (old PT, existed bool) {
	k := objKey{namespace, name}
	c.mu.Lock()
	defer c.mu.Unlock()
	names := c.items[namespace]
	old, existed = names[name]
	if !existed {
		return old, false
	}
	c.unindex(k, old)
	delete(names, name)
	if len(names) == 0 {
		delete(c.items, namespace)
	}
	c.count--
	return old, true
}

// index adds k under obj's values; the caller holds mu.
func (c *cache[PT]) index(k objKey, obj PT) {
	for name, fn := range c.indexers {
		idx := c.indices[name]
		for _, v := range fn(obj) {
			keys := idx[v]
			if keys == nil {
				keys = map[objKey]struct{}{}
				idx[v] = keys
			}
			keys[k] = struct{}{}
		}
	}
}

// unindex removes k from obj's values; cached objects are never modified,
// so the index functions give the same values they gave when indexed. The
// caller holds mu.
func (c *cache[PT]) unindex(k objKey, obj PT) {
	for name, fn := range c.indexers {
		idx := c.indices[name]
		for _, v := range fn(obj) {
			keys := idx[v]
			delete(keys, k)
			if len(keys) == 0 {
				delete(idx, v)
			}
		}
	}
}

func (c *cache[PT]) list() []PT {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]PT, 0, c.count)
	for _, names := range c.items {
		for _, obj := range names {
			out = append(out, obj)
		}
	}
	return out
}

func (c *cache[PT]) byIndex(index, value string) []PT {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if index == NamespaceIndex {
		names := c.items[value]
		out := make([]PT, 0, len(names))
		for _, obj := range names {
			out = append(out, obj)
		}
		return out
	}
	keys := c.indices[index][value]
	out := make([]PT, 0, len(keys))
	for k := range keys {
		out = append(out, c.items[k.namespace][k.name])
	}
	return out
}
