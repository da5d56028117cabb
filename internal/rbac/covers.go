package rbac

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Rule coverage, for escalation prevention: whether the rules a user holds
// grant everything some requested rules grant, with Kubernetes' semantics.

// maxBreakdown bounds how many single permissions (one verb on one
// resource of one group, of one name; or one verb on one URL) the rules a
// write requests may split into when no held rule covers a requested one
// whole. Past it the write is refused rather than checked: the product of
// a rule's lists grows much faster than its size.
const maxBreakdown = 10000

// uncovered returns the single permissions of requested that no rule of
// held covers, merged back by verb for the message, or, when they are too
// many to check, an error.
func uncovered(held, requested []rbacv1.PolicyRule) ([]rbacv1.PolicyRule, error) {
	var missing []rbacv1.PolicyRule
	budget := maxBreakdown
	for _, r := range requested {
		if slices.ContainsFunc(held, func(h rbacv1.PolicyRule) bool { return covers(&h, &r) }) {
			continue
		}
		if budget -= breakdownSize(&r); budget < 0 {
			return nil, fmt.Errorf("the rules grant more than %d single permissions to compare with those held", maxBreakdown)
		}
		parts := breakdown(&r)
		for i := range parts {
			if !slices.ContainsFunc(held, func(h rbacv1.PolicyRule) bool { return covers(&h, &parts[i]) }) {
				missing = append(missing, parts[i])
			}
		}
	}
	return mergeVerbs(missing), nil
}

// breakdown splits r into rules of one verb, and one API group, resource
// and resource name (when r lists names), or one non-resource URL.
func breakdown(r *rbacv1.PolicyRule) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, 0, breakdownSize(r))
	one := func(s string) []string { return []string{s} }
	for _, v := range r.Verbs {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				if len(r.ResourceNames) == 0 {
					out = append(out, rbacv1.PolicyRule{Verbs: one(v), APIGroups: one(g), Resources: one(res)})
				}
				for _, n := range r.ResourceNames {
					out = append(out, rbacv1.PolicyRule{Verbs: one(v), APIGroups: one(g), Resources: one(res), ResourceNames: one(n)})
				}
			}
		}
		for _, u := range r.NonResourceURLs {
			out = append(out, rbacv1.PolicyRule{Verbs: one(v), NonResourceURLs: one(u)})
		}
	}
	return out
}

// breakdownSize is the number of rules breakdown(r) returns, or
// maxBreakdown+1 if that is more.
func breakdownSize(r *rbacv1.PolicyRule) int {
	// mul multiplies, saturating at maxBreakdown+1 (the lists are long
	// enough to overflow an int otherwise).
	mul := func(a, b int) int {
		if a != 0 && b > maxBreakdown/a {
			return maxBreakdown + 1
		}
		return a * b
	}
	resources := mul(mul(len(r.APIGroups), len(r.Resources)), max(1, len(r.ResourceNames)))
	return mul(len(r.Verbs), min(resources+len(r.NonResourceURLs), maxBreakdown+1))
}

// covers reports whether held grants everything r grants: each of r's
// verbs and API groups is one of held's or held has "*"; each of r's
// resources is one of held's, or held has "*", or "*/<sub>" for a
// subresource; held lists no resource names, or all of r's (r must list
// some); and each of r's non-resource URLs is matched by one of held's
// (exactly, by a prefix ending in "*", or by "*").
func covers(held, r *rbacv1.PolicyRule) bool {
	return allIn(held.Verbs, r.Verbs, rbacv1.VerbAll) &&
		allIn(held.APIGroups, r.APIGroups, rbacv1.APIGroupAll) &&
		resourcesCover(held.Resources, r.Resources) &&
		(len(held.ResourceNames) == 0 || len(r.ResourceNames) > 0 && allIn(held.ResourceNames, r.ResourceNames, "")) &&
		!slices.ContainsFunc(r.NonResourceURLs, func(u string) bool { return !urlMatches(held.NonResourceURLs, u) })
}

// allIn reports whether every element of want is in have, or have holds
// the wildcard (when it is not "").
func allIn(have, want []string, wildcard string) bool {
	if wildcard != "" && slices.Contains(have, wildcard) {
		return true
	}
	return !slices.ContainsFunc(want, func(s string) bool { return !slices.Contains(have, s) })
}

// resourcesCover reports whether the resources held covers every one of
// want.
func resourcesCover(held, want []string) bool {
	if slices.Contains(held, rbacv1.ResourceAll) {
		return true
	}
	return !slices.ContainsFunc(want, func(w string) bool {
		if slices.Contains(held, w) {
			return false
		}
		_, sub, ok := strings.Cut(w, "/")
		return !ok || !slices.Contains(held, "*/"+sub)
	})
}

// mergeVerbs merges single permissions that differ only in their verb,
// keeping the order in which each first appears.
func mergeVerbs(single []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	index := map[string]int{}
	for _, r := range single {
		key := fmt.Sprintf("%q", [][]string{r.APIGroups, r.Resources, r.ResourceNames, r.NonResourceURLs})
		if i, ok := index[key]; ok {
			out[i].Verbs = append(out[i].Verbs, r.Verbs...)
			continue
		}
		index[key] = len(out)
		r.Verbs = slices.Clone(r.Verbs)
		out = append(out, r)
	}
	return out
}

// compactString describes r as Kubernetes does in its escalation message:
// {APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}, with
// only the lists r has.
func compactString(r *rbacv1.PolicyRule) string {
	var parts []string
	for _, f := range []struct {
		name string
		list []string
	}{{"APIGroups", r.APIGroups}, {"Resources", r.Resources}, {"NonResourceURLs", r.NonResourceURLs}, {"ResourceNames", r.ResourceNames}, {"Verbs", r.Verbs}} {
		if len(f.list) > 0 {
			parts = append(parts, fmt.Sprintf("%s:%q", f.name, f.list))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
