package apiserver_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

func TestHealth(t *testing.T) {
	var notReady atomic.Bool
	e := newEnv(t, envOptions{ready: func(context.Context) error {
		if notReady.Load() {
			return errors.New("storage is catching up")
		}
		return nil
	}})
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		if r := e.expect(t, http.StatusOK, "GET", p, ""); string(r.body) != "ok" {
			t.Fatalf("%s answered %q", p, r.body)
		}
	}
	if r := e.expect(t, http.StatusOK, "GET", "/readyz?verbose", ""); !strings.Contains(string(r.body), "[+]ready ok") {
		t.Fatalf("verbose readyz answered %q", r.body)
	}
	notReady.Store(true)
	r := e.expect(t, http.StatusInternalServerError, "GET", "/readyz?verbose", "")
	if !strings.Contains(string(r.body), "storage is catching up") {
		t.Fatalf("failing readyz answered %q", r.body)
	}
	e.expect(t, http.StatusOK, "GET", "/livez", "")
	e.expectStatus(t, http.StatusMethodNotAllowed, "MethodNotAllowed", "POST", "/healthz", "")
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.expect(t, http.StatusOK, "GET", "/api/v1/namespaces", "")
	e.expect(t, http.StatusNotFound, "GET", "/api/v1/namespaces/nope", "")
	e.expect(t, http.StatusMethodNotAllowed, "PROPFIND", "/api/v1/namespaces", "")
	r := e.expect(t, http.StatusOK, "GET", "/metrics", "")
	for _, want := range []string{
		`apiserver_request_total{code="200",resource="namespaces",verb="list"} 1`,
		`apiserver_request_total{code="404",resource="namespaces",verb="get"} 1`,
		`apiserver_request_duration_seconds_count{resource="namespaces",verb="list"} 1`,
		// Unknown methods share one label value.
		`apiserver_request_total{code="405",resource="namespaces",verb="other"} 1`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestDiscoveryRoutes(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	v := e.expect(t, http.StatusOK, "GET", "/version", "").json(t)
	if v["gitVersion"] == "" {
		t.Fatalf("version %v", v)
	}
	if api := e.expect(t, http.StatusOK, "GET", "/api", "").json(t); api["kind"] != "APIVersions" {
		t.Fatalf("/api %v", api)
	}
	if l := e.expect(t, http.StatusOK, "GET", "/api/v1", "").json(t); l["kind"] != "APIResourceList" || l["groupVersion"] != "v1" {
		t.Fatalf("/api/v1 %v", l)
	}
	if g := e.expect(t, http.StatusOK, "GET", "/apis/example.com", "").json(t); g["kind"] != "APIGroup" || g["name"] != "example.com" {
		t.Fatalf("/apis/example.com %v", g)
	}
	if l := e.expect(t, http.StatusOK, "GET", "/apis/example.com/v1", "").json(t); l["kind"] != "APIResourceList" {
		t.Fatalf("/apis/example.com/v1 %v", l)
	}
	e.expectStatus(t, http.StatusNotFound, "NotFound", "GET", "/apis/nothing.example.com", "")
	e.expectStatus(t, http.StatusNotFound, "NotFound", "GET", "/apis/example.com/v7", "")
	e.expectStatus(t, http.StatusNotFound, "NotFound", "GET", "/openapi/v2", "")
	e.expectStatus(t, http.StatusMethodNotAllowed, "MethodNotAllowed", "POST", "/apis", "{}")

	t.Run("Aggregated", func(t *testing.T) {
		r := e.expect(t, http.StatusOK, "GET", "/apis", "", "Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
		if ct := r.header.Get("Content-Type"); ct != "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" {
			t.Fatalf("Content-Type %q", ct)
		}
		if m := r.json(t); m["kind"] != "APIGroupDiscoveryList" {
			t.Fatalf("aggregated %v", m)
		}
		plain := e.expect(t, http.StatusOK, "GET", "/apis", "", "Accept", "application/json")
		if m := plain.json(t); m["kind"] != "APIGroupList" {
			t.Fatalf("plain %v", m)
		}
	})
	t.Run("OpenAPIv3", func(t *testing.T) {
		index := e.expect(t, http.StatusOK, "GET", "/openapi/v3", "").json(t)
		paths, _ := index["paths"].(map[string]any)
		entry, _ := paths["apis/example.com/v1"].(map[string]any)
		u, _ := entry["serverRelativeURL"].(string)
		if u == "" {
			t.Fatalf("index %v", index)
		}
		r := e.expect(t, http.StatusOK, "GET", u, "")
		if !strings.Contains(r.header.Get("Cache-Control"), "immutable") {
			t.Fatalf("Cache-Control %q for a hashed URL", r.header.Get("Cache-Control"))
		}
		stale := e.do(t, "GET", "/openapi/v3/apis/example.com/v1?hash=stale", "")
		if stale.code != http.StatusOK {
			t.Fatalf("stale hash answered %d after redirect", stale.code)
		}
		e.expectStatus(t, http.StatusNotFound, "NotFound", "GET", "/openapi/v3/apis/nothing/v1", "")
	})
	t.Run("ClientGo", func(t *testing.T) {
		dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: e.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		list, err := dc.ServerResourcesForGroupVersion("example.com/v1")
		if err != nil {
			t.Fatal(err)
		}
		if len(list.APIResources) == 0 || list.APIResources[0].Kind != "Widget" {
			t.Fatalf("resources %+v", list.APIResources)
		}
		_, lists, err := dc.ServerGroupsAndResources()
		if err != nil {
			t.Fatal(err)
		}
		if !hasGroupVersion(lists, "example.com/v1") {
			t.Fatalf("aggregated discovery lacks example.com/v1: %v", lists)
		}
	})
}

func hasGroupVersion(lists []*metav1.APIResourceList, gv string) bool {
	for _, l := range lists {
		if l.GroupVersion == gv {
			return true
		}
	}
	return false
}
