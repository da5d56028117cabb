package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/internal/pki"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// userConfig returns a client configuration for s as user name in
// groups, with a client certificate the server's CA signs; with name ""
// it carries no credential at all (anonymous).
func userConfig(t *testing.T, s *setpointtest.Server, name string, groups ...string) *rest.Config {
	t.Helper()
	return userConfigFor(t, s.RESTConfig(), filepath.Join(s.DataDir, "pki"), name, groups...)
}

// userConfigFor is userConfig for the server that admin reaches, whose
// CA is in pkiDir.
func userConfigFor(t *testing.T, admin *rest.Config, pkiDir, name string, groups ...string) *rest.Config {
	t.Helper()
	cfg := rest.CopyConfig(admin)
	cfg.CertData, cfg.KeyData, cfg.CertFile, cfg.KeyFile, cfg.BearerToken = nil, nil, "", "", ""
	if name == "" {
		return cfg
	}
	b, err := pki.Ensure(pki.Options{Dir: pkiDir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pair, err := b.CA.IssueClient(name, groups, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CertData, cfg.KeyData = pair.CertPEM, pair.KeyPEM
	return cfg
}

// httpClient returns a raw HTTP client for cfg.
func httpClient(t *testing.T, cfg *rest.Config) *http.Client {
	t.Helper()
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createAs creates obj (apiVersion, kind, metadata.name set) through the
// dynamic client of cfg.
func createAs(t *testing.T, cfg *rest.Config, gvr schema.GroupVersionResource, ns string, obj map[string]any) {
	t.Helper()
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ri dynamic.ResourceInterface = dc.Resource(gvr)
	if ns != "" {
		ri = dc.Resource(gvr).Namespace(ns)
	}
	if _, err := ri.Create(t.Context(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s %s/%v: %v", gvr.Resource, ns, obj["metadata"], err)
	}
}

// rbacObject is an RBAC object of kind named name with fields.
func rbacObject(kind, name string, fields map[string]any) map[string]any {
	m := map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": map[string]any{"name": name}}
	for k, v := range fields {
		m[k] = v
	}
	return m
}

// bindTo is the fields of a binding of ClusterRole role to user.
func bindTo(role, user string) map[string]any {
	return map[string]any{
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}},
	}
}

var (
	namespacesGVR          = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	crdsGVR                = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	roleBindingsGVR        = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
	clusterRoleBindingsGVR = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
	configMapsGVR          = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// Names in the route table's fixtures.
const (
	rtNamespace = "rt"
	rtGroup     = "rt.example.com"
)

// rtCRD is a CRD of group rt.example.com named plural, namespaced, with
// the status and scale subresources.
func rtCRD(plural string) map[string]any {
	kind := strings.ToUpper(plural[:1]) + plural[1:len(plural)-1]
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": plural + "." + rtGroup},
		"spec": map[string]any{
			"group": rtGroup, "scope": "Namespaced",
			"names": map[string]any{"plural": plural, "kind": kind},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
				"subresources": map[string]any{
					"status": map[string]any{},
					"scale":  map[string]any{"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
				},
			}},
		},
	}
}

// newObject is a body that creates an object named name of resource r
// (of group-version gv) in namespace ns.
func newObject(gv schema.GroupVersion, r metav1.APIResource, ns, name string) map[string]any {
	obj := map[string]any{"apiVersion": gv.String(), "kind": r.Kind, "metadata": map[string]any{"name": name}}
	ref := map[string]any{"namespace": ns, "kind": "ConfigMap", "name": "x"}
	switch gv.Group + "/" + r.Name {
	case "/events":
		obj["involvedObject"] = ref
	case "events.k8s.io/events":
		obj["regarding"] = ref
		obj["eventTime"] = time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
		obj["reportingController"], obj["reportingInstance"] = "rt.example.com/test", "i"
		obj["action"], obj["reason"], obj["type"] = "Test", "Test", "Normal"
	case "apiextensions.k8s.io/customresourcedefinitions":
		return rtCRD(name)
	case "rbac.authorization.k8s.io/rolebindings", "rbac.authorization.k8s.io/clusterrolebindings":
		obj["roleRef"] = map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
	case rtGroup + "/widgets":
		obj["spec"] = map[string]any{"replicas": int64(1)}
	}
	return obj
}

// fixtureNames are the names of the objects a resource's routes use:
// one read and changed, one deleted, one created.
func fixtureNames(gv schema.GroupVersion, resource string) (existing, doomed, created string) {
	switch {
	case gv.Group == "apiextensions.k8s.io":
		// CRD names are <plural>.<group>; rtCRD makes them from a plural.
		return "widgets", "gadgets", "gizmos"
	case gv.Group == "" && resource == "namespaces":
		return "rt-existing", "rt-doomed", "rt-created"
	}
	// Core and events.k8s.io Events share their storage: names differ
	// by group.
	suffix := "-" + gv.Group
	if gv.Group == "" {
		suffix = "-core"
	}
	return "existing" + suffix, "doomed" + suffix, "created" + suffix
}

// objectName is the stored name of fixture name of resource.
func objectName(gv schema.GroupVersion, name string) string {
	if gv.Group == "apiextensions.k8s.io" {
		return name + "." + rtGroup
	}
	return name
}

// callerKind says who makes a call in the route table.
type callerKind int

const (
	anonymous  callerKind = iota // no credential: 401 but on health checks
	unbound                      // authenticated, no binding: 403 but on discovery, reviews, health
	authorized                   // bound to cluster-admin through a ClusterRoleBinding
)

func (c callerKind) String() string {
	return [...]string{"anonymous", "unbound", "authorized"}[c]
}

// routeClass groups routes by who may call them.
type routeClass int

const (
	protected      routeClass = iota // RBAC decides
	public                           // health: everyone, credentials or not
	discoveryRoute                   // every authenticated user (system:discovery)
	review                           // every authenticated user (system:basic-user)
)

// route is one call of the route table.
type route struct {
	name         string
	method, path string
	contentType  string
	// body returns the request body, read just before the call (an
	// update sends the object as it is then); nil sends none.
	body  func() []byte
	class routeClass
	// want is the code the authorized caller gets.
	want int
}

// expected returns the code caller c gets from r.
func (r route) expected(c callerKind) int {
	switch {
	case r.class == public:
		return r.want
	case c == anonymous:
		return http.StatusUnauthorized
	case c == unbound && r.class == protected:
		return http.StatusForbidden
	}
	return r.want
}

// TestRouteTable calls every route the server serves, as found in its
// discovery (every resource with each of its verbs and subresources, the
// reviews) plus discovery itself, OpenAPI, /version, /metrics and the
// health checks, as an anonymous client, as an authenticated user without
// any binding, and as a user bound to cluster-admin, over real HTTPS with
// client certificates. Anonymous gets 401 everywhere but the health
// checks; the unbound user 403 everywhere but discovery, the reviews and
// the health checks; the authorized user what the route answers.
func TestRouteTable(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	admin := s.RESTConfig()
	createAs(t, admin, namespacesGVR, "", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": rtNamespace}})
	createAs(t, admin, crdsGVR, "", rtCRD("widgets"))
	createAs(t, admin, clusterRoleBindingsGVR, "", rbacObject("ClusterRoleBinding", "carol-admin", bindTo("cluster-admin", "carol")))
	callers := map[callerKind]*http.Client{
		anonymous:  httpClient(t, userConfig(t, s, "")),
		unbound:    httpClient(t, userConfig(t, s, "nobody")),
		authorized: httpClient(t, userConfig(t, s, "carol")),
	}
	adminHTTP := httpClient(t, admin)

	dc, err := discovery.NewDiscoveryClientForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	waitForResource(t, dc, rtGroup+"/v1", "widgets")
	_, all, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	var routes []route
	groupVersions := map[string]bool{}
	resources := 0
	for _, list := range all {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		groupVersions[list.GroupVersion] = true
		subs := map[string][]metav1.APIResource{}
		for _, r := range list.APIResources {
			if main, sub, ok := strings.Cut(r.Name, "/"); ok {
				subs[main] = append(subs[main], metav1.APIResource{Name: sub, Verbs: r.Verbs, Kind: r.Kind})
			}
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			resources++
			routes = append(routes, resourceRoutes(t, s.URL, adminHTTP, gv, r, subs[r.Name])...)
		}
	}
	if resources < 15 {
		t.Fatalf("discovery lists %d resources; the route table expects every built-in and the test CRD", resources)
	}
	routes = append(routes, nonResourceRoutes(groupVersions)...)

	for _, r := range routes {
		t.Run(r.name, func(t *testing.T) {
			for _, c := range []callerKind{anonymous, unbound, authorized} {
				code, msg := callRoute(t, callers[c], s.URL, r)
				if want := r.expected(c); code != want {
					t.Errorf("%s %s as %s: %d (%s), want %d", r.method, r.path, c, code, msg, want)
				}
			}
		})
	}
}

// waitForResource waits until discovery serves resource in groupVersion
// (a CRD just created).
func waitForResource(t *testing.T, dc discovery.DiscoveryInterface, groupVersion, resource string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := dc.ServerResourcesForGroupVersion(groupVersion)
		if err == nil {
			for _, r := range list.APIResources {
				if r.Name == resource {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s never served: %v", groupVersion, resource, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// resourceRoutes are the calls of every verb of resource r and its
// subresources. It creates, as the administrator, the objects they read,
// change and delete.
func resourceRoutes(t *testing.T, base string, adminHTTP *http.Client, gv schema.GroupVersion, r metav1.APIResource, subs []metav1.APIResource) []route {
	t.Helper()
	prefix := "/apis/" + gv.String()
	if gv.Group == "" {
		prefix = "/api/" + gv.Version
	}
	ns := ""
	collection := prefix + "/" + r.Name
	if r.Namespaced {
		ns = rtNamespace
		collection = prefix + "/namespaces/" + ns + "/" + r.Name
	}
	has := func(verbs []string, v string) bool {
		return strings.Contains(","+strings.Join(verbs, ",")+",", ","+v+",")
	}
	if strings.HasPrefix(r.Name, "selfsubject") {
		body := map[string]any{"apiVersion": gv.String(), "kind": r.Kind, "spec": map[string]any{}}
		switch r.Name {
		case "selfsubjectaccessreviews":
			body["spec"] = map[string]any{"resourceAttributes": map[string]any{"verb": "get", "resource": "configmaps", "namespace": rtNamespace}}
		case "selfsubjectrulesreviews":
			body["spec"] = map[string]any{"namespace": rtNamespace}
		}
		return []route{{name: r.Name + "_create", method: "POST", path: collection, class: review, want: http.StatusCreated, body: jsonBody(t, body)}}
	}
	existing, doomed, created := fixtureNames(gv, r.Name)
	if has(r.Verbs, "create") {
		fixtures := []string{existing, doomed}
		if gv.Group == "apiextensions.k8s.io" {
			fixtures = fixtures[1:] // widgets exists: its CRD is the test's
		}
		for _, n := range fixtures {
			mustSend(t, adminHTTP, base, "POST", collection, "application/json", jsonBody(t, newObject(gv, r, ns, n))(), http.StatusCreated)
		}
	}
	item := collection + "/" + objectName(gv, existing)
	// get of the object as it is now, for updates.
	current := func(path string) func() []byte {
		return func() []byte { return mustSend(t, adminHTTP, base, "GET", path, "", nil, http.StatusOK) }
	}
	var routes []route
	add := func(verb, method, path, contentType string, body func() []byte, want int) {
		routes = append(routes, route{name: strings.ReplaceAll(gv.Group+"_"+r.Name, ".", "_") + "_" + verb, method: method, path: path, contentType: contentType, body: body, want: want})
	}
	mergePatch := func() []byte { return []byte(`{"metadata":{"labels":{"rt":"patched"}}}`) }
	for _, v := range r.Verbs {
		switch v {
		case "get":
			add(v, "GET", item, "", nil, http.StatusOK)
		case "list":
			add(v, "GET", collection, "", nil, http.StatusOK)
		case "watch":
			add(v, "GET", collection+"?watch=true&timeoutSeconds=1", "", nil, http.StatusOK)
		case "create":
			add(v, "POST", collection, "application/json", jsonBody(t, newObject(gv, r, ns, created)), http.StatusCreated)
		case "update":
			add(v, "PUT", item, "application/json", current(item), http.StatusOK)
		case "patch":
			add(v, "PATCH", item, "application/merge-patch+json", mergePatch, http.StatusOK)
		case "delete":
			add(v, "DELETE", collection+"/"+objectName(gv, doomed), "", nil, http.StatusOK)
		case "deletecollection":
			add(v, "DELETE", collection+"?labelSelector="+url.QueryEscape("rt-none=x"), "", nil, http.StatusOK)
		default:
			t.Fatalf("%s %s: verb %q has no route in the table", gv, r.Name, v)
		}
	}
	for _, sub := range subs {
		path := item + "/" + sub.Name
		for _, v := range sub.Verbs {
			switch v {
			case "get":
				add(sub.Name+"_get", "GET", path, "", nil, http.StatusOK)
			case "update":
				source := item
				if sub.Name == "scale" {
					source = path
				}
				add(sub.Name+"_update", "PUT", path, "application/json", current(source), http.StatusOK)
			case "patch":
				add(sub.Name+"_patch", "PATCH", path, "application/merge-patch+json", func() []byte { return []byte(`{}`) }, http.StatusOK)
			default:
				t.Fatalf("%s %s/%s: verb %q has no route in the table", gv, r.Name, sub.Name, v)
			}
		}
	}
	return routes
}

// nonResourceRoutes are discovery, OpenAPI, /version, /metrics, the
// health checks and a path that names nothing.
func nonResourceRoutes(groupVersions map[string]bool) []route {
	get := func(name, path string, class routeClass, want int) route {
		return route{name: name, method: "GET", path: path, class: class, want: want}
	}
	routes := []route{
		get("version", "/version", discoveryRoute, http.StatusOK),
		get("api", "/api", discoveryRoute, http.StatusOK),
		get("apis", "/apis", discoveryRoute, http.StatusOK),
		get("openapi_v3", "/openapi/v3", discoveryRoute, http.StatusOK),
		get("metrics", "/metrics", protected, http.StatusOK),
		get("healthz", "/healthz", public, http.StatusOK),
		get("livez", "/livez", public, http.StatusOK),
		get("readyz", "/readyz", public, http.StatusOK),
		get("unknown_path", "/no/such/path", protected, http.StatusNotFound),
	}
	for gv := range groupVersions {
		name := strings.NewReplacer(".", "_", "/", "_").Replace(gv)
		if !strings.Contains(gv, "/") {
			routes = append(routes, get("discovery_"+name, "/api/"+gv, discoveryRoute, http.StatusOK),
				get("openapi_"+name, "/openapi/v3/api/"+gv, discoveryRoute, http.StatusOK))
			continue
		}
		group, _, _ := strings.Cut(gv, "/")
		routes = append(routes,
			get("discovery_group_"+name, "/apis/"+group, discoveryRoute, http.StatusOK),
			get("discovery_"+name, "/apis/"+gv, discoveryRoute, http.StatusOK),
			get("openapi_"+name, "/openapi/v3/apis/"+gv, discoveryRoute, http.StatusOK))
	}
	return routes
}

// jsonBody returns a body function that sends v as JSON.
func jsonBody(t *testing.T, v any) func() []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return func() []byte { return b }
}

// mustSend makes a call that must answer want and returns the body.
func mustSend(t *testing.T, c *http.Client, base, method, path, contentType string, body []byte, want int) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	return b
}

// callRoute makes the call of r with c and returns the code and, for a
// failure, the Status message. A watch is not read past its headers.
func callRoute(t *testing.T, c *http.Client, base string, r route) (int, string) {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var st metav1.Status
	if err := json.Unmarshal(b, &st); err != nil || st.Kind != "Status" {
		return resp.StatusCode, fmt.Sprintf("not a Status: %q", b)
	}
	return resp.StatusCode, st.Message
}
