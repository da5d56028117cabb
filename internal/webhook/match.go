package webhook

import (
	"context"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/setpoint/setpoint/internal/registry"
)

// invocation is a webhook to call for a request, with the resource and
// kind the request is sent as: the request's own, or, under matchPolicy
// Equivalent, another served version of it that the rules name.
type invocation struct {
	h        *hook
	resource schema.GroupVersionResource
	kind     schema.GroupVersionKind
}

// match decides whether h is called for req, whose new object is obj (the
// latest mutated one). It returns nil when not; an error (a StatusError)
// when the namespace the selector needs cannot be read.
func match(ctx context.Context, h *hook, req *registry.AdmissionRequest, obj map[string]any) (*invocation, error) {
	res := req.Resource
	gvr := schema.GroupVersionResource{Group: res.Group, Version: res.Version, Resource: res.Resource}
	var inv *invocation
	for _, r := range h.rules {
		if ruleMatches(r, req, gvr) {
			inv = &invocation{h: h, resource: gvr, kind: req.Kind}
			break
		}
	}
	if inv == nil && h.equivalent {
	rules:
		for _, r := range h.rules {
			for _, eq := range req.Equivalents() {
				egvr := schema.GroupVersionResource{Group: eq.Group, Version: eq.Version, Resource: eq.Resource}
				if ruleMatches(r, req, egvr) {
					kind := schema.GroupVersionKind{Group: eq.Group, Version: eq.Version, Kind: eq.Kind}
					if req.Subresource == "scale" {
						kind = req.Kind
					}
					inv = &invocation{h: h, resource: egvr, kind: kind}
					break rules
				}
			}
		}
	}
	if inv == nil {
		return nil, nil
	}
	if !objectSelected(h.objectSel, obj, req.OldObject) {
		return nil, nil
	}
	if ok, err := namespaceSelected(ctx, h.namespaceSel, req); !ok || err != nil {
		return nil, err
	}
	return inv, nil
}

// ruleMatches reports whether rule r covers req, taken as a request on
// gvr.
func ruleMatches(r admissionregistrationv1.RuleWithOperations, req *registry.AdmissionRequest, gvr schema.GroupVersionResource) bool {
	return scopeMatches(r.Scope, req) &&
		operationMatches(r.Operations, req.Operation) &&
		anyOrExact(r.APIGroups, gvr.Group) &&
		anyOrExact(r.APIVersions, gvr.Version) &&
		resourceMatches(r.Resources, gvr.Resource, req.Subresource)
}

// isNamespace reports whether req is about a Namespace, which rules and
// selectors treat apart.
func isNamespace(req *registry.AdmissionRequest) bool {
	return req.Resource.Group == "" && req.Resource.Resource == "namespaces"
}

// scopeMatches applies a rule's scope: Namespaces count as cluster-scoped
// although their requests carry their own name as namespace.
func scopeMatches(scope *admissionregistrationv1.ScopeType, req *registry.AdmissionRequest) bool {
	if scope == nil {
		return true
	}
	clusterScoped := isNamespace(req) || req.Namespace == ""
	switch *scope {
	case admissionregistrationv1.AllScopes:
		return true
	case admissionregistrationv1.ClusterScope:
		return clusterScoped
	case admissionregistrationv1.NamespacedScope:
		return !clusterScoped
	}
	return false
}

func operationMatches(ops []admissionregistrationv1.OperationType, op admissionv1.Operation) bool {
	for _, o := range ops {
		if o == admissionregistrationv1.OperationAll || string(o) == string(op) {
			return true
		}
	}
	return false
}

func anyOrExact(items []string, s string) bool {
	for _, i := range items {
		if i == "*" || i == s {
			return true
		}
	}
	return false
}

// resourceMatches applies a rule's resources: "name" is the resource
// itself only, "name/sub" one subresource, "*" every resource but no
// subresource, "*/*" everything, "name/*" and "*/sub" the obvious.
func resourceMatches(resources []string, resource, sub string) bool {
	for _, rs := range resources {
		r, s, _ := strings.Cut(rs, "/")
		if (r == "*" || r == resource) && (s == "*" || s == sub) {
			return true
		}
	}
	return false
}

// objectSelected applies an object selector: an empty one selects
// everything, another one a request whose new or old object it matches.
func objectSelected(sel labels.Selector, obj, old map[string]any) bool {
	if sel.Empty() {
		return true
	}
	return (obj != nil && sel.Matches(objectLabels(obj))) || (old != nil && sel.Matches(objectLabels(old)))
}

// objectLabels returns metadata.labels of obj.
func objectLabels(obj map[string]any) labels.Set {
	md, _ := obj["metadata"].(map[string]any)
	m, _ := md["labels"].(map[string]any)
	out := make(labels.Set, len(m))
	for k, v := range m {
		s, _ := v.(string)
		out[k] = s
	}
	return out
}

// namespaceSelected applies a namespace selector: requests on other
// cluster-scoped resources than Namespaces are always selected; a
// Namespace is selected by its own labels, anything else by those of its
// namespace.
func namespaceSelected(ctx context.Context, sel labels.Selector, req *registry.AdmissionRequest) (bool, error) {
	if sel.Empty() || (req.Namespace == "" && !isNamespace(req)) {
		return true, nil
	}
	l, err := req.NamespaceLabels(ctx)
	if err != nil {
		return false, err
	}
	return sel.Matches(labels.Set(l)), nil
}
