package discovery_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	setpointdiscovery "github.com/setpoint/setpoint/internal/apiserver/discovery"
	"github.com/setpoint/setpoint/internal/registry"
)

// discoveryServer serves the discovery and OpenAPI documents of reg the
// way the apiserver package does (it fails requests for OpenAPI documents
// whose hash is not current, to check that clients follow the index); with aggregated false it ignores requests for
// the aggregated form, like an older server. It counts requests for
// per-group-version resource lists.
type discoveryServer struct {
	reg          *registry.Registry
	aggregated   bool
	perGVFetches atomic.Int64
}

func (s *discoveryServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var doc any
	ok := true
	aggregated := s.aggregated && setpointdiscovery.AcceptsAggregated(r.Header.Get("Accept"))
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/openapi/v3":
		doc = json.RawMessage(setpointdiscovery.OpenAPIIndex(s.reg))
	case strings.HasPrefix(r.URL.Path, "/openapi/v3/"):
		path := strings.TrimPrefix(r.URL.Path, "/openapi/v3/")
		var b []byte
		b, ok = setpointdiscovery.OpenAPI(s.reg, path)
		doc = json.RawMessage(b)
		if hash, _ := setpointdiscovery.OpenAPIHash(s.reg, path); ok && r.URL.Query().Get("hash") != hash {
			http.Error(w, "stale hash", http.StatusConflict)
			return
		}
	case r.URL.Path == "/version":
		doc = setpointdiscovery.Version()
	case r.URL.Path == "/api" && aggregated:
		doc = setpointdiscovery.Aggregated(s.reg, true)
	case r.URL.Path == "/api":
		doc = setpointdiscovery.Legacy()
	case r.URL.Path == "/apis" && aggregated:
		doc = setpointdiscovery.Aggregated(s.reg, false)
	case r.URL.Path == "/apis":
		doc = setpointdiscovery.Groups(s.reg)
	case len(parts) == 2 && parts[0] == "api":
		s.perGVFetches.Add(1)
		doc, ok = setpointdiscovery.Resources(s.reg, "", parts[1])
	case len(parts) == 2 && parts[0] == "apis":
		doc, ok = setpointdiscovery.Group(s.reg, parts[1])
	case len(parts) == 3 && parts[0] == "apis":
		s.perGVFetches.Add(1)
		doc, ok = setpointdiscovery.Resources(s.reg, parts[1], parts[2])
	default:
		ok = false
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if aggregated {
		w.Header().Set("Content-Type", setpointdiscovery.AggregatedContentType)
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	// A failed write shows up as a decoding error in the client.
	_ = json.NewEncoder(w).Encode(doc)
}

func TestClientGoDiscovery(t *testing.T) {
	for _, aggregated := range []bool{true, false} {
		name := "plain"
		if aggregated {
			name = "aggregated"
		}
		t.Run(name, func(t *testing.T) {
			reg := newPopulated(t)
			srv := &discoveryServer{reg: reg, aggregated: aggregated}
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)
			dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: ts.URL})
			if err != nil {
				t.Fatal(err)
			}
			checkGroupsAndResources(t, dc)
			if fetched := srv.perGVFetches.Load(); aggregated != (fetched == 0) {
				t.Errorf("aggregated=%v but %d per-group-version fetches", aggregated, fetched)
			}
			checkRESTMapper(t, dc, reg)
			v, err := dc.ServerVersion()
			if err != nil || v.GitVersion != setpointdiscovery.Version().GitVersion {
				t.Errorf("server version %v, %v", v, err)
			}
		})
	}
}

// checkGroupsAndResources checks what client-go's discovery client makes of
// the documents.
func checkGroupsAndResources(t *testing.T, dc *discovery.DiscoveryClient) {
	t.Helper()
	groups, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range groups {
		names = append(names, g.Name+"@"+g.PreferredVersion.Version)
	}
	want := []string{"@v1", "admissionregistration.k8s.io@v1", "apiextensions.k8s.io@v1", "coordination.k8s.io@v1", "events.k8s.io@v1", "rbac.authorization.k8s.io@v1", "example.com@v1", "tools.example.org@v1"}
	if !slices.Equal(names, want) {
		t.Fatalf("groups %v, want %v", names, want)
	}
	found := map[string]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			found[l.GroupVersion+" "+r.Name] = true
			if l.GroupVersion == "example.com/v1beta1" && r.Name == "widgets" {
				if !r.Namespaced || r.Kind != "Widget" || r.SingularName != "widget" ||
					!slices.Equal(r.ShortNames, []string{"wd", "wds"}) || !slices.Equal(r.Categories, []string{"all", "toys"}) ||
					!slices.Contains(r.Verbs, "watch") {
					t.Errorf("widgets %+v", r)
				}
			}
			if l.GroupVersion == "tools.example.org/v1" && r.Name == "gizmos" && (r.Namespaced || r.Kind != "Gizmo") {
				t.Errorf("gizmos %+v", r)
			}
		}
	}
	for _, k := range []string{
		"v1 namespaces", "v1 namespaces/status", "v1 namespaces/finalize",
		"apiextensions.k8s.io/v1 customresourcedefinitions", "apiextensions.k8s.io/v1 customresourcedefinitions/status",
		"example.com/v1 widgets", "example.com/v1 widgets/status", "example.com/v1beta1 widgets", "example.com/v1beta1 widgets/status",
		"tools.example.org/v1 gizmos",
	} {
		if !found[k] {
			t.Errorf("%s not discovered (found %v)", k, found)
		}
	}
	if found["tools.example.org/v1 gizmos/status"] {
		t.Error("gizmos/status discovered without the status subresource")
	}
}

// checkRESTMapper resolves kinds, resources and short names the way kubectl
// and controller-runtime do, including a CRD registered after the first
// discovery.
func checkRESTMapper(t *testing.T, dc *discovery.DiscoveryClient, reg *registry.Registry) {
	t.Helper()
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	m, err := mapper.RESTMapping(schema.GroupKind{Group: "example.com", Kind: "Widget"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Resource != (schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}) || m.Scope.Name() != meta.RESTScopeNameNamespace {
		t.Errorf("widget mapping %+v", m)
	}
	m, err = mapper.RESTMapping(schema.GroupKind{Group: "tools.example.org", Kind: "Gizmo"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Resource.Resource != "gizmos" || m.Scope.Name() != meta.RESTScopeNameRoot {
		t.Errorf("gizmo mapping %+v", m)
	}
	m, err = mapper.RESTMapping(schema.GroupKind{Kind: "Namespace"})
	if err != nil || m.Resource.Resource != "namespaces" || m.Scope.Name() != meta.RESTScopeNameRoot {
		t.Errorf("namespace mapping %+v, %v", m, err)
	}
	expander := restmapper.NewShortcutExpander(mapper, cached, nil)
	gvr, err := expander.ResourceFor(schema.GroupVersionResource{Resource: "wd"})
	if err != nil || gvr != (schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}) {
		t.Errorf("short name wd: %v, %v", gvr, err)
	}
	categories := restmapper.NewDiscoveryCategoryExpander(cached)
	if grs, ok := categories.Expand("toys"); !ok || !slices.Contains(grs, schema.GroupResource{Group: "example.com", Resource: "widgets"}) {
		t.Errorf("category toys: %v %v", grs, ok)
	}

	gk := schema.GroupKind{Group: "late.example.com", Kind: "Sprocket"}
	if _, err := mapper.RESTMapping(gk); !meta.IsNoMatchError(err) {
		t.Fatalf("sprocket before its CRD: %v", err)
	}
	createCRD(t, reg, map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "sprockets.late.example.com"},
		"spec": map[string]any{
			"group": "late.example.com", "scope": "Namespaced",
			"names":    map[string]any{"plural": "sprockets", "kind": "Sprocket"},
			"versions": []any{map[string]any{"name": "v1alpha1", "served": true, "storage": true, "schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	})
	mapper.Reset()
	m, err = mapper.RESTMapping(gk)
	if err != nil || m.Resource.Resource != "sprockets" || m.Resource.Version != "v1alpha1" {
		t.Errorf("sprocket after its CRD: %+v, %v", m, err)
	}
}
