package registry

import (
	"encoding/json"
	"reflect"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The rbac.authorization.k8s.io/v1 types: Roles and ClusterRoles hold
// rules, RoleBindings and ClusterRoleBindings grant them to subjects. The
// registry stores and validates them as Kubernetes does; internal/rbac
// reads them to authorize requests. ClusterRole aggregation is not
// served: a ClusterRole with an aggregationRule is refused, so that no
// role silently grants less than its author expects.

// RBACGroup is the API group of the RBAC types.
const RBACGroup = rbacv1.GroupName

// rbacResource returns the Resource of one RBAC type.
func rbacResource(resource, singular, kind string, namespaced bool) Resource {
	return Resource{
		Group: RBACGroup, Version: "v1", Resource: resource, SingularName: singular,
		Kind: kind, ListKind: kind + "List", Namespaced: namespaced,
		Verbs: standardVerbs, StorageKey: RBACGroup + "/" + resource,
	}
}

// Built-in entries of the RBAC types. Their names need only be path
// segments, as in Kubernetes (ClusterRoles are named like "system:basic-user").
var (
	roleBuiltin = typed[rbacv1.Role](&builtin{
		Resource:      rbacResource("roles", "role", "Role", true),
		validName:     path.ValidatePathSegmentName,
		prepare:       dropGenerationOnCreate,
		prepareUpdate: dropGenerationOnUpdate,
		validate:      func(obj, _ map[string]any) field.ErrorList { return validateRules(obj, true) },
	})
	clusterRoleBuiltin = typed[rbacv1.ClusterRole](&builtin{
		Resource:      rbacResource("clusterroles", "clusterrole", "ClusterRole", false),
		validName:     path.ValidatePathSegmentName,
		prepare:       dropGenerationOnCreate,
		prepareUpdate: dropGenerationOnUpdate,
		validate:      validateClusterRole,
	})
	roleBindingBuiltin = typed[rbacv1.RoleBinding](&builtin{
		Resource:      rbacResource("rolebindings", "rolebinding", "RoleBinding", true),
		validName:     path.ValidatePathSegmentName,
		prepare:       func(_ *Registry, obj map[string]any) error { return defaultBinding(obj) },
		prepareUpdate: func(obj, _ map[string]any) error { return defaultBinding(obj) },
		validate:      func(obj, old map[string]any) field.ErrorList { return validateBinding(obj, old, true) },
	})
	clusterRoleBindingBuiltin = typed[rbacv1.ClusterRoleBinding](&builtin{
		Resource:      rbacResource("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false),
		validName:     path.ValidatePathSegmentName,
		prepare:       func(_ *Registry, obj map[string]any) error { return defaultBinding(obj) },
		prepareUpdate: func(obj, _ map[string]any) error { return defaultBinding(obj) },
		validate:      func(obj, old map[string]any) field.ErrorList { return validateBinding(obj, old, false) },
	})
)

// asTyped converts obj, which decodesAs[T] accepted, into T.
func asTyped[T any](obj map[string]any) T {
	var v T
	if b, err := json.Marshal(obj); err == nil {
		_ = json.Unmarshal(b, &v)
	}
	return v
}

// defaultBinding fills in what Kubernetes defaults on a binding: the
// roleRef's API group, and the API group of User and Group subjects.
func defaultBinding(obj map[string]any) error {
	dropGeneration(obj)
	if ref, ok := obj["roleRef"].(map[string]any); ok {
		if g, _ := ref["apiGroup"].(string); g == "" {
			ref["apiGroup"] = RBACGroup
		}
	}
	subjects, _ := obj["subjects"].([]any)
	for _, s := range subjects {
		m, ok := s.(map[string]any)
		if !ok {
			continue
		}
		kind, _ := m["kind"].(string)
		if g, _ := m["apiGroup"].(string); g == "" && (kind == rbacv1.UserKind || kind == rbacv1.GroupKind) {
			m["apiGroup"] = RBACGroup
		}
	}
	return nil
}

// validateClusterRole checks a ClusterRole's rules and refuses
// aggregation.
func validateClusterRole(obj, _ map[string]any) field.ErrorList {
	errs := validateRules(obj, false)
	if _, ok := obj["aggregationRule"]; ok {
		errs = append(errs, field.Forbidden(field.NewPath("aggregationRule"), "ClusterRole aggregation is not supported by this server; list the rules in the ClusterRole"))
	}
	return errs
}

// validateRules checks the rules of a Role (namespaced) or ClusterRole as
// Kubernetes does: verbs are required; a rule is either about resources
// (apiGroups and resources required, resourceNames only with one resource)
// or about non-resource URLs, which namespaced rules cannot name.
func validateRules(obj map[string]any, namespaced bool) field.ErrorList {
	role := asTyped[rbacv1.ClusterRole](obj)
	var errs field.ErrorList
	for i, rule := range role.Rules {
		p := field.NewPath("rules").Index(i)
		if len(rule.Verbs) == 0 {
			errs = append(errs, field.Required(p.Child("verbs"), "verbs must contain at least one value"))
		}
		if len(rule.NonResourceURLs) > 0 {
			if namespaced {
				errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
			}
			if len(rule.APIGroups) > 0 || len(rule.Resources) > 0 || len(rule.ResourceNames) > 0 {
				errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
			}
			continue
		}
		if len(rule.APIGroups) == 0 {
			errs = append(errs, field.Required(p.Child("apiGroups"), "resource rules must supply at least one api group"))
		}
		if len(rule.Resources) == 0 {
			errs = append(errs, field.Required(p.Child("resources"), "resource rules must supply at least one resource"))
		}
		if len(rule.ResourceNames) > 0 && len(rule.Resources) > 1 {
			errs = append(errs, field.Required(p.Child("resourceNames"), "resource names cannot apply to multiple resources"))
		}
	}
	return errs
}

// validateBinding checks a RoleBinding (namespaced) or ClusterRoleBinding
// as Kubernetes does: a roleRef to a Role or ClusterRole (ClusterRole
// only for a ClusterRoleBinding) of the RBAC group, never changed by an
// update, and subjects of kind User, Group or ServiceAccount.
func validateBinding(obj, old map[string]any, namespaced bool) field.ErrorList {
	b := asTyped[rbacv1.RoleBinding](obj)
	var errs field.ErrorList
	refPath := field.NewPath("roleRef")
	if b.RoleRef.APIGroup != RBACGroup {
		errs = append(errs, field.NotSupported(refPath.Child("apiGroup"), b.RoleRef.APIGroup, []string{RBACGroup}))
	}
	kinds := []string{"ClusterRole"}
	if namespaced {
		kinds = []string{"Role", "ClusterRole"}
	}
	if !slices.Contains(kinds, b.RoleRef.Kind) {
		errs = append(errs, field.NotSupported(refPath.Child("kind"), b.RoleRef.Kind, kinds))
	}
	if b.RoleRef.Name == "" {
		errs = append(errs, field.Required(refPath.Child("name"), ""))
	}
	for _, msg := range path.ValidatePathSegmentName(b.RoleRef.Name, false) {
		errs = append(errs, field.Invalid(refPath.Child("name"), b.RoleRef.Name, msg))
	}
	for i, s := range b.Subjects {
		errs = append(errs, validateSubject(s, namespaced, field.NewPath("subjects").Index(i))...)
	}
	if old != nil && !reflect.DeepEqual(asTyped[rbacv1.RoleBinding](old).RoleRef, b.RoleRef) {
		errs = append(errs, field.Invalid(refPath, b.RoleRef, "cannot change roleRef"))
	}
	return errs
}

// validateSubject checks one subject of a binding.
func validateSubject(s rbacv1.Subject, namespaced bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		if s.Name != "" {
			for _, msg := range apivalidation.NameIsDNSSubdomain(s.Name, false) {
				errs = append(errs, field.Invalid(p.Child("name"), s.Name, msg))
			}
		}
		if s.APIGroup != "" {
			errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{""}))
		}
		if !namespaced && s.Namespace == "" {
			errs = append(errs, field.Required(p.Child("namespace"), ""))
		}
	case rbacv1.UserKind, rbacv1.GroupKind:
		if s.APIGroup != RBACGroup {
			errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{RBACGroup}))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
	}
	return errs
}
