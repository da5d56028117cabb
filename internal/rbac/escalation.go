package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/registry"
)

// Escalation prevention, as in Kubernetes: a user may write a role only
// with rules they hold themselves (in the role's namespace, or cluster-wide
// for a ClusterRole) unless allowed the verb escalate on it, and may bind
// a role only if they hold its rules in the binding's scope unless allowed
// the verb bind on it. Members of system:masters (the server's own
// bootstrap and controllers among them) may do both.

var _ registry.EscalationGuard = (*Authorizer)(nil)

// maxMissingListed bounds the missing permissions a refusal lists.
const maxMissingListed = 20

// CheckRole implements registry.EscalationGuard.
func (a *Authorizer) CheckRole(ctx context.Context, namespace, name string, rules []rbacv1.PolicyRule) error {
	resource := "clusterroles"
	if namespace != "" {
		resource = "roles"
	}
	gr := schema.GroupResource{Group: rbacv1.GroupName, Resource: resource}
	u, ok := request.UserFrom(ctx)
	if !ok {
		return apierrors.NewForbidden(gr, name, errors.New("no user on the request"))
	}
	if slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup) {
		return nil
	}
	if ok, err := a.allowedOn(ctx, u, "escalate", namespace, resource, name); ok || err != nil {
		return err
	}
	return a.confirmHeld(ctx, u, gr, namespace, name, rules)
}

// CheckBinding implements registry.EscalationGuard.
func (a *Authorizer) CheckBinding(ctx context.Context, namespace, name string, ref rbacv1.RoleRef) error {
	gr := schema.GroupResource{Group: rbacv1.GroupName, Resource: "clusterrolebindings"}
	if namespace != "" {
		gr.Resource = "rolebindings"
	}
	u, ok := request.UserFrom(ctx)
	if !ok {
		return apierrors.NewForbidden(gr, name, errors.New("no user on the request"))
	}
	if slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup) {
		return nil
	}
	roleResource := map[string]string{"Role": "roles", "ClusterRole": "clusterroles"}[ref.Kind]
	if ref.APIGroup != rbacv1.GroupName || roleResource == "" {
		return apierrors.NewForbidden(gr, name, fmt.Errorf("roleRef %s %q of group %q is not an RBAC role", ref.Kind, ref.Name, ref.APIGroup))
	}
	if ok, err := a.allowedOn(ctx, u, "bind", namespace, roleResource, ref.Name); ok || err != nil {
		return err
	}
	rules, ok := a.policy.roleRules(namespace, ref)
	if !ok {
		if err := a.syncPolicy(ctx); err != nil {
			return err
		}
		if rules, ok = a.policy.roleRules(namespace, ref); !ok {
			return apierrors.NewNotFound(schema.GroupResource{Group: rbacv1.GroupName, Resource: roleResource}, ref.Name)
		}
	}
	return a.confirmHeld(ctx, u, gr, namespace, name, rules)
}

// allowedOn reports whether u may use verb on the RBAC resource named
// name in namespace ("" for cluster-wide).
func (a *Authorizer) allowedOn(ctx context.Context, u user.Info, verb, namespace, resource, name string) (bool, error) {
	decision, _, err := a.Authorize(ctx, authorizer.AttributesRecord{
		User: u, Verb: verb, Namespace: namespace, APIGroup: rbacv1.GroupName, APIVersion: "*",
		Resource: resource, Name: name, ResourceRequest: true,
	})
	return decision == authorizer.DecisionAllow, err
}

// confirmHeld answers nil when the rules bound to u in namespace (the
// cluster-wide ones when it is "") cover rules, and otherwise the 403
// Kubernetes answers on writing obj (name, of gr), which lists what is
// missing. A first refusal waits for the policy to be current and checks
// again, as Authorize does.
func (a *Authorizer) confirmHeld(ctx context.Context, u user.Info, gr schema.GroupResource, namespace, name string, rules []rbacv1.PolicyRule) error {
	missing, err := uncovered(a.policy.rulesHeld(u, namespace), rules)
	if err == nil && len(missing) > 0 {
		if err := a.syncPolicy(ctx); err != nil {
			return err
		}
		missing, err = uncovered(a.policy.rulesHeld(u, namespace), rules)
	}
	if err != nil {
		return apierrors.NewForbidden(gr, name, fmt.Errorf("user %q (groups=%q) is attempting to grant RBAC permissions: %w", u.GetName(), u.GetGroups(), err))
	}
	if len(missing) == 0 {
		return nil
	}
	lines := make([]string, len(missing))
	for i := range missing {
		lines[i] = compactString(&missing[i])
	}
	slices.Sort(lines)
	if len(lines) > maxMissingListed {
		lines = append(lines[:maxMissingListed], fmt.Sprintf("... and %d more", len(lines)-maxMissingListed))
	}
	return apierrors.NewForbidden(gr, name, fmt.Errorf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s",
		u.GetName(), u.GetGroups(), strings.Join(lines, "\n")))
}

// syncPolicy waits, bounded, for the policy to hold every write
// acknowledged before the call; nothing without a registry.
func (a *Authorizer) syncPolicy(ctx context.Context) error {
	if a.sync == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	return a.sync(ctx)
}

// rulesHeld returns the rules bound to u in namespace (the cluster-wide
// ones when it is "").
func (p *policy) rulesHeld(u user.Info, namespace string) []rbacv1.PolicyRule {
	var held []rbacv1.PolicyRule
	p.visit(u, namespace, func(_ string, _ *binding, _ *rbacv1.Subject, rules []rbacv1.PolicyRule) bool {
		held = append(held, rules...)
		return true
	})
	return held
}

// roleRules returns the rules of the role a binding in namespace ("" for
// a ClusterRoleBinding) refers to, and whether that role exists.
func (p *policy) roleRules(namespace string, ref rbacv1.RoleRef) ([]rbacv1.PolicyRule, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var rules []rbacv1.PolicyRule
	var ok bool
	switch ref.Kind {
	case "ClusterRole":
		rules, ok = p.clusterRoles[ref.Name]
	case "Role":
		rules, ok = p.roles[namespace][ref.Name]
	}
	return rules, ok
}
