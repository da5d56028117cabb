package registry

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	smdtyped "sigs.k8s.io/structured-merge-diff/v6/typed"
)

// ExpireEvents runs one pass of Event expiry.
func ExpireEvents(ctx context.Context, r *Registry) error { return r.expireEvents(ctx) }

// CreateManagedFields returns the managedFields a create of obj by
// manager records, computed by trackCreate and by the FieldManager.
func (r *Registry) CreateManagedFields(res *Resource, obj map[string]any, manager string) (fast, slow any) {
	opts := WriteOptions{FieldManager: manager}
	fast = metadata(r.trackCreate(res, deepCopy(obj), opts))["managedFields"]
	slow = metadata(r.trackUpdate(res, nil, deepCopy(obj), opts))["managedFields"]
	return fast, slow
}

// TrackCreate returns obj with the managedFields a create by manager
// records.
func (r *Registry) TrackCreate(res *Resource, obj map[string]any, manager string) map[string]any {
	return r.trackCreate(res, obj, WriteOptions{FieldManager: manager})
}

// TrackUpdate returns obj with the managedFields an update of live by
// manager through subresource sub records, computed by the FieldManager
// (library) or by trackUpdateFast, which may decline (ok false).
func (r *Registry) TrackUpdate(res *Resource, live, obj map[string]any, manager, sub string, library bool) (out map[string]any, ok bool) {
	if library {
		return r.trackUpdateLibrary(res, live, obj, WriteOptions{FieldManager: manager, Subresource: sub}), true
	}
	return r.trackUpdateFast(res, live, obj, sub, manager)
}

// CreateFieldsFromSchema reports whether the fields of a create of obj
// are read from the schema rather than computed by the merge engine.
func (r *Registry) CreateFieldsFromSchema(res *Resource, obj map[string]any) bool {
	_, ok := r.managersOf(res).create.fields(res, obj)
	return ok
}

// CompareObjects compares live and obj (without managedFields) with the
// schema walker and with the merge engine. ok is false when the walker
// declines; err is the engine's.
func (r *Registry) CompareObjects(res *Resource, live, obj map[string]any) (walker, engine *smdtyped.Comparison, ok bool, err error) {
	fm := r.managersOf(res)
	live, obj = withoutManagedFields(live), withoutManagedFields(obj)
	walker, ok = fm.create.compare(live, obj)
	lt, err := fm.types.ObjectToTyped(&unstructured.Unstructured{Object: live}, smdtyped.AllowDuplicates)
	if err != nil {
		return walker, nil, ok, err
	}
	ot, err := fm.types.ObjectToTyped(&unstructured.Unstructured{Object: obj}, smdtyped.AllowDuplicates)
	if err != nil {
		return walker, nil, ok, err
	}
	engine, err = lt.Compare(ot)
	return walker, engine, ok, err
}
