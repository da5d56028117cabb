package rbac

import (
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// rr is a resource rule for the coverage tests: comma-separated verbs,
// groups, resources and names ("" for none).
func rr(verbs, groups, resources, names string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: list(verbs), APIGroups: strings.Split(groups, ","), Resources: list(resources), ResourceNames: list(names)}
}

// ur is a non-resource rule for the coverage tests.
func ur(verbs, urls string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: list(verbs), NonResourceURLs: list(urls)}
}

// list splits a comma-separated list; "" is no list.
func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func TestUncovered(t *testing.T) {
	clusterAdmin := []rbacv1.PolicyRule{rr("*", "*", "*", ""), ur("*", "*")}
	for _, tc := range []struct {
		name      string
		held      []rbacv1.PolicyRule
		requested []rbacv1.PolicyRule
		// missing are the compact strings of what is not covered.
		missing []string
	}{
		{"nothing-requested", nil, nil, nil},
		{"nothing-held", nil, []rbacv1.PolicyRule{rr("get", "", "pods", "")}, []string{`{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`}},
		{"cluster-admin-covers-all", clusterAdmin, []rbacv1.PolicyRule{rr("*", "*", "*", ""), ur("get", "/metrics"), rr("escalate", "rbac.authorization.k8s.io", "clusterroles", "x")}, nil},
		{"same-rule", []rbacv1.PolicyRule{rr("get,list", "", "pods", "")}, []rbacv1.PolicyRule{rr("list,get", "", "pods", "")}, nil},
		{"verb-subset", []rbacv1.PolicyRule{rr("get,list,watch", "", "pods", "")}, []rbacv1.PolicyRule{rr("get", "", "pods", "")}, nil},
		{"verb-missing", []rbacv1.PolicyRule{rr("get", "", "pods", "")}, []rbacv1.PolicyRule{rr("get,delete", "", "pods", "")}, []string{`{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}`}},
		{"star-verb-needs-star", []rbacv1.PolicyRule{rr("create,delete,get,list,patch,update,watch", "*", "*", "")}, []rbacv1.PolicyRule{rr("*", "", "secrets", "")}, []string{`{APIGroups:[""], Resources:["secrets"], Verbs:["*"]}`}},
		{"star-group", []rbacv1.PolicyRule{rr("get", "*", "widgets", "")}, []rbacv1.PolicyRule{rr("get", "a.example.com,b.example.com", "widgets", "")}, nil},
		{"group-differs", []rbacv1.PolicyRule{rr("get", "apps", "deployments", "")}, []rbacv1.PolicyRule{rr("get", "extensions", "deployments", "")}, []string{`{APIGroups:["extensions"], Resources:["deployments"], Verbs:["get"]}`}},
		{"star-resource-covers-subresource", []rbacv1.PolicyRule{rr("get", "", "*", "")}, []rbacv1.PolicyRule{rr("get", "", "pods/log,namespaces/status", "")}, nil},
		{"resource-does-not-cover-subresource", []rbacv1.PolicyRule{rr("get", "", "pods", "")}, []rbacv1.PolicyRule{rr("get", "", "pods/log", "")}, []string{`{APIGroups:[""], Resources:["pods/log"], Verbs:["get"]}`}},
		{"star-subresource", []rbacv1.PolicyRule{rr("update", "", "*/status", "")}, []rbacv1.PolicyRule{rr("update", "", "pods/status,*/status", "")}, nil},
		{"star-subresource-not-resource", []rbacv1.PolicyRule{rr("update", "", "*/status", "")}, []rbacv1.PolicyRule{rr("update", "", "pods", "")}, []string{`{APIGroups:[""], Resources:["pods"], Verbs:["update"]}`}},
		{"star-subresource-not-star", []rbacv1.PolicyRule{rr("update", "", "*/status", "")}, []rbacv1.PolicyRule{rr("update", "", "*", "")}, []string{`{APIGroups:[""], Resources:["*"], Verbs:["update"]}`}},
		{"unnamed-covers-named", []rbacv1.PolicyRule{rr("get", "", "secrets", "")}, []rbacv1.PolicyRule{rr("get", "", "secrets", "s1,s2")}, nil},
		{"named-covers-subset", []rbacv1.PolicyRule{rr("get", "", "secrets", "s1,s2")}, []rbacv1.PolicyRule{rr("get", "", "secrets", "s2")}, nil},
		{"named-does-not-cover-other", []rbacv1.PolicyRule{rr("get", "", "secrets", "s1")}, []rbacv1.PolicyRule{rr("get", "", "secrets", "s1,s2")}, []string{`{APIGroups:[""], Resources:["secrets"], ResourceNames:["s2"], Verbs:["get"]}`}},
		{"named-does-not-cover-unnamed", []rbacv1.PolicyRule{rr("get", "", "secrets", "s1")}, []rbacv1.PolicyRule{rr("get", "", "secrets", "")}, []string{`{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`}},
		{"split-over-held-rules", []rbacv1.PolicyRule{rr("get", "", "pods", ""), rr("list", "", "pods,secrets", "")}, []rbacv1.PolicyRule{rr("get,list", "", "pods", "")}, nil},
		{"missing-merged-by-verb", []rbacv1.PolicyRule{rr("get", "", "pods", "")}, []rbacv1.PolicyRule{rr("get,list,watch", "", "pods,secrets", "")},
			[]string{`{APIGroups:[""], Resources:["pods"], Verbs:["list" "watch"]}`, `{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "watch"]}`}},
		{"url-exact", []rbacv1.PolicyRule{ur("get", "/healthz")}, []rbacv1.PolicyRule{ur("get", "/healthz")}, nil},
		{"url-prefix", []rbacv1.PolicyRule{ur("get", "/apis/*")}, []rbacv1.PolicyRule{ur("get", "/apis/apps,/apis/*")}, nil},
		{"url-prefix-not-parent", []rbacv1.PolicyRule{ur("get", "/apis/*")}, []rbacv1.PolicyRule{ur("get", "/apis,/api")}, []string{`{NonResourceURLs:["/api"], Verbs:["get"]}`, `{NonResourceURLs:["/apis"], Verbs:["get"]}`}},
		{"url-star", []rbacv1.PolicyRule{ur("get", "*")}, []rbacv1.PolicyRule{ur("get", "/metrics,*")}, nil},
		{"url-verb-missing", []rbacv1.PolicyRule{ur("get", "*")}, []rbacv1.PolicyRule{ur("post", "/metrics")}, []string{`{NonResourceURLs:["/metrics"], Verbs:["post"]}`}},
		{"resource-rule-does-not-cover-url", []rbacv1.PolicyRule{rr("*", "*", "*", "")}, []rbacv1.PolicyRule{ur("get", "/metrics")}, []string{`{NonResourceURLs:["/metrics"], Verbs:["get"]}`}},
		{"url-rule-does-not-cover-resource", []rbacv1.PolicyRule{ur("*", "*")}, []rbacv1.PolicyRule{rr("get", "", "pods", "")}, []string{`{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			missing, err := uncovered(tc.held, tc.requested)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i := range missing {
				got = append(got, compactString(&missing[i]))
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.missing) {
				t.Errorf("missing %q, want %q", got, tc.missing)
			}
		})
	}
}

// TestUncoveredBounded checks that a rule whose lists multiply into more
// permissions than can be compared is refused, quickly and without
// building them, unless one held rule covers it whole.
func TestUncoveredBounded(t *testing.T) {
	many := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = prefix + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
		}
		return out
	}
	huge := rbacv1.PolicyRule{Verbs: many("v", 1000), APIGroups: many("g", 1000), Resources: many("r", 1000), ResourceNames: many("n", 1000)}
	if _, err := uncovered([]rbacv1.PolicyRule{rr("get", "", "pods", "")}, []rbacv1.PolicyRule{huge}); err == nil {
		t.Error("a rule of 10^12 permissions was checked one by one")
	}
	if missing, err := uncovered([]rbacv1.PolicyRule{rr("*", "*", "*", "")}, []rbacv1.PolicyRule{huge}); err != nil || len(missing) > 0 {
		t.Errorf("held */*/* against the huge rule: missing %d, %v", len(missing), err)
	}
}
