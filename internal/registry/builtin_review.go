package registry

import (
	"context"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Review resources ask the server a question about the requesting user
// (may I do this? what may I do? who am I?): a client creates one and the
// answer comes back in the created object's status. They are never
// stored, and served only once a Reviewer is set.

// Reviewer answers the review resources.
type Reviewer interface {
	// Review answers obj, a review of res as the client sent it (its
	// body checked against res's Go type), for the user of ctx
	// (k8s.io/apiserver/pkg/endpoints/request.UserFrom). It returns the
	// object to send back, usually obj with its status filled in. Errors
	// must be StatusErrors (422 for an invalid spec).
	Review(ctx context.Context, res *Resource, obj map[string]any) (map[string]any, error)
}

// reviewResource returns the Resource of one cluster-scoped review type.
func reviewResource(group, resource, kind string) Resource {
	return Resource{
		Group: group, Version: "v1", Resource: resource, SingularName: strings.ToLower(kind),
		Kind: kind, Verbs: []string{"create"}, StorageKey: group + "/" + resource,
	}
}

// Built-in entries of the review types.
var (
	selfSubjectAccessReviewBuiltin = typed[authorizationv1.SelfSubjectAccessReview](&builtin{
		Resource: reviewResource(authorizationv1.GroupName, "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
		review:   true,
	})
	selfSubjectRulesReviewBuiltin = typed[authorizationv1.SelfSubjectRulesReview](&builtin{
		Resource: reviewResource(authorizationv1.GroupName, "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
		review:   true,
	})
	selfSubjectReviewBuiltin = typed[authenticationv1.SelfSubjectReview](&builtin{
		Resource: reviewResource(authenticationv1.GroupName, "selfsubjectreviews", "SelfSubjectReview"),
		review:   true,
	})
)

// ServeReviews serves the review resources, answered by rv. It must be
// called before Start.
func (r *Registry) ServeReviews(rv Reviewer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reviewer = rv
	r.rebuildLocked()
}

// createReview answers the create of a review: checked like any body,
// answered by the Reviewer, stored nowhere (a dry run is answered the
// same way). As Kubernetes it answers 201.
func (r *Registry) createReview(ctx context.Context, res *Resource, obj map[string]any) (Result, error) {
	r.mu.RLock()
	rv := r.reviewer
	r.mu.RUnlock()
	if rv == nil {
		return Result{}, apierrors.NewMethodNotSupported(res.groupResource(), "create")
	}
	if err := checkTypeMeta(res, obj); err != nil {
		return Result{}, err
	}
	if err := prepareBuiltin(r, res, obj, nil); err != nil {
		return Result{}, err
	}
	out, err := rv.Review(ctx, res, obj)
	if err != nil {
		return Result{}, err
	}
	if out == nil {
		return Result{}, apierrors.NewInternalError(fmt.Errorf("review of %s answered nothing", res.Resource))
	}
	out["apiVersion"], out["kind"] = res.apiVersion(), res.Kind
	return Result{Object: &unstructured.Unstructured{Object: out}, Created: true}, nil
}
