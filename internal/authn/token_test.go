package authn_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/setpoint/setpoint/internal/authn"
)

func TestTokenFile(t *testing.T) {
	token := authn.NewToken()
	if len(token) < 26 {
		t.Fatalf("token %q is short", token)
	}
	line, err := authn.TokenLine(token, &user.DefaultInfo{Name: "alice", UID: "42", Groups: []string{"dev", "ops"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, token) {
		t.Fatal("the token file line holds the token")
	}
	other, err := authn.TokenLine("another-token", &user.DefaultInfo{Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := authn.ParseTokenFile(strings.NewReader("# comment\n\n  " + line + "  \r\n" + other + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp, ok, err := tokens.AuthenticateToken(context.Background(), token)
	if !ok || err != nil {
		t.Fatalf("token: ok %v err %v", ok, err)
	}
	if u := resp.User; u.GetName() != "alice" || u.GetUID() != "42" || !slices.Equal(u.GetGroups(), []string{"dev", "ops"}) {
		t.Errorf("user %+v", u)
	}
	if resp, ok, _ := tokens.AuthenticateToken(context.Background(), "another-token"); !ok || resp.User.GetName() != "bob" || len(resp.User.GetGroups()) != 0 {
		t.Errorf("second token: %v %+v", ok, resp)
	}
	for _, bad := range []string{"", token + "x", token[1:], strings.ToLower(token), strings.TrimPrefix(strings.Split(line, ",")[0], "sha256:")} {
		if _, ok, err := tokens.AuthenticateToken(context.Background(), bad); ok || err != nil {
			t.Errorf("token %q: ok %v err %v", bad, ok, err)
		}
	}
	// A user the format cannot hold is refused, not written wrongly.
	for _, u := range []user.DefaultInfo{{Name: ""}, {Name: "a,b"}, {Name: "a", Groups: []string{"x,y"}}, {Name: " a"}, {Name: "a\nb"}} {
		if line, err := authn.TokenLine("t", &u); err == nil {
			t.Errorf("TokenLine(%+v) = %q", u, line)
		}
	}
}

func TestTokenFileErrors(t *testing.T) {
	hash := authn.HashToken("x")
	for _, tc := range []struct{ name, file, want string }{
		{"too few fields", hash + ",alice\n", "line 1: fewer than 3 fields"},
		{"no prefix", strings.TrimPrefix(hash, "sha256:") + ",alice,1\n", "line 1: the first field"},
		{"plain token", "secret-token,alice,1\n", "line 1:"},
		{"short hash", hash[:20] + ",alice,1\n", "hexadecimal"},
		{"long hash", hash + "00,alice,1\n", "hexadecimal"},
		{"not hex", "sha256:" + strings.Repeat("zz", 32) + ",alice,1\n", "hexadecimal"},
		{"empty user", hash + ",,1\n", "empty user"},
		{"empty group", hash + ",alice,1,,ops\n", "empty group"},
		{"control character", hash + ",al\x00ice,1\n", "control"},
		{"twice", "# c\n" + hash + ",alice,1\n" + hash + ",bob,2\n", "line 3: the same token hash"},
		{"too big", strings.Repeat("#", 5<<20), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := authn.ParseTokenFile(strings.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "alice") || strings.Contains(err.Error(), "secret-token") {
				t.Errorf("the error repeats the line: %v", err)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header, token string
		ok, err       bool
	}{
		{"", "", false, false},
		{"Basic abc", "", false, false},
		{"Bearerabc", "", false, false},
		{"Bearer abc", "abc", true, false},
		{"BEARER   abc.def-_~+/=", "abc.def-_~+/=", true, false},
		{"Bearer ", "", true, true},
		{"Bearer a b", "", true, true},
		{"Bearer a\tb", "", true, true},
		{"Bearer \x7f", "", true, true},
		{"Bearer " + strings.Repeat("a", 17<<10), "", true, true},
	} {
		token, ok, err := authn.BearerToken(tc.header)
		if token != tc.token || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("BearerToken(%.40q) = %q, %v, %v", tc.header, token, ok, err)
		}
	}
}
