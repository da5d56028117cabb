package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/setpoint/setpoint/internal/storage"
)

// protectedNamespaces are created at start and may not be deleted.
var protectedNamespaces = []string{"default", "kube-system", "kube-public"}

// namespaceFinalizer is the spec.finalizers entry the namespace cleanup
// removes once the namespace is empty.
const namespaceFinalizer = "kubernetes"

func namespaceResource() *Resource { return &builtins[0].Resource }

// prepareNamespace defaults spec.finalizers and status.phase on create.
func prepareNamespace(_ *Registry, obj map[string]any) {
	obj["spec"] = map[string]any{"finalizers": []any{namespaceFinalizer}}
	obj["status"] = map[string]any{"phase": "Active"}
}

// checkNamespaceOpen fails unless namespace exists and is not terminating.
func (r *Registry) checkNamespaceOpen(ctx context.Context, namespace string) error {
	o, err := r.store.Get(ctx, storage.Key{Resource: namespaceResource().StorageKey, Name: namespace})
	if err != nil {
		return storageError(err, namespaceResource(), namespace)
	}
	m, err := decodeValue(o.Value)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if deletionTimestamp(m) != "" {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, namespace,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
	}
	return nil
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
	spec, _ := obj["spec"].(map[string]any)
	list, _ := spec["finalizers"].([]any)
	return list
}

// cleanNamespace deletes every object in the terminating namespace name
// and, once none is left, removes the namespace. It reports whether the
// namespace is gone.
func (r *Registry) cleanNamespace(ctx context.Context, name string) (bool, error) {
	left := false
	for _, res := range r.storageKeys(true) {
		n, err := r.deleteAll(ctx, res, name)
		if err != nil {
			return false, err
		}
		if n > 0 {
			left = true
		}
	}
	if left {
		return false, nil
	}
	ns := namespaceResource()
	for range 5 {
		o, err := r.store.Get(ctx, storage.Key{Resource: ns.StorageKey, Name: name})
		if errors.Is(err, storage.ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		m, err := decodeValue(o.Value)
		if err != nil {
			return false, err
		}
		if spec := specFinalizers(m); slices.Contains(spec, any(namespaceFinalizer)) {
			m["spec"].(map[string]any)["finalizers"] = slices.DeleteFunc(spec, func(f any) bool { return f == namespaceFinalizer })
			value, err := encodeValue(m)
			if err != nil {
				return false, err
			}
			_, err = r.store.Update(ctx, o.Key, value, labelsOf(m), storage.Precondition{Revision: o.Revision})
			if err != nil && !errors.Is(err, storage.ErrConflict) {
				return false, err
			}
			continue
		}
		if len(specFinalizers(m)) > 0 || len(finalizers(m)) > 0 {
			return false, nil
		}
		_, err = r.store.Delete(ctx, o.Key, storage.Precondition{Revision: o.Revision})
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		return err == nil || errors.Is(err, storage.ErrNotFound), ignoreNotFound(err)
	}
	return false, nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
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
		_, gone, err := r.Delete(ctx, res, o.Namespace, o.Name, nil)
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
		if err == nil && !gone {
			left++
		}
	}
	return left, nil
}
