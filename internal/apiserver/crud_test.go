package apiserver_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestNamespaceLifecycle(t *testing.T) {
	e := newEnv(t)
	created := e.expect(t, http.StatusCreated, "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}}`).json(t)
	if created["kind"] != "Namespace" {
		t.Fatalf("create answered %v", created)
	}
	got := e.expect(t, http.StatusOK, "GET", "/api/v1/namespaces/team-a", "").json(t)
	if md := got["metadata"].(map[string]any); md["name"] != "team-a" || md["uid"] == "" {
		t.Fatalf("get answered %v", got)
	}
	status := e.expect(t, http.StatusOK, "GET", "/api/v1/namespaces/team-a/status", "").json(t)
	if status["status"].(map[string]any)["phase"] != "Active" {
		t.Fatalf("get status answered %v", status)
	}
	list := e.expect(t, http.StatusOK, "GET", "/api/v1/namespaces", "").json(t)
	if list["kind"] != "NamespaceList" || len(list["items"].([]any)) != 4 {
		t.Fatalf("list answered %v", list)
	}
	e.expectStatus(t, http.StatusConflict, "AlreadyExists", "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}}`)
	e.expectStatus(t, http.StatusNotFound, "NotFound", "GET", "/api/v1/namespaces/nope", "")
	e.expectStatus(t, http.StatusForbidden, "Forbidden", "DELETE", "/api/v1/namespaces/default", "")
	e.expectStatus(t, http.StatusMethodNotAllowed, "MethodNotAllowed", "DELETE", "/api/v1/namespaces", "")
	del := e.expect(t, http.StatusOK, "DELETE", "/api/v1/namespaces/team-a", "").json(t)
	if del["kind"] != "Namespace" || del["metadata"].(map[string]any)["deletionTimestamp"] == nil {
		t.Fatalf("delete answered %v", del)
	}
}

func TestCustomResourceCRUD(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	created := e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w1", 3)).json(t)
	md := created["metadata"].(map[string]any)
	if md["namespace"] != "default" || md["generation"] != float64(1) {
		t.Fatalf("create answered %v", created)
	}
	got := e.expect(t, http.StatusOK, "GET", widgetsPath+"/w1", "").json(t)
	got["spec"].(map[string]any)["size"] = 4
	updated := e.expect(t, http.StatusOK, "PUT", widgetsPath+"/w1", mustJSON(t, got)).json(t)
	if updated["metadata"].(map[string]any)["generation"] != float64(2) {
		t.Fatalf("update answered %v", updated)
	}
	// The stale resourceVersion now conflicts.
	e.expectStatus(t, http.StatusConflict, "Conflict", "PUT", widgetsPath+"/w1", mustJSON(t, got))
	updated["status"] = map[string]any{"ready": true}
	withStatus := e.expect(t, http.StatusOK, "PUT", widgetsPath+"/w1/status", mustJSON(t, updated)).json(t)
	if withStatus["status"].(map[string]any)["ready"] != true || withStatus["metadata"].(map[string]any)["generation"] != float64(2) {
		t.Fatalf("status update answered %v", withStatus)
	}
	list := e.expect(t, http.StatusOK, "GET", "/apis/example.com/v1/widgets", "").json(t)
	if list["kind"] != "WidgetList" || list["apiVersion"] != "example.com/v1" || len(list["items"].([]any)) != 1 {
		t.Fatalf("list across namespaces answered %v", list)
	}
	deleted := e.expect(t, http.StatusOK, "DELETE", widgetsPath+"/w1", "").json(t)
	if deleted["kind"] != "Widget" {
		t.Fatalf("delete answered %v", deleted)
	}
	e.expectStatus(t, http.StatusNotFound, "NotFound", "GET", widgetsPath+"/w1", "")
}

func TestGenerateNameAndDryRun(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	body := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"generateName":"gen-"},"spec":{"size":1}}`
	created := e.expect(t, http.StatusCreated, "POST", widgetsPath+"?dryRun=All", body).json(t)
	name := created["metadata"].(map[string]any)["name"].(string)
	if !strings.HasPrefix(name, "gen-") {
		t.Fatalf("dry-run create answered name %q", name)
	}
	list := e.expect(t, http.StatusOK, "GET", widgetsPath, "").json(t)
	if n := len(list["items"].([]any)); n != 0 {
		t.Fatalf("dry-run create stored an object: %d items", n)
	}
	e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w1", 1))
	e.expect(t, http.StatusOK, "PATCH", widgetsPath+"/w1?dryRun=All", `{"spec":{"size":9}}`, "Content-Type", "application/merge-patch+json")
	e.expect(t, http.StatusOK, "DELETE", widgetsPath+"/w1?dryRun=All", "", "Content-Type", "text/plain")
	got := e.expect(t, http.StatusOK, "GET", widgetsPath+"/w1", "").json(t)
	if got["spec"].(map[string]any)["size"] != float64(1) {
		t.Fatalf("dry-run patch changed the object: %v", got)
	}
	e.expectStatus(t, http.StatusUnprocessableEntity, "Invalid", "POST", widgetsPath+"?dryRun=Some", widget("w2", 1))
}

func TestPatch(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w1", 1))
	for _, tc := range []struct {
		name, contentType, body string
		code                    int
		reason                  string
	}{
		{"MergePatch", "application/merge-patch+json", `{"spec":{"size":2}}`, http.StatusOK, ""},
		{"JSONPatch", "application/json-patch+json", `[{"op":"replace","path":"/spec/size","value":3}]`, http.StatusOK, ""},
		{"StrategicMergeOnCustomResource", "application/strategic-merge-patch+json", `{"spec":{"size":4}}`, http.StatusUnsupportedMediaType, "UnsupportedMediaType"},
		{"ApplyWithoutFieldManager", "application/apply-patch+yaml", "spec:\n  size: 4\n", http.StatusUnprocessableEntity, "Invalid"},
		{"PlainJSON", "application/json", `{"spec":{"size":4}}`, http.StatusUnsupportedMediaType, "UnsupportedMediaType"},
		{"MalformedJSONPatch", "application/json-patch+json", `[{"op":`, http.StatusBadRequest, "BadRequest"},
		{"InvalidValue", "application/merge-patch+json", `{"spec":{"size":1000}}`, http.StatusUnprocessableEntity, "Invalid"},
		{"FailedJSONPatchTest", "application/json-patch+json", `[{"op":"test","path":"/spec/size","value":99}]`, http.StatusUnprocessableEntity, "Invalid"},
		{"TooManyJSONPatchOperations", "application/json-patch+json", "[" + strings.Repeat(`{"op":"test","path":"/spec/size","value":3},`, 10000) + `{"op":"test","path":"/spec/size","value":3}]`, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.reason != "" {
				e.expectStatus(t, tc.code, tc.reason, "PATCH", widgetsPath+"/w1", tc.body, "Content-Type", tc.contentType)
				return
			}
			e.expect(t, tc.code, "PATCH", widgetsPath+"/w1", tc.body, "Content-Type", tc.contentType)
		})
	}
	// A failed test names no kind or object, as Kubernetes' answer does, so
	// kubectl prints "The request is invalid" and the message.
	st := e.expectStatus(t, http.StatusUnprocessableEntity, "Invalid", "PATCH", widgetsPath+"/w1", `[{"op":"test","path":"/spec/size","value":99}]`, "Content-Type", "application/json-patch+json")
	if d, _ := st["details"].(map[string]any); d["kind"] != nil || d["name"] != nil || !strings.Contains(st["message"].(string), "test") {
		t.Errorf("failed JSON patch test answered %v", st)
	}
	// Apply in CBOR is not served, as in Kubernetes without CBOR enabled.
	e.expectStatus(t, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "PATCH", widgetsPath+"/w1?fieldManager=test", "\xa0", "Content-Type", "application/apply-patch+cbor")
	got := e.expect(t, http.StatusOK, "GET", widgetsPath+"/w1", "").json(t)
	if got["spec"].(map[string]any)["size"] != float64(3) {
		t.Fatalf("patches left %v", got["spec"])
	}
	// kubectl label on a namespace sends a strategic merge patch.
	ns := e.expect(t, http.StatusOK, "PATCH", "/api/v1/namespaces/default", `{"metadata":{"labels":{"team":"a"}}}`, "Content-Type", "application/strategic-merge-patch+json").json(t)
	if ns["metadata"].(map[string]any)["labels"].(map[string]any)["team"] != "a" {
		t.Fatalf("strategic merge patch of a namespace answered %v", ns)
	}
}

func TestInvalidAnswersCauses(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	st := e.expectStatus(t, http.StatusUnprocessableEntity, "Invalid", "POST", widgetsPath, widget("w1", 1000))
	details, _ := st["details"].(map[string]any)
	causes, _ := details["causes"].([]any)
	if len(causes) == 0 || causes[0].(map[string]any)["field"] != "spec.size" {
		t.Fatalf("Invalid answered %v", st)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w1", 1))
	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
		code                     int
		reason                   string
	}{
		{"MalformedJSON", "POST", widgetsPath, `{"apiVersion":`, nil, 400, "BadRequest"},
		{"JSONArray", "POST", widgetsPath, `[1,2]`, nil, 400, "BadRequest"},
		{"EmptyBody", "POST", widgetsPath, "", nil, 400, "BadRequest"},
		{"MalformedYAML", "POST", widgetsPath, "a: [", []string{"Content-Type", "application/yaml"}, 400, "BadRequest"},
		{"WrongKind", "POST", widgetsPath, `{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"x"}}`, nil, 400, "BadRequest"},
		{"WrongVersion", "POST", widgetsPath, `{"apiVersion":"example.com/v2","kind":"Widget","metadata":{"name":"x"}}`, nil, 400, "BadRequest"},
		{"NamespaceMismatch", "POST", widgetsPath, `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"x","namespace":"other"}}`, nil, 400, "BadRequest"},
		{"NameMismatch", "PUT", widgetsPath + "/w1", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2","resourceVersion":"1"}}`, nil, 400, "BadRequest"},
		{"BadLabelSelector", "GET", widgetsPath + "?labelSelector=a%20in%20(", "", nil, 400, "BadRequest"},
		{"BadFieldSelector", "GET", widgetsPath + "?fieldSelector=metadata.name%3D%3D%3Dx", "", nil, 400, "BadRequest"},
		{"UnsupportedField", "GET", widgetsPath + "?fieldSelector=spec.size%3D1", "", nil, 400, "BadRequest"},
		{"BadLimit", "GET", widgetsPath + "?limit=ten", "", nil, 400, "BadRequest"},
		{"BadTimeout", "GET", widgetsPath + "?timeout=soon", "", nil, 400, "BadRequest"},
		{"BadPropagationPolicy", "DELETE", widgetsPath + "/w1?propagationPolicy=Sometimes", "", nil, 422, "Invalid"},
		{"BadDeleteDryRun", "DELETE", widgetsPath + "/w1?dryRun=Maybe", "", nil, 422, "Invalid"},
		{"ForceOnMergePatch", "PATCH", widgetsPath + "/w1?force=true", `{}`, []string{"Content-Type", "application/merge-patch+json"}, 422, "Invalid"},
		{"LongFieldManager", "POST", widgetsPath + "?fieldManager=" + strings.Repeat("m", 129), widget("w3", 1), nil, 422, "Invalid"},
		{"BadFieldValidation", "POST", widgetsPath + "?fieldValidation=Loose", widget("w3", 1), nil, 422, "Invalid"},
		{"UnknownResource", "GET", "/apis/example.com/v1/namespaces/default/gadgets", "", nil, 404, "NotFound"},
		{"UnknownGroupVersion", "GET", "/apis/example.com/v9/widgets", "", nil, 404, "NotFound"},
		{"UnknownLegacyVersion", "GET", "/api/v2/namespaces", "", nil, 404, "NotFound"},
		{"UnknownRoot", "GET", "/nothing/here", "", nil, 404, "NotFound"},
		{"UnknownSubresource", "GET", widgetsPath + "/w1/scale", "", nil, 404, "NotFound"},
		{"TooDeep", "GET", widgetsPath + "/w1/status/more", "", nil, 404, "NotFound"},
		{"ClusterScopedUnderNamespace", "GET", "/apis/apiextensions.k8s.io/v1/namespaces/default/customresourcedefinitions", "", nil, 404, "NotFound"},
		{"NamedWithoutNamespace", "GET", "/apis/example.com/v1/widgets/w1", "", nil, 404, "NotFound"},
		{"PostOnObject", "POST", widgetsPath + "/w1", widget("w1", 1), nil, 405, "MethodNotAllowed"},
		// Kubernetes' CRD handler: update needs a name (400); a namespaced
		// custom resource outside a namespace is only listed or watched.
		{"PutOnCollection", "PUT", widgetsPath, widget("w1", 1), nil, 400, "BadRequest"},
		{"CreateAcrossNamespaces", "POST", "/apis/example.com/v1/widgets", widget("w1", 1), nil, 404, "NotFound"},
		{"UnknownMethod", "BREW", widgetsPath, "", nil, 405, "MethodNotAllowed"},
		{"ProtobufOnly", "GET", widgetsPath, "", []string{"Accept", "application/vnd.kubernetes.protobuf"}, 406, "NotAcceptable"},
		{"XMLBody", "POST", widgetsPath, "<widget/>", []string{"Content-Type", "application/xml"}, 415, "UnsupportedMediaType"},
		{"StaleUpdate", "PUT", widgetsPath + "/w1", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1","resourceVersion":"1"}}`, nil, 409, "Conflict"},
		{"UpdateWithoutResourceVersion", "PUT", widgetsPath + "/w1", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"}}`, nil, 422, "Invalid"},
		{"DeletePreconditionUID", "DELETE", widgetsPath + "/w1", `{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"not-it"}}`, nil, 409, "Conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.expectStatus(t, tc.code, tc.reason, tc.method, tc.path, tc.body, tc.headers...)
		})
	}
}

func TestYAML(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	body := "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 5\n"
	r := e.expect(t, http.StatusCreated, "POST", widgetsPath, body, "Content-Type", "application/yaml", "Accept", "application/yaml")
	if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
		t.Fatalf("Content-Type %q", ct)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(r.body, &obj); err != nil {
		t.Fatalf("answer is not YAML: %v\n%s", err, r.body)
	}
	if obj["spec"].(map[string]any)["size"] != float64(5) {
		t.Fatalf("YAML answer %v", obj)
	}
	// Errors are Status objects in YAML too.
	r = e.expect(t, http.StatusNotFound, "GET", widgetsPath+"/nope", "", "Accept", "application/yaml")
	if err := yaml.Unmarshal(r.body, &obj); err != nil || obj["kind"] != "Status" {
		t.Fatalf("YAML error answer %s (%v)", r.body, err)
	}
}

func TestFieldValidation(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	unknown := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"NAME"},"spec":{"size":1,"shape":"round"}}`
	r := e.expect(t, http.StatusCreated, "POST", widgetsPath+"?fieldValidation=Warn", strings.Replace(unknown, "NAME", "w1", 1))
	if w := r.header.Values("Warning"); len(w) != 1 || w[0] != `299 - "unknown field \"spec.shape\""` {
		t.Fatalf("warnings %q", w)
	}
	duplicate := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2"},"spec":{"size":1,"size":2}}`
	r = e.expect(t, http.StatusCreated, "POST", widgetsPath, duplicate)
	if w := r.header.Values("Warning"); len(w) != 1 || !strings.Contains(w[0], `duplicate field`) {
		t.Fatalf("warnings for a duplicate field %q", w)
	}
	r = e.expect(t, http.StatusCreated, "POST", widgetsPath+"?fieldValidation=Ignore", strings.Replace(unknown, "NAME", "w3", 1))
	if w := r.header.Values("Warning"); len(w) != 0 {
		t.Fatalf("warnings under Ignore %q", w)
	}
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "POST", widgetsPath+"?fieldValidation=Strict", strings.Replace(unknown, "NAME", "w4", 1))
	yamlDup := "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w5\nspec:\n  size: 1\n  size: 2\n"
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "POST", widgetsPath+"?fieldValidation=Strict", yamlDup, "Content-Type", "application/yaml")
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, envOptions{maxBody: 1024})
	e.withWidgets(t)
	big := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"big"},"spec":{"color":"` + strings.Repeat("x", 2048) + `"}}`
	e.expectStatus(t, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "POST", widgetsPath, big)
	e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("small", 1))
	e.expectStatus(t, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "PATCH", widgetsPath+"/small", big, "Content-Type", "application/merge-patch+json")
	// Without a Content-Length the limit applies while reading.
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+widgetsPath, io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
		t.Fatalf("chunked oversized body: %d (Content-Length %d)", resp.StatusCode, req.ContentLength)
	}
}

func TestDeleteCollection(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	for _, n := range []string{"a", "b", "c"} {
		body := strings.Replace(widget(n, 1), `"name":"`+n+`"`, `"name":"`+n+`","labels":{"keep":"`+map[bool]string{true: "yes", false: "no"}[n == "c"]+`"}`, 1)
		e.expect(t, http.StatusCreated, "POST", widgetsPath, body)
	}
	deleted := e.expect(t, http.StatusOK, "DELETE", widgetsPath+"?labelSelector=keep%3Dno", "").json(t)
	if deleted["kind"] != "WidgetList" || len(deleted["items"].([]any)) != 2 {
		t.Fatalf("deletecollection answered %v", deleted)
	}
	left := e.expect(t, http.StatusOK, "GET", widgetsPath, "").json(t)
	if items := left["items"].([]any); len(items) != 1 || items[0].(map[string]any)["metadata"].(map[string]any)["name"] != "c" {
		t.Fatalf("left %v", left)
	}
}

func TestListPagination(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	for _, n := range []string{"a", "b", "c"} {
		e.expect(t, http.StatusCreated, "POST", widgetsPath, widget(n, 1))
	}
	page := e.expect(t, http.StatusOK, "GET", widgetsPath+"?limit=2", "").json(t)
	md := page["metadata"].(map[string]any)
	cont, _ := md["continue"].(string)
	if len(page["items"].([]any)) != 2 || cont == "" {
		t.Fatalf("first page %v", page)
	}
	rest := e.expect(t, http.StatusOK, "GET", widgetsPath+"?limit=2&continue="+cont, "").json(t)
	if len(rest["items"].([]any)) != 1 {
		t.Fatalf("second page %v", rest)
	}
	byName := e.expect(t, http.StatusOK, "GET", widgetsPath+"?fieldSelector=metadata.name%3Db", "").json(t)
	if items := byName["items"].([]any); len(items) != 1 {
		t.Fatalf("field selector answered %v", byName)
	}
}

func TestPretty(t *testing.T) {
	e := newEnv(t)
	compact := e.expect(t, http.StatusOK, "GET", "/api/v1/namespaces/default", "")
	if strings.Contains(string(compact.body), "\n  ") {
		t.Fatalf("indented by default: %s", compact.body)
	}
	for _, tc := range []struct {
		name, query string
		headers     []string
	}{
		{"Parameter", "?pretty=true", nil},
		{"Curl", "", []string{"User-Agent", "curl/8.5.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.expect(t, http.StatusOK, "GET", "/api/v1/namespaces/default"+tc.query, "", tc.headers...)
			if !strings.Contains(string(r.body), "\n  \"metadata\": {") {
				t.Fatalf("not indented: %s", r.body)
			}
		})
	}
	r := e.expect(t, http.StatusOK, "GET", "/api/v1/namespaces/default?pretty=false&timeout=30s", "", "User-Agent", "curl/8.5.0")
	if strings.Contains(string(r.body), "\n  ") {
		t.Fatalf("pretty=false indented: %s", r.body)
	}
}

// TestLargeListStreams lists more than the server buffers at once: the
// answer is sent in pieces and still decodes to every item.
func TestLargeListStreams(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	const n = 60
	color := strings.Repeat("c", 1000)
	for i := range n {
		body := strings.Replace(widget("w"+strconv.Itoa(i), i), `"red"`, `"`+color+`"`, 1)
		e.expect(t, http.StatusCreated, "POST", widgetsPath, body)
	}
	r := e.expect(t, http.StatusOK, "GET", widgetsPath, "")
	if r.header.Get("Content-Length") != "" {
		t.Fatalf("a %d-byte list was buffered whole", len(r.body))
	}
	list := r.json(t)
	if items := list["items"].([]any); len(items) != n || list["kind"] != "WidgetList" || rvOf(list) == "" {
		t.Fatalf("list of %d items, kind %v", len(items), list["kind"])
	}
	small := e.expect(t, http.StatusOK, "GET", widgetsPath+"?limit=1", "")
	if small.header.Get("Content-Length") == "" {
		t.Fatal("a small list was not sent with its length")
	}
}

func TestDeleteAnswers(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	body := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"held","finalizers":["example.com/hold"]}}`
	e.expect(t, http.StatusCreated, "POST", widgetsPath, body)
	pending := e.expect(t, http.StatusOK, "DELETE", widgetsPath+"/held", "").json(t)
	if metaOf(pending)["deletionTimestamp"] == nil {
		t.Fatalf("pending delete answered %v", pending)
	}
	e.expect(t, http.StatusAccepted, "DELETE", widgetsPath+"/held?orphanDependents=false", "")
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "DELETE", widgetsPath+"/held?gracePeriodSeconds=soon", "")
}
