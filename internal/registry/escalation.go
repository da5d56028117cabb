package registry

import (
	"context"
	"reflect"

	rbacv1 "k8s.io/api/rbac/v1"
)

// EscalationGuard keeps writes of RBAC objects from granting more than
// their author holds, as Kubernetes' privilege-escalation prevention does.
// Package rbac implements it; the registry only calls it, with the user of
// ctx (request.UserFrom) as the author.
type EscalationGuard interface {
	// CheckRole is asked before a Role of namespace (or a ClusterRole,
	// namespace "") named name is created, or updated with other rules.
	// An error, a *StatusError, rejects the write.
	CheckRole(ctx context.Context, namespace, name string, rules []rbacv1.PolicyRule) error
	// CheckBinding is asked before a RoleBinding of namespace (or a
	// ClusterRoleBinding, namespace "") named name is created, or updated
	// with another roleRef or other subjects. An error, a *StatusError,
	// rejects the write.
	CheckBinding(ctx context.Context, namespace, name string, ref rbacv1.RoleRef) error
}

// GuardEscalation makes every write of a Role, ClusterRole, RoleBinding or
// ClusterRoleBinding ask g first. It must be called before Start.
func (r *Registry) GuardEscalation(g EscalationGuard) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.escalation = g
}

// checkEscalation asks the EscalationGuard, if any, about a write of obj
// (valid, as the registry will store it) over old (nil on create). A write
// that leaves what the object grants as it was is not asked about: it
// grants nothing new.
func (r *Registry) checkEscalation(ctx context.Context, res *Resource, obj, old map[string]any) error {
	if r.escalation == nil {
		return nil
	}
	ns, name := metaString(obj, "namespace"), metaString(obj, "name")
	switch res.StorageKey {
	case roleBuiltin.StorageKey, clusterRoleBuiltin.StorageKey:
		if old != nil && reflect.DeepEqual(obj["rules"], old["rules"]) {
			return nil
		}
		return r.escalation.CheckRole(ctx, ns, name, asTyped[rbacv1.ClusterRole](obj).Rules)
	case roleBindingBuiltin.StorageKey, clusterRoleBindingBuiltin.StorageKey:
		if old != nil && reflect.DeepEqual(obj["roleRef"], old["roleRef"]) && reflect.DeepEqual(obj["subjects"], old["subjects"]) {
			return nil
		}
		return r.escalation.CheckBinding(ctx, ns, name, asTyped[rbacv1.RoleBinding](obj).RoleRef)
	}
	return nil
}
