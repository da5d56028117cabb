package rbac

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/registry"
)

// Review implements registry.Reviewer: it answers a SelfSubjectAccessReview
// (may the requesting user do this?), a SelfSubjectRulesReview (what may
// they do in a namespace?) and a SelfSubjectReview (who are they?) for
// the user of ctx.
func (a *Authorizer) Review(ctx context.Context, res *registry.Resource, obj map[string]any) (map[string]any, error) {
	u, ok := request.UserFrom(ctx)
	if !ok || u == nil {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	switch res.Resource {
	case "selfsubjectaccessreviews":
		return answer(obj, func(r *authorizationv1.SelfSubjectAccessReview) error {
			return a.reviewAccess(ctx, u, r)
		})
	case "selfsubjectrulesreviews":
		return answer(obj, func(r *authorizationv1.SelfSubjectRulesReview) error {
			return a.reviewRules(ctx, u, r)
		})
	case "selfsubjectreviews":
		return answer(obj, func(r *authenticationv1.SelfSubjectReview) error {
			r.Status.UserInfo = authenticationv1.UserInfo{Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}
			for k, v := range u.GetExtra() {
				if r.Status.UserInfo.Extra == nil {
					r.Status.UserInfo.Extra = map[string]authenticationv1.ExtraValue{}
				}
				r.Status.UserInfo.Extra[k] = v
			}
			return nil
		})
	}
	return nil, apierrors.NewMethodNotSupported(schema.GroupResource{Group: res.Group, Resource: res.Resource}, "create")
}

// answer decodes obj into T, lets fill answer it and encodes the result.
func answer[T any](obj map[string]any, fill func(*T) error) (map[string]any, error) {
	r := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, r); err != nil {
		return nil, apierrors.NewBadRequest("cannot decode the review: " + err.Error())
	}
	if err := fill(r); err != nil {
		return nil, err
	}
	out, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return out, nil
}

// reviewAccess answers whether u may do what r.Spec describes: exactly
// one of resourceAttributes and nonResourceAttributes, as Kubernetes
// validates it.
func (a *Authorizer) reviewAccess(ctx context.Context, u user.Info, r *authorizationv1.SelfSubjectAccessReview) error {
	spec := r.Spec
	attrs := authorizer.AttributesRecord{User: u}
	switch {
	case spec.ResourceAttributes != nil && spec.NonResourceAttributes == nil:
		ra := spec.ResourceAttributes
		attrs.ResourceRequest = true
		attrs.Verb, attrs.Namespace, attrs.APIGroup, attrs.APIVersion = ra.Verb, ra.Namespace, ra.Group, ra.Version
		attrs.Resource, attrs.Subresource, attrs.Name = ra.Resource, ra.Subresource, ra.Name
	case spec.NonResourceAttributes != nil && spec.ResourceAttributes == nil:
		attrs.Verb, attrs.Path = spec.NonResourceAttributes.Verb, spec.NonResourceAttributes.Path
	default:
		return apierrors.NewInvalid(schema.GroupKind{Group: authorizationv1.GroupName, Kind: "SelfSubjectAccessReview"}, "", field.ErrorList{
			field.Invalid(field.NewPath("spec", "resourceAttributes"), spec.ResourceAttributes, "exactly one of nonResourceAttributes or resourceAttributes must be specified"),
		})
	}
	decision, reason, err := a.Authorize(ctx, attrs)
	r.Status = authorizationv1.SubjectAccessReviewStatus{
		Allowed: decision == authorizer.DecisionAllow,
		Denied:  decision == authorizer.DecisionDeny,
		Reason:  reason,
	}
	if err != nil {
		r.Status.EvaluationError = err.Error()
	}
	return nil
}

// reviewRules lists the rules that apply to u in r.Spec.Namespace.
func (a *Authorizer) reviewRules(ctx context.Context, u user.Info, r *authorizationv1.SelfSubjectRulesReview) error {
	resourceRules, nonResourceRules, incomplete, err := a.RulesFor(ctx, u, r.Spec.Namespace)
	r.Status = authorizationv1.SubjectRulesReviewStatus{
		ResourceRules:    []authorizationv1.ResourceRule{},
		NonResourceRules: []authorizationv1.NonResourceRule{},
		Incomplete:       incomplete,
	}
	for _, rr := range resourceRules {
		r.Status.ResourceRules = append(r.Status.ResourceRules, authorizationv1.ResourceRule{
			Verbs: rr.GetVerbs(), APIGroups: rr.GetAPIGroups(), Resources: rr.GetResources(), ResourceNames: rr.GetResourceNames(),
		})
	}
	for _, nr := range nonResourceRules {
		r.Status.NonResourceRules = append(r.Status.NonResourceRules, authorizationv1.NonResourceRule{
			Verbs: nr.GetVerbs(), NonResourceURLs: nr.GetNonResourceURLs(),
		})
	}
	if err != nil {
		r.Status.EvaluationError = err.Error()
	}
	return nil
}
