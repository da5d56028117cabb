package rbac_test

import (
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/registry"
)

// writeAs creates, or with update replaces, an RBAC object as u and
// returns the registry's error.
func writeAs(t *testing.T, reg *registry.Registry, u user.Info, update bool, kind, ns, name string, fields map[string]any) error {
	t.Helper()
	res, _ := reg.Lookup("rbac.authorization.k8s.io", "v1", strings.ToLower(kind)+"s")
	m := map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": map[string]any{"name": name, "namespace": ns}}
	for k, v := range fields {
		m[k] = v
	}
	ctx := t.Context()
	if u != nil {
		ctx = request.WithUser(ctx, u)
	}
	obj := &unstructured.Unstructured{Object: m}
	var err error
	if update {
		_, err = reg.Update(ctx, res, ns, name, obj, registry.WriteOptions{})
	} else {
		_, err = reg.Create(ctx, res, ns, obj, registry.WriteOptions{})
	}
	return err
}

// TestEscalation checks the escalation rules on the registry's write
// path: alice, admin of namespace a, may grant in a what she holds there
// and no more, unless allowed bind or escalate.
func TestEscalation(t *testing.T) {
	e := start(t)
	namespace(t, e.Registry, "a")
	write(t, e.Registry, "RoleBinding", "a", "alice-admin", grant("ClusterRole", "admin", "alice"))
	reg := e.Registry
	forbidden := func(what string, err error, wantMsg string) {
		t.Helper()
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("%s: %v, want 403 with %q", what, err, wantMsg)
		}
	}
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}

	ok("bind edit in a", writeAs(t, reg, alice, false, "RoleBinding", "a", "b-edit", grant("ClusterRole", "edit", "bob")))
	forbidden("bind cluster-admin in a", writeAs(t, reg, alice, false, "RoleBinding", "a", "b-root", grant("ClusterRole", "cluster-admin", "bob")),
		`rolebindings.rbac.authorization.k8s.io "b-root" is forbidden: user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:`+
			"\n"+`{APIGroups:["*"], Resources:["*"], Verbs:["*"]}`+"\n"+`{NonResourceURLs:["*"], Verbs:["*"]}`)
	forbidden("bind edit cluster-wide", writeAs(t, reg, alice, false, "ClusterRoleBinding", "", "b-edit", grant("ClusterRole", "edit", "bob")), "not currently held")
	ok("role with get on secrets in a", writeAs(t, reg, alice, false, "Role", "a", "secrets", rules([]any{"get"}, "", "secrets")))
	forbidden("role with * on secrets in a", writeAs(t, reg, alice, false, "Role", "a", "secrets-all", rules([]any{"*"}, "", "secrets")),
		`{APIGroups:[""], Resources:["secrets"], Verbs:["*"]}`)
	forbidden("no user", writeAs(t, reg, nil, false, "Role", "a", "anon", rules([]any{"get"}, "", "secrets")), "no user")
	if err := writeAs(t, reg, alice, false, "RoleBinding", "a", "ghost", grant("ClusterRole", "ghost", "bob")); !apierrors.IsNotFound(err) {
		t.Errorf("bind a missing role: %v, want 404", err)
	}

	// Updates are checked when they change what is granted.
	write(t, reg, "Role", "a", "wide", rules([]any{"*"}, "", "secrets"))
	ok("relabel a role granting more", writeAs(t, reg, alice, true, "Role", "a", "wide", map[string]any{"metadata": map[string]any{"name": "wide", "namespace": "a", "labels": map[string]any{"x": "y"}}, "rules": rules([]any{"*"}, "", "secrets")["rules"]}))
	forbidden("widen a role", writeAs(t, reg, alice, true, "Role", "a", "secrets", rules([]any{"get", "escalate"}, "", "secrets")), `Verbs:["escalate"]`)

	// A long refusal is bounded.
	var many []any
	for i := range 50 {
		many = append(many, map[string]any{"verbs": []any{"*"}, "apiGroups": []any{fmt.Sprintf("g%d.example.com", i)}, "resources": []any{"r"}})
	}
	err := writeAs(t, reg, alice, false, "Role", "a", "many", map[string]any{"rules": many})
	forbidden("many rules", err, "... and 30 more")
	if n := strings.Count(fmt.Sprint(err), "\n"); n != 21 {
		t.Errorf("the refusal has %d lines, want 22", n+1)
	}

	// bind on clusterroles/cluster-admin in a, and escalate on roles in
	// a, lift the checks there.
	write(t, reg, "Role", "a", "delegate", map[string]any{"rules": []any{
		map[string]any{"verbs": []any{"bind"}, "apiGroups": []any{"rbac.authorization.k8s.io"}, "resources": []any{"clusterroles"}, "resourceNames": []any{"cluster-admin"}},
		map[string]any{"verbs": []any{"escalate"}, "apiGroups": []any{"rbac.authorization.k8s.io"}, "resources": []any{"roles"}},
	}})
	write(t, reg, "RoleBinding", "a", "alice-delegate", grant("Role", "delegate", "alice"))
	ok("bind cluster-admin in a with bind", writeAs(t, reg, alice, false, "RoleBinding", "a", "b-root", grant("ClusterRole", "cluster-admin", "bob")))
	ok("role with * on secrets with escalate", writeAs(t, reg, alice, false, "Role", "a", "secrets-all", rules([]any{"*"}, "", "secrets")))
	forbidden("bind cluster-admin cluster-wide", writeAs(t, reg, alice, false, "ClusterRoleBinding", "", "b-root", grant("ClusterRole", "cluster-admin", "bob")), "not currently held")
	forbidden("clusterrole with * on secrets", writeAs(t, reg, alice, false, "ClusterRole", "", "secrets-all", rules([]any{"*"}, "", "secrets")), "not currently held")
	ok("members of system:masters", writeAs(t, reg, &user.DefaultInfo{Name: "x", Groups: []string{user.SystemPrivilegedGroup}}, false, "ClusterRole", "", "secrets-all", rules([]any{"*"}, "", "secrets")))
}
