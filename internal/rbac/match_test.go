package rbac

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// res is a resource request for the rule tests.
func res(verb, group, resource, sub, name string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{ResourceRequest: true, Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Name: name, Namespace: "a"}
}

// nonRes is a non-resource request for the rule tests.
func nonRes(verb, path string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{Verb: verb, Path: path}
}

func TestRuleAllows(t *testing.T) {
	cm := rbacv1.PolicyRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}
	for _, tc := range []struct {
		name string
		rule rbacv1.PolicyRule
		req  authorizer.AttributesRecord
		want bool
	}{
		{"verb-listed", cm, res("get", "", "configmaps", "", "x"), true},
		{"verb-not-listed", cm, res("delete", "", "configmaps", "", "x"), false},
		{"verb-star", rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}, res("deletecollection", "", "configmaps", "", ""), true},
		{"group-differs", cm, res("get", "apps", "configmaps", "", "x"), false},
		{"group-star", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"*"}, Resources: []string{"widgets"}}, res("get", "example.com", "widgets", "", ""), true},
		{"resource-differs", cm, res("get", "", "secrets", "", "x"), false},
		{"resource-star", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"*"}}, res("get", "", "secrets", "", "x"), true},
		{"resource-star-covers-subresources", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"*"}}, res("get", "", "namespaces", "status", "a"), true},
		{"resource-does-not-cover-subresource", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"example.com"}, Resources: []string{"widgets"}}, res("update", "example.com", "widgets", "status", "w"), false},
		{"subresource-named", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"example.com"}, Resources: []string{"widgets/status"}}, res("update", "example.com", "widgets", "status", "w"), true},
		{"subresource-does-not-cover-resource", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"example.com"}, Resources: []string{"widgets/status"}}, res("update", "example.com", "widgets", "", "w"), false},
		{"subresource-of-another", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"example.com"}, Resources: []string{"widgets/scale"}}, res("get", "example.com", "widgets", "status", "w"), false},
		{"star-slash-subresource", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"*"}, Resources: []string{"*/scale"}}, res("get", "example.com", "widgets", "scale", "w"), true},
		{"star-slash-subresource-not-resource", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"*"}, Resources: []string{"*/scale"}}, res("get", "example.com", "widgets", "", "w"), false},
		{"star-slash-other-subresource", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"*"}, Resources: []string{"*/scale"}}, res("get", "example.com", "widgets", "status", "w"), false},
		{"resource-name-listed", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"x"}}, res("get", "", "configmaps", "", "x"), true},
		{"resource-name-not-listed", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"x"}}, res("get", "", "configmaps", "", "y"), false},
		{"resource-names-never-allow-list", rbacv1.PolicyRule{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"x"}}, res("list", "", "configmaps", "", ""), false},
		{"resource-names-never-allow-create", rbacv1.PolicyRule{Verbs: []string{"create"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"x"}}, res("create", "", "configmaps", "", ""), false},
		{"resource-rule-not-for-paths", rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}, nonRes("get", "/metrics"), false},
		{"url-exact", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/version"}}, nonRes("get", "/version"), true},
		{"url-exact-not-prefix", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/api"}}, nonRes("get", "/apis"), false},
		{"url-trailing-star", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/apis/*"}}, nonRes("get", "/apis/example.com/v1"), true},
		{"url-trailing-star-needs-prefix", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/apis/*"}}, nonRes("get", "/apis"), false},
		{"url-star", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"*"}}, nonRes("get", "/anything/at/all"), true},
		{"url-verb-differs", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/metrics"}}, nonRes("post", "/metrics"), false},
		{"url-rule-not-for-resources", rbacv1.PolicyRule{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}, res("get", "", "configmaps", "", "x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ruleAllows(tc.req, &tc.rule); got != tc.want {
				t.Errorf("ruleAllows(%+v, %+v) = %v, want %v", tc.req, tc.rule, got, tc.want)
			}
		})
	}
}

func TestAppliesTo(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"devs", user.AllAuthenticated}}
	robot := &user.DefaultInfo{Name: "system:serviceaccount:a:robot", Groups: []string{"system:serviceaccounts"}}
	for _, tc := range []struct {
		name    string
		subject rbacv1.Subject
		u       user.Info
		ns      string
		want    bool
	}{
		{"user", rbacv1.Subject{Kind: "User", Name: "alice"}, alice, "", true},
		{"other-user", rbacv1.Subject{Kind: "User", Name: "bob"}, alice, "", false},
		{"user-is-not-group", rbacv1.Subject{Kind: "Group", Name: "alice"}, alice, "", false},
		{"group", rbacv1.Subject{Kind: "Group", Name: "devs"}, alice, "a", true},
		{"other-group", rbacv1.Subject{Kind: "Group", Name: "ops"}, alice, "a", false},
		{"sa-with-namespace", rbacv1.Subject{Kind: "ServiceAccount", Name: "robot", Namespace: "a"}, robot, "", true},
		{"sa-other-namespace", rbacv1.Subject{Kind: "ServiceAccount", Name: "robot", Namespace: "b"}, robot, "a", false},
		{"sa-defaults-to-binding-namespace", rbacv1.Subject{Kind: "ServiceAccount", Name: "robot"}, robot, "a", true},
		{"sa-without-any-namespace", rbacv1.Subject{Kind: "ServiceAccount", Name: "robot"}, robot, "", false},
		{"sa-name-is-not-user", rbacv1.Subject{Kind: "User", Name: "robot"}, robot, "a", false},
		{"unknown-kind", rbacv1.Subject{Kind: "Robot", Name: "alice"}, alice, "a", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := appliesTo(&tc.subject, tc.u, tc.ns); got != tc.want {
				t.Errorf("appliesTo(%+v, %s, %q) = %v, want %v", tc.subject, tc.u.GetName(), tc.ns, got, tc.want)
			}
		})
	}
}
