package cli_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/setpoint/setpoint/internal/authn"
	"github.com/setpoint/setpoint/internal/cli"
)

// tokenCreate runs "setpoint token create" with args.
func tokenCreate(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	root := cli.NewRootCommand(cli.Env{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }})
	root.SetArgs(append([]string{"token", "create"}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestTokenCreate(t *testing.T) {
	out, _, err := tokenCreate("--user", "alice", "--groups", "dev,ops")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("output %q, want a token and a line", out)
	}
	token, line := lines[0], lines[1]
	if strings.Contains(line, token) {
		t.Error("the file line holds the token")
	}
	tokens, err := authn.ParseTokenFile(strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	resp, ok, err := tokens.AuthenticateToken(context.Background(), token)
	if !ok || err != nil {
		t.Fatalf("the printed token does not authenticate with the printed line: %v", err)
	}
	if u := resp.User; u.GetName() != "alice" || u.GetUID() == "" || !slices.Equal(u.GetGroups(), []string{"dev", "ops"}) {
		t.Errorf("user %+v", u)
	}
	again, _, err := tokenCreate("--user", "alice")
	if err != nil || strings.Split(again, "\n")[0] == token {
		t.Errorf("a second token: %v, the same as the first: %v", err, strings.Split(again, "\n")[0] == token)
	}

	for _, args := range [][]string{nil, {"--user", "a,b"}, {"--user", "a", "--groups", "x\ty"}} {
		if out, _, err := tokenCreate(args...); err == nil || out != "" {
			t.Errorf("token create %q: %v, output %q", args, err, out)
		}
	}
}
