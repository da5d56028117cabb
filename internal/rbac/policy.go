package rbac

import (
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/setpoint/setpoint/internal/registry"
)

// policy is this process's copy of the four RBAC resources, kept current
// by the registry (one view per resource, see views). Only what
// authorization needs is kept: rules by role, roleRef and subjects by
// binding.
type policy struct {
	mu sync.RWMutex
	// roles by namespace then name; clusterRoles by name.
	roles        map[string]map[string][]rbacv1.PolicyRule
	clusterRoles map[string][]rbacv1.PolicyRule
	// roleBindings by namespace then name; clusterRoleBindings by name.
	roleBindings        map[string]map[string]*binding
	clusterRoleBindings map[string]*binding
}

// binding is what authorization needs of a RoleBinding or
// ClusterRoleBinding.
type binding struct {
	name     string
	ref      rbacv1.RoleRef
	subjects []rbacv1.Subject
}

func newPolicy() *policy {
	return &policy{
		roles:               map[string]map[string][]rbacv1.PolicyRule{},
		clusterRoles:        map[string][]rbacv1.PolicyRule{},
		roleBindings:        map[string]map[string]*binding{},
		clusterRoleBindings: map[string]*binding{},
	}
}

// rulesOf returns the rules of the role a binding in namespace ns
// ("" for a ClusterRoleBinding) refers to; nil when it does not exist
// (yet). Called under p.mu.
func (p *policy) rulesOf(ns string, ref rbacv1.RoleRef) []rbacv1.PolicyRule {
	switch ref.Kind {
	case "ClusterRole":
		return p.clusterRoles[ref.Name]
	case "Role":
		return p.roles[ns][ref.Name]
	}
	return nil
}

// view adapts one RBAC resource of a policy to registry.View: decode
// turns a stored object into what set records under the policy's lock.
type view[T any] struct {
	p     *policy
	clear func(p *policy)
	set   func(p *policy, obj *T, deleted bool)
}

// Reset implements registry.View.
func (v *view[T]) Reset(objs []map[string]any, _ int64) {
	typed := make([]*T, 0, len(objs))
	for _, o := range objs {
		if t, ok := decode[T](o); ok {
			typed = append(typed, t)
		}
	}
	v.p.mu.Lock()
	defer v.p.mu.Unlock()
	v.clear(v.p)
	for _, t := range typed {
		v.set(v.p, t, false)
	}
}

// Apply implements registry.View.
func (v *view[T]) Apply(obj map[string]any, deleted bool, _ int64) {
	t, ok := decode[T](obj)
	if !ok {
		return
	}
	v.p.mu.Lock()
	defer v.p.mu.Unlock()
	v.set(v.p, t, deleted)
}

// decode converts a stored object into T. Stored objects passed the
// registry's validation, so a failure means a damaged row, which is left
// out (it grants nothing).
func decode[T any](obj map[string]any) (*T, bool) {
	t := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, t); err != nil {
		return nil, false
	}
	return t, true
}

// putNamespaced sets or deletes m[ns][name].
func putNamespaced[V any](m map[string]map[string]V, ns, name string, v V, deleted bool) {
	if deleted {
		delete(m[ns], name)
		if len(m[ns]) == 0 {
			delete(m, ns)
		}
		return
	}
	if m[ns] == nil {
		m[ns] = map[string]V{}
	}
	m[ns][name] = v
}

// put sets or deletes m[name].
func put[V any](m map[string]V, name string, v V, deleted bool) {
	if deleted {
		delete(m, name)
		return
	}
	m[name] = v
}

// views returns the registry views of p's four resources, by resource
// name.
func (p *policy) views() map[string]registry.View {
	return map[string]registry.View{
		"roles": &view[rbacv1.Role]{p: p,
			clear: func(p *policy) { clear(p.roles) },
			set: func(p *policy, r *rbacv1.Role, deleted bool) {
				putNamespaced(p.roles, r.Namespace, r.Name, r.Rules, deleted)
			}},
		"clusterroles": &view[rbacv1.ClusterRole]{p: p,
			clear: func(p *policy) { clear(p.clusterRoles) },
			set: func(p *policy, r *rbacv1.ClusterRole, deleted bool) {
				put(p.clusterRoles, r.Name, r.Rules, deleted)
			}},
		"rolebindings": &view[rbacv1.RoleBinding]{p: p,
			clear: func(p *policy) { clear(p.roleBindings) },
			set: func(p *policy, b *rbacv1.RoleBinding, deleted bool) {
				putNamespaced(p.roleBindings, b.Namespace, b.Name, &binding{name: b.Name, ref: b.RoleRef, subjects: b.Subjects}, deleted)
			}},
		"clusterrolebindings": &view[rbacv1.ClusterRoleBinding]{p: p,
			clear: func(p *policy) { clear(p.clusterRoleBindings) },
			set: func(p *policy, b *rbacv1.ClusterRoleBinding, deleted bool) {
				put(p.clusterRoleBindings, b.Name, &binding{name: b.Name, ref: b.RoleRef, subjects: b.Subjects}, deleted)
			}},
	}
}
