package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRequest sends arbitrary requests to the handler: whatever the
// method, path, content type and body, the answer is never a 5xx and
// every failure is a Status.
func FuzzRequest(f *testing.F) {
	e := newEnv(f)
	e.withWidgets(f)
	e.expect(f, http.StatusCreated, "POST", widgetsPath, widget("seed", 1))
	h := e.srv.Config.Handler
	f.Add("GET", widgetsPath, "", "")
	f.Add("GET", widgetsPath+"?labelSelector=a%20in%20(b)&limit=1", "", "")
	f.Add("POST", widgetsPath, "application/json", widget("f1", 2))
	f.Add("POST", widgetsPath+"?fieldValidation=Strict", "application/yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: y\n")
	f.Add("PUT", widgetsPath+"/seed", "application/json", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"seed","resourceVersion":"1"}}`)
	f.Add("PATCH", widgetsPath+"/seed", "application/json-patch+json", `[{"op":"add","path":"/spec/x","value":1}]`)
	f.Add("PATCH", widgetsPath+"/seed/status", "application/merge-patch+json", `{"status":{"ready":true}}`)
	f.Add("PATCH", "/api/v1/namespaces/default", "application/strategic-merge-patch+json", `{"metadata":{"$patch":"replace"}}`)
	f.Add("DELETE", widgetsPath+"/seed", "application/json", `{"preconditions":{"resourceVersion":"x"}}`)
	f.Add("DELETE", widgetsPath+"?dryRun=All", "application/vnd.kubernetes.protobuf", "k8s\x00garbage")
	f.Add("POST", "/api/v1/namespaces", "application/vnd.kubernetes.protobuf", "k8s\x00\n\x0c\n\x02v1\x12\tNamespace")
	f.Add("GET", widgetsPath+"?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", "", "")
	f.Add("GET", "/apis/example.com/v1/watch/namespaces/default/widgets/seed", "", "")
	f.Add("GET", "/openapi/v3/apis/example.com/v1?hash=x", "", "")
	f.Add("GET", "/apis", "", "")
	f.Add("GET", "/readyz?verbose", "", "")
	f.Fuzz(func(t *testing.T, method, path, contentType, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://setpoint"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		// 503 is what a request cut short by its context gets.
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s (%s) %q: %d %s", method, path, contentType, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			var st struct{ Kind string }
			if err := json.NewDecoder(bytes.NewReader(rec.Body.Bytes())).Decode(&st); err != nil || st.Kind != "Status" {
				t.Fatalf("%s %s: %d answered %s", method, path, rec.Code, rec.Body)
			}
		}
	})
}
