package rbac

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/apiserver"
)

// With returns the authorization filter: it asks az about every request,
// as the request's RequestInfo (internal/requestinfo, earlier in the
// chain) and user (authentication, earlier too) describe it, and calls h
// only when az allows it. Otherwise it answers 403 Forbidden with
// Kubernetes' message, or the error az returned with its decision (a
// Status such as 503, or 500). A request without a user is denied; one
// without a RequestInfo is a wiring mistake and answers 500.
func With(h http.Handler, az authorizer.Authorizer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attrs, err := attributesOf(r)
		if err != nil {
			apiserver.WriteStatus(w, r, err)
			return
		}
		decision, reason, err := az.Authorize(r.Context(), attrs)
		switch {
		case decision == authorizer.DecisionAllow:
			h.ServeHTTP(w, r)
		case err != nil:
			apiserver.WriteStatus(w, r, err)
		default:
			apiserver.WriteStatus(w, r, Forbidden(attrs, reason))
		}
	})
}

// attributesOf describes r for an authorizer.
func attributesOf(r *http.Request) (authorizer.AttributesRecord, error) {
	info, ok := request.RequestInfoFrom(r.Context())
	if !ok {
		return authorizer.AttributesRecord{}, errors.New("rbac: no RequestInfo in the request's context")
	}
	u, _ := request.UserFrom(r.Context())
	return authorizer.AttributesRecord{
		User:            u,
		Verb:            info.Verb,
		Namespace:       info.Namespace,
		APIGroup:        info.APIGroup,
		APIVersion:      info.APIVersion,
		Resource:        info.Resource,
		Subresource:     info.Subresource,
		Name:            info.Name,
		ResourceRequest: info.IsResourceRequest,
		Path:            info.Path,
	}, nil
}

// htmlEscaper keeps user-chosen text in a 403 message from being read as
// HTML by a browser, as Kubernetes escapes it.
var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Forbidden is the 403 Kubernetes answers when attrs is not allowed, with
// its exact message: `<resource> "<name>" is forbidden: User "<user>"
// cannot <verb> resource "<resource>" in API group "<group>" in the
// namespace "<ns>"` (or "at the cluster scope"; `forbidden: User "<user>"
// cannot <verb> path "<path>"` for non-resource requests), followed by
// ": <reason>" when the authorizer gave one.
func Forbidden(attrs authorizer.Attributes, reason string) *apierrors.StatusError {
	username := ""
	if u := attrs.GetUser(); u != nil {
		username = u.GetName()
	}
	var msg string
	switch {
	case !attrs.IsResourceRequest():
		msg = fmt.Sprintf("User %q cannot %s path %q", username, attrs.GetVerb(), attrs.GetPath())
	default:
		resource := attrs.GetResource()
		if sub := attrs.GetSubresource(); sub != "" {
			resource += "/" + sub
		}
		msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q", username, attrs.GetVerb(), resource, attrs.GetAPIGroup())
		if ns := attrs.GetNamespace(); ns != "" {
			msg += fmt.Sprintf(" in the namespace %q", ns)
		} else {
			msg += " at the cluster scope"
		}
	}
	msg = htmlEscaper.Replace(msg)
	if reason != "" {
		msg += ": " + reason
	}
	gr := schema.GroupResource{Group: attrs.GetAPIGroup(), Resource: attrs.GetResource()}
	return apierrors.NewForbidden(gr, attrs.GetName(), errors.New(msg))
}
