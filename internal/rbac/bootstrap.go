package rbac

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/registry"
)

// The bootstrap policy: the roles and bindings a fresh server needs so
// that administrators (system:masters) can do everything and every
// authenticated user can discover the API and ask what they may do, as in
// Kubernetes. admin, edit and view are for RoleBindings in a namespace:
//
//   - admin: the usual verbs (not bind, escalate or impersonate) on every
//     resource, roles and role bindings included, so an admin of a
//     namespace can grant admin, edit and view in it but nothing more;
//   - edit: read and write ConfigMaps, Secrets, Events and Leases;
//   - view: read ConfigMaps, Events, Leases and namespaces (not Secrets).
//
// Custom resources are in none of edit and view: without aggregation a
// ClusterRole cannot follow the CRDs installed later, so their authors
// grant them with roles of their own.

// Labels and annotations Kubernetes puts on its bootstrap policy.
const (
	bootstrapLabel       = "kubernetes.io/bootstrapping"
	bootstrapLabelValue  = "rbac-defaults"
	autoupdateAnnotation = "rbac.authorization.kubernetes.io/autoupdate"
)

var (
	readVerbs  = []string{"get", "list", "watch"}
	writeVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	all        = []string{"*"}
)

// resourceRule grants verbs on resources of group.
func resourceRule(verbs []string, group string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{group}, Resources: resources}
}

// urlRule grants get on non-resource URLs.
func urlRule(urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: urls}
}

// bootstrapClusterRoles are the ClusterRoles of the bootstrap policy.
func bootstrapClusterRoles() []rbacv1.ClusterRole {
	role := func(name string, rules ...rbacv1.PolicyRule) rbacv1.ClusterRole {
		return rbacv1.ClusterRole{ObjectMeta: bootstrapMeta(name), Rules: rules}
	}
	return []rbacv1.ClusterRole{
		role("cluster-admin",
			rbacv1.PolicyRule{Verbs: all, APIGroups: all, Resources: all},
			rbacv1.PolicyRule{Verbs: all, NonResourceURLs: all}),
		role("admin", rbacv1.PolicyRule{Verbs: writeVerbs, APIGroups: all, Resources: all}),
		role("edit",
			resourceRule(writeVerbs, "", "configmaps", "secrets", "events"),
			resourceRule(writeVerbs, "events.k8s.io", "events"),
			resourceRule(writeVerbs, "coordination.k8s.io", "leases"),
			resourceRule(readVerbs, "", "namespaces")),
		role("view",
			resourceRule(readVerbs, "", "configmaps", "events", "namespaces", "namespaces/status"),
			resourceRule(readVerbs, "events.k8s.io", "events"),
			resourceRule(readVerbs, "coordination.k8s.io", "leases")),
		role("system:basic-user",
			resourceRule([]string{"create"}, "authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
			resourceRule([]string{"create"}, "authentication.k8s.io", "selfsubjectreviews")),
		role("system:discovery", urlRule("/api", "/api/*", "/apis", "/apis/*", "/version", "/version/", "/openapi", "/openapi/*")),
		role("system:public-info-viewer", urlRule("/healthz", "/healthz/*", "/livez", "/livez/*", "/readyz", "/readyz/*", "/version", "/version/")),
		role("system:monitoring", urlRule("/metrics", "/metrics/*", "/healthz", "/healthz/*", "/livez", "/livez/*", "/readyz", "/readyz/*")),
	}
}

// bootstrapClusterRoleBindings are the ClusterRoleBindings of the
// bootstrap policy, each named after its ClusterRole.
func bootstrapClusterRoleBindings() []rbacv1.ClusterRoleBinding {
	bind := func(role string, groups ...string) rbacv1.ClusterRoleBinding {
		b := rbacv1.ClusterRoleBinding{
			ObjectMeta: bootstrapMeta(role),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		}
		for _, g := range groups {
			b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g})
		}
		return b
	}
	return []rbacv1.ClusterRoleBinding{
		bind("cluster-admin", user.SystemPrivilegedGroup),
		bind("system:basic-user", user.AllAuthenticated),
		bind("system:discovery", user.AllAuthenticated),
		bind("system:public-info-viewer", user.AllAuthenticated, user.AllUnauthenticated),
		bind("system:monitoring", "system:monitoring"),
	}
}

func bootstrapMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:        name,
		Labels:      map[string]string{bootstrapLabel: bootstrapLabelValue},
		Annotations: map[string]string{autoupdateAnnotation: "true"},
	}
}

// Bootstrap creates the bootstrap policy's objects that do not exist. It
// changes none that exist, so an administrator's edits stay; a deleted
// one comes back at the next start. Several replicas may run it at once:
// all but one create of each object answer AlreadyExists, which is fine.
func Bootstrap(ctx context.Context, reg *registry.Registry) error {
	// The server writes as its own privileged user, as Kubernetes'
	// loopback client does, which escalation prevention lets through.
	ctx = request.WithUser(ctx, &user.DefaultInfo{Name: user.APIServerUser, Groups: []string{user.SystemPrivilegedGroup}})
	for _, r := range bootstrapClusterRoles() {
		if err := createMissing(ctx, reg, "clusterroles", "ClusterRole", &r); err != nil {
			return err
		}
	}
	for _, b := range bootstrapClusterRoleBindings() {
		if err := createMissing(ctx, reg, "clusterrolebindings", "ClusterRoleBinding", &b); err != nil {
			return err
		}
	}
	return nil
}

// createMissing creates obj, a cluster-scoped RBAC object, unless an
// object of that name exists.
func createMissing(ctx context.Context, reg *registry.Registry, resource, kind string, obj any) error {
	res, ok := reg.Lookup(registry.RBACGroup, "v1", resource)
	if !ok {
		return fmt.Errorf("rbac: bootstrap: %s not served", resource)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("rbac: bootstrap: encode %s: %w", kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(rbacv1.SchemeGroupVersion.String())
	u.SetKind(kind)
	_, err = reg.Create(ctx, res, "", u, registry.WriteOptions{FieldManager: "setpoint-bootstrap"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("rbac: bootstrap %s %s: %w", kind, u.GetName(), err)
	}
	return nil
}
