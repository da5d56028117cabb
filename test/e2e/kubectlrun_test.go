package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kubectlRunner runs upstream kubectl against s in a private home and cache
// directory. run returns standard output; with wantFail the command must
// fail, and standard error is returned instead.
type kubectlRunner struct {
	t   *testing.T
	bin string
	s   *server
	dir string
}

func newKubectl(t *testing.T, s *server) *kubectlRunner {
	t.Helper()
	return &kubectlRunner{t: t, bin: buildKubectl(t), s: s, dir: t.TempDir()}
}

func (k *kubectlRunner) run(wantFail bool, args ...string) string {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(k.t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"--kubeconfig", k.s.kubeconfig, "--cache-dir", filepath.Join(k.dir, "cache")}, args...)...)
	cmd.Dir = k.dir
	cmd.Env = append(os.Environ(), "HOME="+k.dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if wantFail {
		if err == nil {
			k.t.Fatalf("kubectl %s succeeded, want a failure; stdout:\n%s", strings.Join(args, " "), stdout.String())
		}
		return stderr.String()
	}
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// lines splits kubectl output into its non-empty lines.
func lines(out string) []string {
	var l []string
	for _, s := range strings.Split(out, "\n") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l
}
