// Package authn is the authentication filter of the HTTP chain: it finds
// out who sends each request, from a client certificate, a bearer token or
// an OIDC ID token, and puts that user in the request's context for the
// filters after it (audit, flow control, authorization).
//
// Authenticators implement k8s.io/apiserver's authenticator.Request, and
// the user is k8s.io/apiserver's user.Info, so the rest of the chain reads
// it with request.UserFrom as Kubernetes' own filters do.
package authn

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/apiserver"
)

// Union returns an authenticator that asks each of auths in order and
// returns the first user one of them recognises. It fails with every
// authenticator's error when none does and at least one failed (a
// credential was presented and is bad), and answers not-found when none
// found a credential of its kind.
func Union(auths ...authenticator.Request) authenticator.Request {
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		var errs []error
		for _, a := range auths {
			resp, ok, err := a.AuthenticateRequest(r)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok {
				return resp, true, nil
			}
		}
		return nil, false, errors.Join(errs...)
	})
}

// Anonymous returns the authenticator of --anonymous-auth: a request that
// presents no credential at all (no Authorization header, no client
// certificate) is user system:anonymous in group system:unauthenticated.
// A request with a bad credential is not anonymous: put Anonymous last in
// a Union and it gets 401.
func Anonymous() authenticator.Request {
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		if r.Header.Get("Authorization") != "" || (r.TLS != nil && len(r.TLS.PeerCertificates) > 0) {
			return nil, false, nil
		}
		return anonymous(), true, nil
	})
}

// anonymous is the answer for a request without credentials.
func anonymous() *authenticator.Response {
	return &authenticator.Response{User: &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}}
}

// With returns a handler that authenticates each request with auth and
// passes it to h with the user in its context (request.WithUser); users
// other than system:anonymous get the group system:authenticated. A
// request auth does not accept goes to failed instead (nil: Unauthorized).
// The Authorization header is removed before either, so nothing after
// this filter can log or forward it. Health checks (/healthz, /livez,
// /readyz and below), which load balancers probe without credentials, go
// to h as system:anonymous when auth does not accept them, as Kubernetes'
// anonymous-auth conditions for those paths do.
func With(h http.Handler, auth authenticator.Request, failed http.Handler) http.Handler {
	if failed == nil {
		failed = http.HandlerFunc(Unauthorized)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, ok, err := auth.AuthenticateRequest(r)
		r.Header.Del("Authorization")
		if err != nil || !ok {
			if !IsHealthPath(r.URL.Path) {
				failed.ServeHTTP(w, r)
				return
			}
			resp = anonymous()
		}
		h.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), withAuthenticatedGroup(resp.User))))
	})
}

// Unauthorized answers 401 with a Status of reason Unauthorized, and a
// WWW-Authenticate header saying that a bearer token is accepted. The
// answer never says why the credential was refused.
func Unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="setpoint"`)
	apiserver.WriteStatus(w, r, apierrors.NewUnauthorized("Unauthorized"))
}

// IsHealthPath reports whether path is a health check that answers
// without credentials: /healthz, /livez, /readyz or a path below them.
func IsHealthPath(path string) bool {
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// withAuthenticatedGroup adds system:authenticated to the groups of u
// unless u is anonymous or has it.
func withAuthenticatedGroup(u user.Info) user.Info {
	if u.GetName() == user.Anonymous || slices.Contains(u.GetGroups(), user.AllAuthenticated) {
		return u
	}
	return &user.DefaultInfo{
		Name: u.GetName(), UID: u.GetUID(), Extra: u.GetExtra(),
		Groups: append(slices.Clone(u.GetGroups()), user.AllAuthenticated),
	}
}

// errInvalid is the error of a credential that was presented and refused;
// authenticators wrap it with which kind.
var errInvalid = errors.New("invalid credential")

func invalid(kind string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%s: %w", kind, errInvalid)
	}
	return fmt.Errorf("%s: %w: %w", kind, errInvalid, cause)
}
