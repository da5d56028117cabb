package authn

import (
	"errors"
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
)

// maxTokenBytes bounds the bearer tokens read; an OIDC ID token is a few
// kilobytes.
const maxTokenBytes = 16 << 10

// BearerToken reads an Authorization header value of the Bearer scheme
// (the scheme name in any case, then spaces, then the token). ok is false
// when the header is empty or of another scheme; err is set when it is of
// the Bearer scheme but carries no usable token (empty, too long, or with
// spaces or control characters).
func BearerToken(header string) (token string, ok bool, err error) {
	scheme, rest, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "bearer") {
		return "", false, nil
	}
	token = strings.TrimLeft(rest, " ")
	switch {
	case token == "":
		return "", true, errors.New("empty bearer token")
	case len(token) > maxTokenBytes:
		return "", true, errors.New("bearer token too long")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return "", true, errors.New("bearer token with a space or control character")
		}
	}
	return token, true, nil
}

// Bearer returns the authenticator of bearer tokens: the token of the
// request's Authorization header goes to each of tokens in order, and the
// first that recognises it names the user. A bearer token none of them
// recognises is refused.
func Bearer(tokens ...authenticator.Token) authenticator.Request {
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		token, ok, err := BearerToken(r.Header.Get("Authorization"))
		if !ok {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, invalid("bearer token", err)
		}
		var errs []error
		for _, t := range tokens {
			resp, ok, err := t.AuthenticateToken(r.Context(), token)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok {
				return resp, true, nil
			}
		}
		return nil, false, invalid("bearer token", errors.Join(errs...))
	})
}
