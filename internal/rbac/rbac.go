// Package rbac authorizes requests with Kubernetes RBAC: Roles and
// ClusterRoles (rbac.authorization.k8s.io/v1, stored by the registry)
// grant rules; RoleBindings grant them in their namespace, and
// ClusterRoleBindings everywhere, to users, groups and service accounts.
// Anything not granted is denied; the group system:masters is allowed
// everything. It also answers the review resources (SelfSubjectAccessReview,
// SelfSubjectRulesReview, SelfSubjectReview), creates the bootstrap
// roles, and keeps writes of roles and bindings from granting more than
// their author holds (escalation.go).
//
// # Consistency
//
// The Authorizer decides from a copy of the four resources that the
// registry keeps current from this process's change feed (registry.Follow).
// A write through another replica reaches that copy once this replica's
// feed reads it, usually within milliseconds. So that a grant takes effect
// on the very next request wherever it lands, a request the copy would
// deny first waits for the registry to be current (registry.Sync: one read
// of the store's current revision, then the feed catching up to it) and is
// decided again. Denials thus cost one small database read; allowed
// requests cost none. A revocation is in effect on the replica that wrote
// it once the client has its answer (the registry applies writes of
// followed resources to the views before answering), and on the others
// once their feeds deliver it; requests already running, open watches
// included, are not ended (as in Kubernetes, authorization happens when a
// request starts).
package rbac

import (
	"context"
	"fmt"
	"slices"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/setpoint/setpoint/internal/registry"
)

// syncTimeout bounds the wait for the policy to be current before a
// denial; requests that are not otherwise bounded (watches) rely on it.
const syncTimeout = 10 * time.Second

// Authorizer is the RBAC authorizer. It implements authorizer.Authorizer
// and authorizer.RuleResolver.
type Authorizer struct {
	policy *policy
	// sync makes the policy current with every acknowledged write
	// (Registry.Sync); nil in tests of a bare policy.
	sync func(context.Context) error
}

var (
	_ authorizer.Authorizer   = (*Authorizer)(nil)
	_ authorizer.RuleResolver = (*Authorizer)(nil)
	_ registry.Reviewer       = (*Authorizer)(nil)
)

// New returns an Authorizer that reg keeps current, and makes reg serve
// the review resources with it and check writes of RBAC objects with it
// for privilege escalation. It must be called before reg.Start; the
// Authorizer decides once reg has started.
func New(reg *registry.Registry) (*Authorizer, error) {
	a := &Authorizer{policy: newPolicy(), sync: reg.Sync}
	for resource, v := range a.policy.views() {
		res, ok := reg.Lookup(registry.RBACGroup, "v1", resource)
		if !ok {
			return nil, fmt.Errorf("rbac: the registry does not serve %s", resource)
		}
		if err := reg.Follow(res, v); err != nil {
			return nil, fmt.Errorf("rbac: follow %s: %w", resource, err)
		}
	}
	reg.ServeReviews(a)
	reg.GuardEscalation(a)
	return a, nil
}

// Authorize allows a request that a rule bound to its user allows, and
// every request of a member of system:masters. Otherwise it answers
// DecisionNoOpinion (which every caller treats as a denial, as
// Kubernetes' RBAC does), after checking that no grant acknowledged
// before the call is missing from this replica's copy; the error is then
// set if that check failed (a StatusError: 503 or 504).
func (a *Authorizer) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	u := attrs.GetUser()
	if u == nil {
		return authorizer.DecisionNoOpinion, "", nil
	}
	if slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup) {
		return authorizer.DecisionAllow, "member of " + user.SystemPrivilegedGroup, nil
	}
	if reason, ok := a.policy.allows(attrs); ok {
		return authorizer.DecisionAllow, reason, nil
	}
	if a.sync == nil {
		return authorizer.DecisionNoOpinion, "", nil
	}
	if err := a.syncPolicy(ctx); err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	if reason, ok := a.policy.allows(attrs); ok {
		return authorizer.DecisionAllow, reason, nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// ConditionsAwareAuthorize implements authorizer.Authorizer: RBAC
// decisions have no conditions.
func (a *Authorizer) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(a.Authorize(ctx, attrs))
}

// EvaluateConditions implements authorizer.Authorizer: there are no
// conditions to evaluate, so it fails closed.
func (a *Authorizer) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// allows reports whether a binding grants attrs, with the reason
// Kubernetes gives: which binding of which role to which subject.
func (p *policy) allows(attrs authorizer.Attributes) (string, bool) {
	var reason string
	p.visit(attrs.GetUser(), attrs.GetNamespace(), func(ns string, b *binding, s *rbacv1.Subject, rules []rbacv1.PolicyRule) bool {
		for i := range rules {
			if ruleAllows(attrs, &rules[i]) {
				where := fmt.Sprintf("ClusterRoleBinding %q", b.name)
				if ns != "" {
					where = fmt.Sprintf("RoleBinding %q", ns+"/"+b.name)
				}
				reason = fmt.Sprintf("RBAC: allowed by %s of %s %q to %s %q", where, b.ref.Kind, b.ref.Name, s.Kind, s.Name)
				return false
			}
		}
		return true
	})
	return reason, reason != ""
}

// visit calls f with the rules of every binding that applies to u: the
// ClusterRoleBindings, then the RoleBindings of namespace (none when it is
// ""), until f returns false. f runs under p's read lock.
func (p *policy) visit(u user.Info, namespace string, f func(ns string, b *binding, s *rbacv1.Subject, rules []rbacv1.PolicyRule) bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	each := func(ns string, bindings map[string]*binding) bool {
		for _, b := range bindings {
			for i := range b.subjects {
				if appliesTo(&b.subjects[i], u, ns) {
					if !f(ns, b, &b.subjects[i], p.rulesOf(ns, b.ref)) {
						return false
					}
					break
				}
			}
		}
		return true
	}
	if each("", p.clusterRoleBindings) && namespace != "" {
		each(namespace, p.roleBindings[namespace])
	}
}

// RulesFor implements authorizer.RuleResolver: the rules that apply to u
// in namespace (the cluster-wide ones when it is ""), for
// SelfSubjectRulesReview. Members of system:masters get rules that allow
// everything first. The list is always complete.
func (a *Authorizer) RulesFor(_ context.Context, u user.Info, namespace string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	var resourceRules []authorizer.ResourceRuleInfo
	var nonResourceRules []authorizer.NonResourceRuleInfo
	if slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup) {
		all := []string{"*"}
		resourceRules = append(resourceRules, &authorizer.DefaultResourceRuleInfo{Verbs: all, APIGroups: all, Resources: all})
		nonResourceRules = append(nonResourceRules, &authorizer.DefaultNonResourceRuleInfo{Verbs: all, NonResourceURLs: all})
	}
	a.policy.visit(u, namespace, func(_ string, _ *binding, _ *rbacv1.Subject, rules []rbacv1.PolicyRule) bool {
		for _, r := range rules {
			if len(r.NonResourceURLs) > 0 {
				nonResourceRules = append(nonResourceRules, &authorizer.DefaultNonResourceRuleInfo{Verbs: r.Verbs, NonResourceURLs: r.NonResourceURLs})
				continue
			}
			resourceRules = append(resourceRules, &authorizer.DefaultResourceRuleInfo{
				Verbs: r.Verbs, APIGroups: r.APIGroups, Resources: r.Resources, ResourceNames: r.ResourceNames,
			})
		}
		return true
	})
	return resourceRules, nonResourceRules, false, nil
}
