package apiserver_test

import (
	"net/http"
	"testing"
)

// applyPath is widget w1, applied to.
const applyPath = widgetsPath + "/w1"

// applyYAML is the YAML Content-Type of server-side apply.
const applyYAML = "application/apply-patch+yaml"

// managedBy lists manager/operation[/subresource] of an object's
// managedFields.
func managedBy(t *testing.T, obj map[string]any) map[string]map[string]any {
	t.Helper()
	md, _ := obj["metadata"].(map[string]any)
	list, _ := md["managedFields"].([]any)
	out := map[string]map[string]any{}
	for _, e := range list {
		m := e.(map[string]any)
		key := m["manager"].(string) + "/" + m["operation"].(string)
		if sub, _ := m["subresource"].(string); sub != "" {
			key += "/" + sub
		}
		out[key] = m
	}
	return out
}

func TestServerSideApplyHTTP(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)

	// fieldManager is required, as Kubernetes requires it: 422 for
	// PatchOptions. force only goes with apply.
	m := e.expectStatus(t, http.StatusUnprocessableEntity, "Invalid", "PATCH", applyPath, "apiVersion: example.com/v1\nkind: Widget\n", "Content-Type", applyYAML)
	if m["message"] != `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch` {
		t.Fatalf("message %q", m["message"])
	}
	e.expectStatus(t, http.StatusUnprocessableEntity, "Invalid", "PATCH", applyPath+"?force=true", `{}`, "Content-Type", "application/merge-patch+json")

	// Create: 201 with the applier's managedFields entry.
	config := "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 1\n  color: red\n"
	created := e.expect(t, http.StatusCreated, "PATCH", applyPath+"?fieldManager=alice", config, "Content-Type", applyYAML).json(t)
	entry := managedBy(t, created)["alice/Apply"]
	if entry == nil || entry["apiVersion"] != "example.com/v1" || entry["fieldsType"] != "FieldsV1" || entry["time"] == nil {
		t.Fatalf("managedFields %v", created["metadata"])
	}
	e.expect(t, http.StatusOK, "PATCH", applyPath+"?fieldManager=alice", config, "Content-Type", applyYAML)

	// A second manager conflicts: 409 Conflict with one cause per field.
	conflict := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":2}}`
	m = e.expectStatus(t, http.StatusConflict, "Conflict", "PATCH", applyPath+"?fieldManager=bob", conflict, "Content-Type", applyYAML)
	if m["message"] != `Apply failed with 1 conflict: conflict with "alice": .spec.size` {
		t.Fatalf("message %q", m["message"])
	}
	causes := m["details"].(map[string]any)["causes"].([]any)
	if len(causes) != 1 || mustJSON(t, causes[0]) != `{"field":".spec.size","message":"conflict with \"alice\"","reason":"FieldManagerConflict"}` {
		t.Fatalf("causes %v", causes)
	}

	// dryRun changes nothing, force takes the field.
	e.expect(t, http.StatusOK, "PATCH", applyPath+"?fieldManager=bob&force=true&dryRun=All", conflict, "Content-Type", applyYAML)
	if got := e.expect(t, http.StatusOK, "GET", applyPath, "").json(t); got["spec"].(map[string]any)["size"] != float64(1) {
		t.Fatalf("dry run wrote %v", got["spec"])
	}
	forced := e.expect(t, http.StatusOK, "PATCH", applyPath+"?fieldManager=bob&force=true", conflict, "Content-Type", applyYAML).json(t)
	if forced["spec"].(map[string]any)["size"] != float64(2) || managedBy(t, forced)["bob/Apply"] == nil {
		t.Fatalf("after force %v", forced)
	}

	// The status subresource.
	status := e.expect(t, http.StatusOK, "PATCH", applyPath+"/status?fieldManager=ctrl", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"status":{"ready":true}}`, "Content-Type", applyYAML).json(t)
	if status["status"].(map[string]any)["ready"] != true || managedBy(t, status)["ctrl/Apply/status"] == nil {
		t.Fatalf("status apply %v", status)
	}

	// apiVersion must be the URL's.
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "PATCH", applyPath+"?fieldManager=bob", `{"apiVersion":"example.com/v2","kind":"Widget","metadata":{"name":"w1"}}`, "Content-Type", applyYAML)

	// Apply in CBOR is not served: 415 listing what is.
	m = e.expectStatus(t, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "PATCH", applyPath+"?fieldManager=bob", "\xa0", "Content-Type", "application/apply-patch+cbor")
	if m["message"] != "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml" {
		t.Fatalf("message %q", m["message"])
	}

	// Without fieldManager, writes are recorded under the User-Agent's
	// first segment.
	w2 := e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w2", 3), "User-Agent", "my-tool/1.2 (linux/amd64)").json(t)
	if managedBy(t, w2)["my-tool/Update"] == nil {
		t.Fatalf("managedFields %v", w2["metadata"])
	}
	w2["spec"].(map[string]any)["size"] = 4
	put := e.expect(t, http.StatusOK, "PUT", widgetsPath+"/w2?fieldManager=editor", mustJSON(t, w2)).json(t)
	if managedBy(t, put)["editor/Update"] == nil || managedBy(t, put)["my-tool/Update"] == nil {
		t.Fatalf("managedFields %v", put["metadata"])
	}
}

// TestOpenAPIAdvertisesApply checks that PATCH consumes apply-patch+yaml
// in OpenAPI v3, as Kubernetes documents it.
func TestOpenAPIAdvertisesApply(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	for doc, paths := range map[string][]string{
		"/openapi/v3/apis/example.com/v1": {"/apis/example.com/v1/namespaces/{namespace}/widgets/{name}", "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status"},
		"/openapi/v3/api/v1":              {"/api/v1/namespaces/{name}"},
	} {
		all := e.expect(t, http.StatusOK, "GET", doc, "").json(t)["paths"].(map[string]any)
		for _, p := range paths {
			op, ok := all[p].(map[string]any)
			if !ok {
				t.Fatalf("%s: no path %s", doc, p)
			}
			content := op["patch"].(map[string]any)["requestBody"].(map[string]any)["content"].(map[string]any)
			if _, ok := content["application/apply-patch+yaml"]; !ok {
				t.Fatalf("PATCH %s consumes %v", p, content)
			}
		}
	}
}
