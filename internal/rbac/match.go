package rbac

import (
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// Rule and subject matching, with Kubernetes' RBAC semantics.

// ruleAllows reports whether rule allows the request a.
//
// A resource request matches when the rule names its verb, API group,
// resource and (when the rule lists names) its name. "*" matches any verb,
// group or resource (subresources included); "pods/status" matches the
// status subresource of pods only, "*/status" that of every resource, and
// "pods" never a subresource of pods. A rule with resourceNames matches
// only requests that name one of them, so never a list or a create.
//
// A non-resource request (a path outside /api and /apis) matches when the
// rule names its verb (the lower-case method) and its path exactly, or
// with a trailing "*" a prefix of it; "*" matches every path.
func ruleAllows(a authorizer.Attributes, rule *rbacv1.PolicyRule) bool {
	if !matchesOrStar(rule.Verbs, a.GetVerb()) {
		return false
	}
	if !a.IsResourceRequest() {
		return urlMatches(rule.NonResourceURLs, a.GetPath())
	}
	return matchesOrStar(rule.APIGroups, a.GetAPIGroup()) &&
		resourceMatches(rule.Resources, a.GetResource(), a.GetSubresource()) &&
		(len(rule.ResourceNames) == 0 || slices.Contains(rule.ResourceNames, a.GetName()))
}

// matchesOrStar reports whether list holds want or "*".
func matchesOrStar(list []string, want string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return s == rbacv1.VerbAll || s == want })
}

// resourceMatches reports whether one of the rule's resources covers
// resource and subresource ("" when the request is on the resource).
func resourceMatches(ruleResources []string, resource, subresource string) bool {
	want := resource
	if subresource != "" {
		want = resource + "/" + subresource
	}
	for _, r := range ruleResources {
		if r == rbacv1.ResourceAll || r == want || subresource != "" && r == "*/"+subresource {
			return true
		}
	}
	return false
}

// urlMatches reports whether one of the rule's non-resource URLs covers
// path.
func urlMatches(urls []string, path string) bool {
	for _, u := range urls {
		if u == rbacv1.NonResourceAll || u == path {
			return true
		}
		if prefix, ok := strings.CutSuffix(u, "*"); ok && strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

// appliesTo reports whether subject s of a binding in namespace ns ("" for
// a ClusterRoleBinding) names u. A ServiceAccount subject without a
// namespace is one of the binding's namespace; it names the user
// system:serviceaccount:<namespace>:<name>.
func appliesTo(s *rbacv1.Subject, u user.Info, ns string) bool {
	switch s.Kind {
	case rbacv1.UserKind:
		return u.GetName() == s.Name
	case rbacv1.GroupKind:
		return slices.Contains(u.GetGroups(), s.Name)
	case rbacv1.ServiceAccountKind:
		saNamespace := s.Namespace
		if saNamespace == "" {
			saNamespace = ns
		}
		return saNamespace != "" && u.GetName() == serviceaccount.MakeUsername(saNamespace, s.Name)
	}
	return false
}
