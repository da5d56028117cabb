package authn_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/setpoint/setpoint/internal/authn"
)

// FuzzBearerHeader sends hostile Authorization headers through the token
// authenticator: it never panics, and accepts only the one known token.
func FuzzBearerHeader(f *testing.F) {
	const known = "known-token-ABCDEFGHIJKLMNOP"
	tokens := (&authn.Tokens{}).WithToken(known, &user.DefaultInfo{Name: "alice"})
	auth := authn.Bearer(tokens)
	for _, s := range []string{"", "Bearer " + known, "bearer  " + known, "Bearer", "Bearer \x00", "Basic " + known, "Bearer " + known + " x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, ok, err := authn.BearerToken(header)
		if ok && err == nil && (token == "" || strings.ContainsAny(token, " \t\r\n")) {
			t.Fatalf("BearerToken(%q) = %q", header, token)
		}
		req := httptest.NewRequest("GET", "/api", nil)
		req.Header["Authorization"] = []string{header}
		resp, ok, err := auth.AuthenticateRequest(req)
		if ok != (err == nil && token == known) {
			t.Fatalf("header %q: ok %v err %v", header, ok, err)
		}
		if ok && resp.User.GetName() != "alice" {
			t.Fatalf("header %q: user %q", header, resp.User.GetName())
		}
	})
}

// FuzzTokenFile parses hostile token files: never a panic, and every line
// accepted authenticates nothing but the tokens whose hashes it holds.
func FuzzTokenFile(f *testing.F) {
	good, _ := authn.TokenLine("t", &user.DefaultInfo{Name: "alice", UID: "1", Groups: []string{"g"}})
	for _, s := range []string{"", good, "# x\n" + good + "\n" + good, "sha256:,a,b", good + ",,", "\xff\xfe", strings.Repeat(",", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		tokens, err := authn.ParseTokenFile(strings.NewReader(file))
		if err != nil {
			return
		}
		for _, probe := range []string{"", "t", file} {
			resp, ok, err := tokens.AuthenticateToken(context.Background(), probe)
			if err != nil {
				t.Fatalf("AuthenticateToken: %v", err)
			}
			if ok && (resp.User.GetName() == "" || !strings.Contains(strings.ToLower(file), authn.HashToken(probe)[len("sha256:"):])) {
				t.Fatalf("token %q accepted as %+v, its hash is not in the file", probe, resp.User)
			}
		}
	})
}

// FuzzJWT sends hostile tokens to the OIDC authenticator of an issuer
// the test serves: it never panics, and accepts only tokens whose
// signature one of the issuer's keys verifies, with RS256 or ES256.
func FuzzJWT(f *testing.F) {
	is := newIssuer(f)
	o := is.authenticator(f)
	c := is.claims()
	good := is.sign(f, jose.RS256, "rsa", c)
	for _, s := range []string{good, is.sign(f, jose.ES256, "ec", c), unsigned(c), swapPayload(good, with(c, "sub", "root")),
		is.sign(f, jose.ES256, "unknown", c, is.keys["ec"]), is.sign(f, jose.RS256, "rsa", with(c, "exp", nil)), "a.b.c", "...."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		resp, ok, err := o.AuthenticateToken(context.Background(), token)
		if !ok {
			return
		}
		if err != nil || resp.User.GetName() == "" {
			t.Fatalf("ok with err %v user %+v", err, resp.User)
		}
		jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
		if err != nil || len(jws.Signatures) != 1 {
			t.Fatalf("accepted a token that is no single-signature RS256/ES256 JWS: %v", err)
		}
		is.mu.Lock()
		key, known := is.keys[jws.Signatures[0].Header.KeyID]
		is.mu.Unlock()
		if !known {
			t.Fatalf("accepted a token of unknown key %q", jws.Signatures[0].Header.KeyID)
		}
		if _, err := jws.Verify(key.Public()); err != nil {
			t.Fatalf("accepted a token its key does not verify: %v", err)
		}
	})
}
