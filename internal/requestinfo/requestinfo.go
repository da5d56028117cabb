// Package requestinfo is the first filter of the HTTP chain: it reads
// from each request's path and method what the request does (verb, API
// group and version, resource, subresource, namespace, name) and puts it
// in the request's context, where authentication, audit, flow control and
// authorization read it with request.RequestInfoFrom.
//
// It uses the parser of k8s.io/apiserver, so a path means here exactly
// what it means to Kubernetes' own filters: the verbs "list", "watch" and
// "deletecollection" of collection requests, the legacy /watch/ paths and
// the watch=true parameter, and "non-resource" requests for every path
// outside /api and /apis.
package requestinfo

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/apiserver"
)

// factory parses paths under /api (the core group, without a group in
// the path) and /apis.
var factory = &request.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// Of returns what r does, as the filter would put it in r's context.
func Of(r *http.Request) (*request.RequestInfo, error) {
	return factory.NewRequestInfo(r)
}

// With returns a handler that puts the request's RequestInfo in its
// context and calls h. A request the parser rejects (a malformed
// resource path or query) gets 400 with a Status and does not reach h.
func With(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := Of(r)
		if err != nil {
			apiserver.WriteStatus(w, r, apierrors.NewBadRequest("cannot parse the request: "+err.Error()))
			return
		}
		h.ServeHTTP(w, r.WithContext(request.WithRequestInfo(r.Context(), info)))
	})
}
