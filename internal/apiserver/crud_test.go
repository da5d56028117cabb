package apiserver_test

import (
	"net/http"
	"testing"
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
	list := e.expect(t, http.StatusOK, "GET", "/api/v1/namespaces", "").json(t)
	if list["kind"] != "NamespaceList" || len(list["items"].([]any)) != 4 {
		t.Fatalf("list answered %v", list)
	}
	e.expectStatus(t, http.StatusConflict, "AlreadyExists", "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}}`)
	e.expectStatus(t, http.StatusNotFound, "NotFound", "GET", "/api/v1/namespaces/nope", "")
	e.expectStatus(t, http.StatusForbidden, "Forbidden", "DELETE", "/api/v1/namespaces/default", "")
	del := e.expect(t, http.StatusOK, "DELETE", "/api/v1/namespaces/team-a", "").json(t)
	if del["kind"] != "Namespace" {
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
	list := e.expect(t, http.StatusOK, "GET", "/apis/example.com/v1/widgets", "").json(t)
	if list["kind"] != "WidgetList" || len(list["items"].([]any)) != 1 {
		t.Fatalf("list across namespaces answered %v", list)
	}
	deleted := e.expect(t, http.StatusOK, "DELETE", widgetsPath+"/w1", "").json(t)
	if deleted["kind"] != "Widget" {
		t.Fatalf("delete answered %v", deleted)
	}
	e.expectStatus(t, http.StatusNotFound, "NotFound", "GET", widgetsPath+"/w1", "")
}
