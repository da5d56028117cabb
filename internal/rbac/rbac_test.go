package rbac_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/rbac"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/registry/registrytest"
)

// env is a started registry with an Authorizer and the bootstrap policy.
type env struct {
	*registrytest.Env
	az *rbac.Authorizer
}

func start(t testing.TB) *env {
	t.Helper()
	e := &env{}
	e.Env = registrytest.StartWithSetup(t, feed.Options{}, func(r *registry.Registry) {
		var err error
		if e.az, err = rbac.New(r); err != nil {
			t.Fatal(err)
		}
	})
	if err := rbac.Bootstrap(t.Context(), e.Registry); err != nil {
		t.Fatal(err)
	}
	return e
}

// write creates an RBAC object (kind and fields) named name, in namespace
// ns for namespaced kinds, through reg.
func write(t *testing.T, reg *registry.Registry, kind, ns, name string, fields map[string]any) {
	t.Helper()
	resource := strings.ToLower(kind) + "s"
	res, ok := reg.Lookup("rbac.authorization.k8s.io", "v1", resource)
	if !ok {
		t.Fatalf("%s not served", resource)
	}
	m := map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": map[string]any{"name": name}}
	for k, v := range fields {
		m[k] = v
	}
	if _, err := reg.Create(asAdmin(t), res, ns, &unstructured.Unstructured{Object: m}, registry.WriteOptions{}); err != nil {
		t.Fatalf("create %s %s/%s: %v", kind, ns, name, err)
	}
}

// grant is the fields of a binding of role (kind Role or ClusterRole) to
// the user named user.
func grant(kind, role, userName string) map[string]any {
	return map[string]any{
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
		"subjects": []any{map[string]any{"kind": "User", "name": userName}},
	}
}

// rules is the fields of a role with one resource rule.
func rules(verbs []any, group, resource string) map[string]any {
	return map[string]any{"rules": []any{map[string]any{"verbs": verbs, "apiGroups": []any{group}, "resources": []any{resource}}}}
}

func namespace(t *testing.T, reg *registry.Registry, name string) {
	t.Helper()
	res, _ := reg.Lookup("", "v1", "namespaces")
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	if _, err := reg.Create(t.Context(), res, "", ns, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

var (
	alice = &user.DefaultInfo{Name: "alice", Groups: []string{user.AllAuthenticated}}
	bob   = &user.DefaultInfo{Name: "bob", Groups: []string{user.AllAuthenticated}}
	admin = &user.DefaultInfo{Name: "root", Groups: []string{user.SystemPrivilegedGroup, user.AllAuthenticated}}
)

// asAdmin is the test's context as admin, whom escalation prevention lets
// write any RBAC object.
func asAdmin(t *testing.T) context.Context {
	return request.WithUser(t.Context(), admin)
}

// resourceRequest is a resource request of u.
func resourceRequest(u user.Info, verb, group, resource, ns, name string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{User: u, ResourceRequest: true, Verb: verb, APIGroup: group, APIVersion: "v1", Resource: resource, Namespace: ns, Name: name}
}

// decide returns whether az allows attrs, failing on an error.
func decide(t *testing.T, az authorizer.Authorizer, attrs authorizer.Attributes) bool {
	t.Helper()
	d, _, err := az.Authorize(t.Context(), attrs)
	if err != nil {
		t.Fatalf("Authorize(%+v): %v", attrs, err)
	}
	return d == authorizer.DecisionAllow
}

func TestAuthorize(t *testing.T) {
	e := start(t)
	for _, ns := range []string{"a", "b"} {
		namespace(t, e.Registry, ns)
	}
	// alice may read ConfigMaps in a (ClusterRole view bound in a), and
	// update widgets in a through a Role of a; b has a Role of the same
	// name that grants more, which a's binding must not reach.
	write(t, e.Registry, "RoleBinding", "a", "alice-view", grant("ClusterRole", "view", "alice"))
	write(t, e.Registry, "Role", "a", "widgets", rules([]any{"update"}, "example.com", "widgets"))
	write(t, e.Registry, "Role", "b", "widgets", rules([]any{"*"}, "*", "*"))
	write(t, e.Registry, "RoleBinding", "a", "alice-widgets", grant("Role", "widgets", "alice"))
	// bob may list widgets everywhere.
	write(t, e.Registry, "ClusterRole", "", "widget-reader", rules([]any{"list"}, "example.com", "widgets"))
	write(t, e.Registry, "ClusterRoleBinding", "", "bob-widgets", grant("ClusterRole", "widget-reader", "bob"))
	// A binding to a role that does not exist grants nothing.
	write(t, e.Registry, "RoleBinding", "a", "dangling", grant("Role", "missing", "bob"))

	for _, tc := range []struct {
		name  string
		attrs authorizer.AttributesRecord
		want  bool
	}{
		{"rolebinding-to-clusterrole-in-its-namespace", resourceRequest(alice, "list", "", "configmaps", "a", ""), true},
		{"rolebinding-not-in-other-namespace", resourceRequest(alice, "list", "", "configmaps", "b", ""), false},
		{"rolebinding-not-cluster-wide", resourceRequest(alice, "list", "", "configmaps", "", ""), false},
		{"verb-not-granted", resourceRequest(alice, "create", "", "configmaps", "a", ""), false},
		{"view-excludes-secrets", resourceRequest(alice, "get", "", "secrets", "a", "s"), false},
		{"role-of-binding-namespace", resourceRequest(alice, "update", "example.com", "widgets", "a", "w"), true},
		{"same-named-role-elsewhere-not-used", resourceRequest(alice, "delete", "example.com", "widgets", "a", "w"), false},
		{"clusterrolebinding-everywhere", resourceRequest(bob, "list", "example.com", "widgets", "b", ""), true},
		{"clusterrolebinding-cluster-wide", resourceRequest(bob, "list", "example.com", "widgets", "", ""), true},
		{"clusterrolebinding-only-its-verbs", resourceRequest(bob, "watch", "example.com", "widgets", "b", ""), false},
		{"dangling-binding-grants-nothing", resourceRequest(bob, "get", "example.com", "widgets", "a", "w"), false},
		{"masters-allowed-everything", resourceRequest(admin, "delete", "", "secrets", "b", "s"), true},
		{"no-user-denied", authorizer.AttributesRecord{ResourceRequest: true, Verb: "get", Resource: "configmaps", Namespace: "a"}, false},
		{"authenticated-may-review", resourceRequest(alice, "create", "authorization.k8s.io", "selfsubjectaccessreviews", "", ""), true},
		{"authenticated-may-discover", authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/apis/example.com/v1"}, true},
		{"authenticated-may-read-version", authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/version"}, true},
		{"authenticated-may-not-read-metrics", authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/metrics"}, false},
		{"discovery-is-get-only", authorizer.AttributesRecord{User: alice, Verb: "post", Path: "/api"}, false},
		{"anonymous-may-probe-health", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}, Verb: "get", Path: "/readyz"}, true},
		{"anonymous-may-not-discover", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}, Verb: "get", Path: "/api"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(t, e.az, tc.attrs); got != tc.want {
				t.Errorf("allowed = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestGrantOnAnotherReplica checks that a RoleBinding written through
// another replica takes effect on the very next request, without waiting
// for this replica's feed, and that its removal takes effect once the
// feed delivered it.
func TestGrantOnAnotherReplica(t *testing.T) {
	e := start(t)
	namespace(t, e.Registry, "a")
	other, err := registry.New(registry.Options{Store: e.Store})
	if err != nil {
		t.Fatal(err)
	}
	list := resourceRequest(alice, "list", "", "configmaps", "a", "")
	if decide(t, e.az, list) {
		t.Fatal("allowed before any grant")
	}
	for i := range 5 {
		name := "grant-" + string(rune('a'+i))
		write(t, other, "RoleBinding", "a", name, grant("ClusterRole", "view", "alice"))
		if !decide(t, e.az, list) {
			t.Fatalf("grant %d written on another replica not in effect on the next request", i)
		}
		res, _ := other.Lookup("rbac.authorization.k8s.io", "v1", "rolebindings")
		if _, _, err := other.Delete(t.Context(), res, "a", name, nil); err != nil {
			t.Fatal(err)
		}
		if err := e.Registry.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		if decide(t, e.az, list) {
			t.Fatalf("grant %d still in effect once its deletion was read", i)
		}
	}
}

// TestBootstrapConcurrent runs the bootstrap of several replicas at once
// on one store: every one succeeds and each object exists once.
func TestBootstrapConcurrent(t *testing.T) {
	e := start(t)
	res, _ := e.Registry.Lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
	// An administrator's edit survives a restart's bootstrap.
	view, err := e.Registry.Get(t.Context(), res, "", "view")
	if err != nil {
		t.Fatal(err)
	}
	view.Object["rules"] = []any{}
	if _, err := e.Registry.Update(asAdmin(t), res, "", "view", view, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Registry.Delete(t.Context(), res, "", "edit", nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		reg, err := registry.New(registry.Options{Store: e.Store})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs <- rbac.Bootstrap(context.Background(), reg) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got, err := e.Registry.Get(t.Context(), res, "", "view")
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := got.Object["rules"].([]any); len(r) != 0 {
		t.Errorf("bootstrap overwrote an edited role: rules %v", r)
	}
	if _, err := e.Registry.Get(t.Context(), res, "", "edit"); err != nil {
		t.Errorf("a deleted bootstrap role did not come back: %v", err)
	}
}

// BenchmarkAuthorize measures an allowed decision among 1000
// RoleBindings in 100 namespaces and 100 ClusterRoleBindings (the
// bootstrap ones besides), the cost every request pays.
func BenchmarkAuthorize(b *testing.B) {
	e := &env{}
	e.Env = registrytest.StartWithSetup(b, feed.Options{}, func(r *registry.Registry) {
		var err error
		if e.az, err = rbac.New(r); err != nil {
			b.Fatal(err)
		}
	})
	ctx := context.Background()
	res := func(resource string) *registry.Resource {
		r, _ := e.Registry.Lookup("rbac.authorization.k8s.io", "v1", resource)
		return r
	}
	create := func(resource, ns string, m map[string]any) {
		if _, err := e.Registry.Create(ctx, res(resource), ns, &unstructured.Unstructured{Object: m}, registry.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	nsRes, _ := e.Registry.Lookup("", "v1", "namespaces")
	for i := range 100 {
		ns := fmt.Sprintf("ns-%d", i)
		if _, err := e.Registry.Create(ctx, nsRes, "", &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}, registry.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		for j := range 10 {
			m := grant("ClusterRole", "view", fmt.Sprintf("user-%d-%d", i, j))
			m["apiVersion"], m["kind"], m["metadata"] = "rbac.authorization.k8s.io/v1", "RoleBinding", map[string]any{"name": fmt.Sprintf("rb-%d", j)}
			create("rolebindings", ns, m)
		}
		m := grant("ClusterRole", "view", fmt.Sprintf("cluster-user-%d", i))
		m["apiVersion"], m["kind"], m["metadata"] = "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", map[string]any{"name": fmt.Sprintf("crb-%d", i)}
		create("clusterrolebindings", "", m)
	}
	if err := rbac.Bootstrap(ctx, e.Registry); err != nil {
		b.Fatal(err)
	}
	if err := e.Registry.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	u := &user.DefaultInfo{Name: "user-50-9", Groups: []string{user.AllAuthenticated}}
	attrs := resourceRequest(u, "list", "", "configmaps", "ns-50", "")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if d, _, _ := e.az.Authorize(ctx, attrs); d != authorizer.DecisionAllow {
			b.Fatal("denied")
		}
	}
}

// TestRevocationOnSameReplica checks that once the deletion of a binding
// is acknowledged, the replica that wrote it denies at once.
func TestRevocationOnSameReplica(t *testing.T) {
	e := start(t)
	namespace(t, e.Registry, "a")
	res, _ := e.Registry.Lookup("rbac.authorization.k8s.io", "v1", "rolebindings")
	list := resourceRequest(alice, "list", "", "configmaps", "a", "")
	for i := range 20 {
		write(t, e.Registry, "RoleBinding", "a", "grant", grant("ClusterRole", "view", "alice"))
		if !decide(t, e.az, list) {
			t.Fatalf("round %d: grant not in effect", i)
		}
		if _, _, err := e.Registry.Delete(t.Context(), res, "a", "grant", nil); err != nil {
			t.Fatal(err)
		}
		if decide(t, e.az, list) {
			t.Fatalf("round %d: revoked grant still in effect after the delete was acknowledged", i)
		}
	}
}
