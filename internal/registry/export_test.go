package registry

import "context"

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
