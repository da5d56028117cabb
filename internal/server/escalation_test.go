package server_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// TestEscalationPrevention checks over real HTTPS, with client
// certificates, that RBAC objects grant no more than their author holds:
// alice, admin of namespace a and allowed to write ClusterRoles, may bind
// edit in a but not cluster-admin, and may write no ClusterRole with
// rules she lacks cluster-wide, until allowed bind on cluster-admin in a
// and escalate on ClusterRoles.
func TestEscalationPrevention(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	admin := clientset(t, s.RESTConfig()).RbacV1()
	ctx := t.Context()
	if _, err := clientset(t, s.RESTConfig()).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rbacRule := func(verbs []string, resource string, names ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{rbacv1.GroupName}, Resources: []string{resource}, ResourceNames: names}
	}
	roleWriter := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "role-writer"},
		Rules: []rbacv1.PolicyRule{rbacRule([]string{"create", "update", "get"}, "clusterroles")}}
	mustDo(t, "create role-writer", func() error {
		_, err := admin.ClusterRoles().Create(ctx, roleWriter, metav1.CreateOptions{})
		return err
	})
	mustDo(t, "bind role-writer", func() error {
		_, err := admin.ClusterRoleBindings().Create(ctx, clusterRoleBinding("alice-role-writer", "role-writer", "alice"), metav1.CreateOptions{})
		return err
	})
	mustDo(t, "bind admin in a", func() error {
		_, err := admin.RoleBindings("a").Create(ctx, roleBinding("alice-admin", "admin", "alice"), metav1.CreateOptions{})
		return err
	})
	alice := clientset(t, userConfig(t, s, "alice", "devs")).RbacV1()
	refused := func(what string, err error, want string) {
		t.Helper()
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want 403 with %q", what, err, want)
		}
	}
	const notHeld = `user "alice" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:`

	mustDo(t, "alice binds edit in a", func() error {
		_, err := alice.RoleBindings("a").Create(ctx, roleBinding("bob-edit", "edit", "bob"), metav1.CreateOptions{})
		return err
	})
	_, err := alice.RoleBindings("a").Create(ctx, roleBinding("bob-root", "cluster-admin", "bob"), metav1.CreateOptions{})
	refused("alice binds cluster-admin in a", err, notHeld+"\n"+`{APIGroups:["*"], Resources:["*"], Verbs:["*"]}`+"\n"+`{NonResourceURLs:["*"], Verbs:["*"]}`)
	secretsAll := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "secrets-all"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"*"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}}
	_, err = alice.ClusterRoles().Create(ctx, secretsAll, metav1.CreateOptions{})
	refused("alice creates a ClusterRole with * on secrets", err, `clusterroles.rbac.authorization.k8s.io "secrets-all" is forbidden: `+notHeld+"\n"+`{APIGroups:[""], Resources:["secrets"], Verbs:["*"]}`)
	// A ClusterRole with rules she holds cluster-wide may be written, but
	// not widened.
	mine := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Rules: []rbacv1.PolicyRule{rbacRule([]string{"get"}, "clusterroles")}}
	mustDo(t, "alice creates a ClusterRole she holds", func() error { _, err := alice.ClusterRoles().Create(ctx, mine, metav1.CreateOptions{}); return err })
	mine.Rules = append(mine.Rules, rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}})
	_, err = alice.ClusterRoles().Update(ctx, mine, metav1.UpdateOptions{})
	refused("alice widens her ClusterRole", err, `{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`)
	if _, err := admin.RoleBindings("a").Get(ctx, "bob-root", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused binding: %v, want not found", err)
	}

	// bind on clusterroles/cluster-admin in a, and escalate on
	// clusterroles, lift the checks.
	mustDo(t, "grant bind", func() error {
		_, err := admin.Roles("a").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "bind-root"},
			Rules: []rbacv1.PolicyRule{rbacRule([]string{"bind"}, "clusterroles", "cluster-admin")}}, metav1.CreateOptions{})
		if err == nil {
			b := roleBinding("alice-bind-root", "bind-root", "alice")
			b.RoleRef.Kind = "Role"
			_, err = admin.RoleBindings("a").Create(ctx, b, metav1.CreateOptions{})
		}
		return err
	})
	mustDo(t, "alice binds cluster-admin in a with bind", func() error {
		_, err := alice.RoleBindings("a").Create(ctx, roleBinding("bob-root", "cluster-admin", "bob"), metav1.CreateOptions{})
		return err
	})
	roleWriter.Rules = append(roleWriter.Rules, rbacRule([]string{"escalate"}, "clusterroles"))
	mustDo(t, "grant escalate", func() error {
		_, err := admin.ClusterRoles().Update(ctx, roleWriter, metav1.UpdateOptions{})
		return err
	})
	mustDo(t, "alice creates a ClusterRole with * on secrets with escalate", func() error {
		_, err := alice.ClusterRoles().Create(ctx, secretsAll, metav1.CreateOptions{})
		return err
	})
}

// mustDo fails the test if do fails.
func mustDo(t *testing.T, what string, do func() error) {
	t.Helper()
	if err := do(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// roleBinding binds ClusterRole role to user.
func roleBinding(name, role, userName string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: userName}}}
}

// clusterRoleBinding binds ClusterRole role to user cluster-wide.
func clusterRoleBinding(name, role, userName string) *rbacv1.ClusterRoleBinding {
	b := roleBinding(name, role, userName)
	return &rbacv1.ClusterRoleBinding{ObjectMeta: b.ObjectMeta, RoleRef: b.RoleRef, Subjects: b.Subjects}
}
