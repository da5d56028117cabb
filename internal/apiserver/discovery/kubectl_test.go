package discovery_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// createRecorder answers POST requests by echoing the body as the created
// object and records their query; everything else goes to the discovery
// server.
type createRecorder struct {
	*discoveryServer
	mu      sync.Mutex
	queries []url.Values
}

func (c *createRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		c.discoveryServer.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.queries = append(c.queries, r.URL.Query())
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(body)
}

// kubectl runs the kubectl on PATH against url with a fresh cache and no
// kubeconfig; it skips the test when there is no kubectl.
func kubectl(t *testing.T, url, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), path, append([]string{"--server", url, "--cache-dir", home + "/cache"}, args...)...)
	cmd.Env = []string{"HOME=" + home, "KUBECONFIG=" + home + "/none"}
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// TestKubectl runs the real kubectl against the documents: explain reads
// the OpenAPI v3 documents through discovery, and create sends
// fieldValidation=Strict only when its verifier finds the parameter on the
// kind's PATCH operation (otherwise it validates client-side from
// /openapi/v2, which is not served, and fails).
func TestKubectl(t *testing.T) {
	reg := newPopulated(t)
	srv := &createRecorder{discoveryServer: &discoveryServer{reg: reg, aggregated: true}}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	explain := []struct {
		field string
		want  []string
	}{
		{"widgets", []string{"GROUP:      example.com", "KIND:       Widget", "Widget is a test resource.", "metadata\t<ObjectMeta>"}},
		{"wd.spec.size", []string{"FIELD: size <integer>", "Size in units."}},
		{"widgets.metadata.labels", []string{"FIELD: labels <map[string]string>"}},
		{"gizmos", []string{"GROUP:      tools.example.org", "KIND:       Gizmo"}},
		{"namespaces.status.phase", []string{"KIND:       Namespace", "ENUM:", "Active"}},
		{"crd.spec.names.shortNames", []string{"KIND:       CustomResourceDefinition", "FIELD: shortNames <[]string>"}},
	}
	for _, tt := range explain {
		t.Run("explain_"+tt.field, func(t *testing.T) {
			out := kubectl(t, ts.URL, "", "explain", tt.field)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("explain_other_version", func(t *testing.T) {
		out := kubectl(t, ts.URL, "", "explain", "widgets.spec", "--api-version=example.com/v1beta1")
		if !strings.Contains(out, "VERSION:    v1beta1") || !strings.Contains(out, "size\t<integer> -required-") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("create_validates_server_side", func(t *testing.T) {
		kubectl(t, ts.URL, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: 1}\n", "create", "-f", "-")
		kubectl(t, ts.URL, "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n", "create", "-f", "-")
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.queries) != 2 {
			t.Fatalf("%d creates", len(srv.queries))
		}
		for _, q := range srv.queries {
			if q.Get("fieldValidation") != "Strict" {
				t.Errorf("create query %v: want fieldValidation=Strict", q)
			}
		}
	})
}
