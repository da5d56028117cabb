package registry_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/registry/registrytest"
	"github.com/setpoint/setpoint/internal/storage"
)

// rbacObject is an RBAC object of kind named name with the given fields.
func rbacObject(kind, name string, fields map[string]any) map[string]any {
	m := map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": map[string]any{"name": name}}
	for k, v := range fields {
		m[k] = v
	}
	return m
}

// rule is a PolicyRule as JSON.
func rule(verbs, groups, resources []any) map[string]any {
	return map[string]any{"verbs": verbs, "apiGroups": groups, "resources": resources}
}

func TestRBACValidation(t *testing.T) {
	e := newEnv(t)
	roles := e.lookup(t, "rbac.authorization.k8s.io", "v1", "roles")
	clusterRoles := e.lookup(t, "rbac.authorization.k8s.io", "v1", "clusterroles")
	bindings := e.lookup(t, "rbac.authorization.k8s.io", "v1", "rolebindings")
	clusterBindings := e.lookup(t, "rbac.authorization.k8s.io", "v1", "clusterrolebindings")
	ref := func(kind, name string) map[string]any {
		return map[string]any{"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}}
	}
	withSubjects := func(m map[string]any, subjects ...any) map[string]any {
		m["subjects"] = subjects
		return m
	}
	for _, tc := range []struct {
		name string
		res  *registry.Resource
		obj  map[string]any
		want string // "" = accepted; else part of the 422 message
	}{
		{"role-ok", roles, rbacObject("Role", "r", map[string]any{"rules": []any{rule([]any{"get"}, []any{""}, []any{"configmaps"})}}), ""},
		{"role-name-with-colon", roles, rbacObject("Role", "team:reader", nil), ""},
		{"role-name-with-slash", roles, rbacObject("Role", "a/b", nil), `may not contain '/'`},
		{"role-no-verbs", roles, rbacObject("Role", "r", map[string]any{"rules": []any{rule(nil, []any{""}, []any{"configmaps"})}}), "rules[0].verbs: Required value: verbs must contain at least one value"},
		{"role-no-groups", roles, rbacObject("Role", "r", map[string]any{"rules": []any{rule([]any{"get"}, nil, []any{"configmaps"})}}), "resource rules must supply at least one api group"},
		{"role-no-resources", roles, rbacObject("Role", "r", map[string]any{"rules": []any{rule([]any{"get"}, []any{""}, nil)}}), "resource rules must supply at least one resource"},
		{"role-names-several-resources", roles, rbacObject("Role", "r", map[string]any{"rules": []any{map[string]any{
			"verbs": []any{"get"}, "apiGroups": []any{""}, "resources": []any{"a", "b"}, "resourceNames": []any{"x"},
		}}}), "resource names cannot apply to multiple resources"},
		{"role-non-resource-url", roles, rbacObject("Role", "r", map[string]any{"rules": []any{map[string]any{
			"verbs": []any{"get"}, "nonResourceURLs": []any{"/healthz"},
		}}}), "namespaced rules cannot apply to non-resource URLs"},
		{"clusterrole-non-resource-url", clusterRoles, rbacObject("ClusterRole", "system:probe", map[string]any{"rules": []any{map[string]any{
			"verbs": []any{"get"}, "nonResourceURLs": []any{"/healthz", "/api/*"},
		}}}), ""},
		{"clusterrole-mixed-rule", clusterRoles, rbacObject("ClusterRole", "c", map[string]any{"rules": []any{map[string]any{
			"verbs": []any{"get"}, "nonResourceURLs": []any{"/healthz"}, "resources": []any{"pods"},
		}}}), "rules cannot apply to both regular resources and non-resource URLs"},
		{"clusterrole-aggregation", clusterRoles, rbacObject("ClusterRole", "agg", map[string]any{"aggregationRule": map[string]any{
			"clusterRoleSelectors": []any{map[string]any{"matchLabels": map[string]any{"a": "b"}}},
		}}), "aggregationRule: Forbidden"},
		{"binding-ok", bindings, withSubjects(rbacObject("RoleBinding", "b", ref("ClusterRole", "view")),
			map[string]any{"kind": "User", "name": "alice"},
			map[string]any{"kind": "ServiceAccount", "name": "robot"}), ""},
		{"binding-bad-kind", bindings, rbacObject("RoleBinding", "b", ref("Secret", "x")), `roleRef.kind: Unsupported value: "Secret"`},
		{"binding-no-role-name", bindings, rbacObject("RoleBinding", "b", ref("Role", "")), "roleRef.name: Required value"},
		{"binding-bad-ref-group", bindings, rbacObject("RoleBinding", "b", map[string]any{"roleRef": map[string]any{"apiGroup": "example.com", "kind": "Role", "name": "r"}}), "roleRef.apiGroup: Unsupported value"},
		{"binding-bad-subject-kind", bindings, withSubjects(rbacObject("RoleBinding", "b", ref("Role", "r")), map[string]any{"kind": "Robot", "name": "x"}), `subjects[0].kind: Unsupported value: "Robot"`},
		{"binding-subject-no-name", bindings, withSubjects(rbacObject("RoleBinding", "b", ref("Role", "r")), map[string]any{"kind": "User"}), "subjects[0].name: Required value"},
		{"binding-sa-bad-group", bindings, withSubjects(rbacObject("RoleBinding", "b", ref("Role", "r")), map[string]any{"kind": "ServiceAccount", "name": "x", "apiGroup": "rbac.authorization.k8s.io"}), "subjects[0].apiGroup: Unsupported value"},
		{"clusterbinding-to-role", clusterBindings, rbacObject("ClusterRoleBinding", "b", ref("Role", "r")), `roleRef.kind: Unsupported value: "Role"`},
		{"clusterbinding-sa-no-namespace", clusterBindings, withSubjects(rbacObject("ClusterRoleBinding", "b", ref("ClusterRole", "view")), map[string]any{"kind": "ServiceAccount", "name": "x"}), "subjects[0].namespace: Required value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := ""
			if tc.res.Namespaced {
				ns = "default"
			}
			_, err := e.reg.Create(context.Background(), tc.res, ns, obj(tc.obj), registry.WriteOptions{DryRun: true})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.want)
		})
	}
}

func TestRBACBindingDefaultsAndImmutableRoleRef(t *testing.T) {
	e := newEnv(t)
	bindings := e.lookup(t, "rbac.authorization.k8s.io", "v1", "rolebindings")
	b := rbacObject("RoleBinding", "b", map[string]any{
		"roleRef":  map[string]any{"kind": "ClusterRole", "name": "view"},
		"subjects": []any{map[string]any{"kind": "User", "name": "alice"}, map[string]any{"kind": "Group", "name": "devs"}, map[string]any{"kind": "ServiceAccount", "name": "robot"}},
	})
	res, err := create(t, e, bindings, b)
	if err != nil {
		t.Fatal(err)
	}
	got := res.Object.Object
	if g := got["roleRef"].(map[string]any)["apiGroup"]; g != "rbac.authorization.k8s.io" {
		t.Errorf("roleRef.apiGroup defaulted to %v", g)
	}
	for i, want := range []any{"rbac.authorization.k8s.io", "rbac.authorization.k8s.io", nil} {
		if g := got["subjects"].([]any)[i].(map[string]any)["apiGroup"]; g != want {
			t.Errorf("subjects[%d].apiGroup = %v, want %v", i, g, want)
		}
	}
	if _, ok := got["metadata"].(map[string]any)["generation"]; ok {
		t.Error("a RoleBinding has no spec but got a generation")
	}
	changed := res.Object.DeepCopy()
	changed.Object["roleRef"].(map[string]any)["name"] = "edit"
	_, err = e.reg.Update(context.Background(), bindings, "default", "b", changed, registry.WriteOptions{})
	wantInvalid(t, err, "roleRef: Invalid value")
	changed = res.Object.DeepCopy()
	changed.Object["subjects"] = []any{map[string]any{"kind": "User", "name": "bob"}}
	if _, err := e.reg.Update(context.Background(), bindings, "default", "b", changed, registry.WriteOptions{}); err != nil {
		t.Fatalf("changing subjects refused: %v", err)
	}
}

// recordingView is a View that keeps the names it holds.
type recordingView struct {
	mu     sync.Mutex
	names  map[string]bool
	resets int
}

func (v *recordingView) Reset(objs []map[string]any, _ int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.resets++
	v.names = map[string]bool{}
	for _, o := range objs {
		v.names[o["metadata"].(map[string]any)["name"].(string)] = true
	}
}

func (v *recordingView) Apply(o map[string]any, deleted bool, _ int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.names[o["metadata"].(map[string]any)["name"].(string)] = !deleted
}

func (v *recordingView) has(name string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.names[name]
}

// TestFollowAndSync checks that a view added by Follow is loaded at Start
// and, once Sync returns, holds every write acknowledged before, written
// through another registry on the same store (another replica).
func TestFollowAndSync(t *testing.T) {
	v := &recordingView{}
	var reg *registry.Registry
	e := registrytest.StartWithSetup(t, feed.Options{}, func(r *registry.Registry) {
		res, _ := r.Lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
		if err := r.Follow(res, v); err != nil {
			t.Fatal(err)
		}
		reg = r
	})
	if v.resets != 1 {
		t.Fatalf("view reset %d times at start, want 1", v.resets)
	}
	other, err := registry.New(registry.Options{Store: e.Store})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := other.Lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
	ctx := context.Background()
	for i, name := range []string{"a", "b", "c"} {
		if _, err := other.Create(ctx, res, "", obj(rbacObject("ClusterRole", name, nil)), registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, _, err := other.Delete(ctx, res, "", "a", nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := reg.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if !v.has(name) {
			t.Fatalf("view misses %s after Sync", name)
		}
	}
	if v.has("a") {
		t.Error("view still holds a deleted object after Sync")
	}
}

// answerReviewer answers every review with status.allowed true and the
// spec it was given.
type answerReviewer struct{}

func (answerReviewer) Review(_ context.Context, _ *registry.Resource, obj map[string]any) (map[string]any, error) {
	obj["status"] = map[string]any{"allowed": true}
	return obj, nil
}

func TestReviewsAreAnsweredNotStored(t *testing.T) {
	e := newEnv(t)
	if _, ok := e.reg.Lookup("authorization.k8s.io", "v1", "selfsubjectaccessreviews"); ok {
		t.Fatal("reviews served without a Reviewer")
	}
	e.reg.ServeReviews(answerReviewer{})
	res := e.lookup(t, "authorization.k8s.io", "v1", "selfsubjectaccessreviews")
	if res.Namespaced || strings.Join(res.Verbs, ",") != "create" {
		t.Errorf("served as namespaced=%v verbs=%v, want cluster-scoped create-only", res.Namespaced, res.Verbs)
	}
	review := map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
		"spec": map[string]any{"resourceAttributes": map[string]any{"verb": "get", "resource": "pods"}}}
	got, err := e.reg.Create(context.Background(), res, "", obj(review), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created || got.Object.Object["status"].(map[string]any)["allowed"] != true {
		t.Errorf("answer %+v", got)
	}
	list, err := e.store.List(context.Background(), storage.ListOptions{Resource: res.StorageKey})
	if err != nil || len(list.Objects) != 0 {
		t.Errorf("a review was stored: %v %v", list, err)
	}
	bad := map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": "not an object"}
	_, err = e.reg.Create(context.Background(), res, "", obj(bad), registry.WriteOptions{})
	wantStatus(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)
}
