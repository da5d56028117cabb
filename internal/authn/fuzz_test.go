package authn_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

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
