package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestWatchWire reads watch streams over raw HTTP, with ?watch=true and the
// legacy /watch/ path: chunked newline-delimited JSON events, each sent as
// soon as it happens while the stream stays open.
func TestWatchWire(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "wire")
	wc := c.widgets("wire")
	mustCreate(t, ctx, wc, widget("wire", "first", nil, validSpec()))
	// HTTP/1.1, whose chunked framing is what is checked; over TLS
	// client-go would speak HTTP/2, where frames carry the stream.
	cfg := s.restConfig()
	cfg.NextProtos = []string{"http/1.1"}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gv := "/apis/" + testGroup + "/" + testVersion
	for _, tc := range []struct{ name, path string }{
		{"Query", gv + "/namespaces/wire/widgets?watch=true&resourceVersion="},
		{"QueryOne", gv + "/namespaces/wire/widgets?watch=1&resourceVersion="},
		{"LegacyPath", gv + "/watch/namespaces/wire/widgets?resourceVersion="},
		{"LegacyPathAllNamespaces", gv + "/watch/widgets?resourceVersion="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Start after everything earlier subtests wrote.
			now, err := wc.List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequestWithContext(ctx, "GET", s.baseURL()+tc.path+now.GetResourceVersion(), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("watch %s: code %d", tc.path, resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("watch Content-Type %q, want application/json", ct)
			}
			if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
				t.Errorf("watch Transfer-Encoding %v, want chunked", resp.TransferEncoding)
			}
			lines := bufio.NewScanner(resp.Body)
			lines.Buffer(make([]byte, 1<<20), 1<<20)
			// Each write must arrive while the stream is open.
			for _, name := range []string{tc.name + "-a", tc.name + "-b"} {
				name = strings.ToLower(name)
				created := mustCreate(t, ctx, wc, widget("wire", name, nil, validSpec()))
				if !lines.Scan() {
					t.Fatalf("stream ended before the event for %s: %v", name, lines.Err())
				}
				var ev struct {
					Type   string          `json:"type"`
					Object json.RawMessage `json:"object"`
				}
				if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
					t.Fatalf("event line %q: %v", lines.Text(), err)
				}
				var obj metav1.PartialObjectMetadata
				if err := json.Unmarshal(ev.Object, &obj); err != nil {
					t.Fatalf("event object %s: %v", ev.Object, err)
				}
				if ev.Type != "ADDED" || obj.Name != name || obj.ResourceVersion != created.GetResourceVersion() || obj.Kind != "Widget" || obj.APIVersion != testGroup+"/"+testVersion {
					t.Errorf("event %s %s/%s %s@%s, want ADDED Widget %s@%s", ev.Type, obj.APIVersion, obj.Kind, obj.Name, obj.ResourceVersion, name, created.GetResourceVersion())
				}
			}
		})
	}
}

// TestHealthEndpoints checks the probes load balancers and kubectl use.
func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	hc, err := rest.HTTPClientFor(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 30*time.Second)
	for _, path := range []string{"/healthz", "/livez", "/readyz", "/version", "/metrics"} {
		req, err := http.NewRequestWithContext(ctx, "GET", s.baseURL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: code %d body %q, want 200 with a body", path, resp.StatusCode, truncate(body))
		}
		if strings.HasSuffix(path, "z") && strings.TrimSpace(string(body)) != "ok" {
			t.Errorf("GET %s: body %q, want ok", path, truncate(body))
		}
	}
}
