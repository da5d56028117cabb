package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/apiserver"
	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/registry/registrytest"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

// waitTimeout bounds waiting for watch events.
const waitTimeout = 10 * time.Second

// env is an HTTP server over a started registry on a fresh SQLite store.
type env struct {
	srv   *httptest.Server
	store *sqlite.Store
	reg   *registry.Registry
	// metrics is the Prometheus registry the handler reports to.
	metrics *prometheus.Registry
}

// envOptions tweak newEnv.
type envOptions struct {
	maxBody int64
	ready   func(context.Context) error
}

func newEnv(t testing.TB, o ...envOptions) *env {
	t.Helper()
	var opts envOptions
	if len(o) > 0 {
		opts = o[0]
	}
	e := registrytest.StartWithFeed(t, feed.Options{ProgressInterval: 50 * time.Millisecond})
	store, reg := e.Store, e.Registry
	pr := prometheus.NewRegistry()
	h, err := apiserver.New(apiserver.Options{Registry: reg, MaxBodyBytes: opts.maxBody, Ready: opts.ready, Metrics: pr})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{srv: srv, store: store, reg: reg, metrics: pr}
}

// response is a finished HTTP exchange.
type response struct {
	code   int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return m
}

// do sends a request; headers come in pairs (name, value).
func (e *env) do(t testing.TB, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// expect sends a request and fails unless it answers code.
func (e *env) expect(t testing.TB, code int, method, path, body string, headers ...string) response {
	t.Helper()
	r := e.do(t, method, path, body, headers...)
	if r.code != code {
		t.Fatalf("%s %s: got %d, want %d: %s", method, path, r.code, code, r.body)
	}
	return r
}

// expectStatus checks a failure Status answer: code and reason.
func (e *env) expectStatus(t testing.TB, code int, reason, method, path, body string, headers ...string) map[string]any {
	t.Helper()
	r := e.expect(t, code, method, path, body, headers...)
	m := r.json(t)
	if m["kind"] != "Status" || m["apiVersion"] != "v1" || m["reason"] != reason || m["code"] != float64(code) {
		t.Fatalf("%s %s: got %s, want Status %d %s", method, path, r.body, code, reason)
	}
	return m
}

// mustJSON encodes v.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}

// widgetCRD is a namespaced CRD example.com/v1 Widget with the status
// subresource, a schema and printer columns.
const widgetCRD = `{
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "widgets.example.com"},
  "spec": {
    "group": "example.com", "scope": "Namespaced",
    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
    "versions": [{
      "name": "v1", "served": true, "storage": true,
      "subresources": {"status": {}},
      "additionalPrinterColumns": [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
      ],
      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"size": {"type": "integer", "maximum": 100}, "color": {"type": "string"}}},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
      }}}
    }]
  }
}`

// widgetsPath is the collection of widgets in namespace default.
const widgetsPath = "/apis/example.com/v1/namespaces/default/widgets"

// withWidgets creates the widget CRD through the registry, so that tests
// of small body limits can use it.
func (e *env) withWidgets(t testing.TB) {
	t.Helper()
	crds, ok := e.reg.Lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
	if !ok {
		t.Fatal("CRDs not served")
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(widgetCRD), &obj); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Create(context.Background(), crds, "", &unstructured.Unstructured{Object: obj}, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.reg.Lookup("example.com", "v1", "widgets"); !ok {
		t.Fatal("widgets not served after the CRD was created")
	}
}

// widget returns a Widget body.
func widget(name string, size int) string {
	return `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"` + name + `"},"spec":{"size":` + strconv.Itoa(size) + `,"color":"red"}}`
}

// timeout fires after waitTimeout; it bounds waits, it does not pace them.
func timeout() <-chan time.Time { return time.After(waitTimeout) }
