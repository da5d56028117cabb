package rbac_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/rbac"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/requestinfo"
)

// serveAs serves h behind requestinfo.With and rbac.With(az), every
// request made by u (nil: no user), over real HTTP.
func serveAs(t *testing.T, u user.Info, az authorizer.Authorizer, h http.Handler) *httptest.Server {
	t.Helper()
	withUser := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u != nil {
				r = r.WithContext(request.WithUser(r.Context(), u))
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(requestinfo.With(withUser(rbac.With(h, az))))
	t.Cleanup(srv.Close)
	return srv
}

// ok answers 200 "reached".
var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "reached") })

// call sends method path to srv and returns the code and, for a
// non-2xx answer, the Status.
func call(t *testing.T, srv *httptest.Server, method, path string) (int, metav1.Status) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var st metav1.Status
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("%s %s: %d body %q is not a Status: %v", method, path, resp.StatusCode, body, err)
		}
	} else if string(body) != "reached" {
		t.Fatalf("%s %s: %d without reaching the handler: %q", method, path, resp.StatusCode, body)
	}
	return resp.StatusCode, st
}

func TestFilterForbiddenMessages(t *testing.T) {
	e := start(t)
	namespace(t, e.Registry, "a")
	write(t, e.Registry, "RoleBinding", "a", "alice-view", grant("ClusterRole", "view", "alice"))
	srv := serveAs(t, alice, e.az, ok)
	for _, tc := range []struct {
		method, path string
		code         int
		message      string
	}{
		{"GET", "/api/v1/namespaces/a/configmaps", 200, ""},
		{"GET", "/api/v1/namespaces/a/configmaps?watch=true", 200, ""},
		{"GET", "/api/v1/namespaces/a/configmaps/x", 200, ""},
		{"GET", "/api", 200, ""},
		{"GET", "/api/v1/namespaces/b/configmaps", 403, `configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "b"`},
		{"GET", "/api/v1/namespaces/b/configmaps?watch=1", 403, `configmaps is forbidden: User "alice" cannot watch resource "configmaps" in API group "" in the namespace "b"`},
		{"GET", "/api/v1/configmaps", 403, `configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" at the cluster scope`},
		{"DELETE", "/api/v1/namespaces/a/configmaps/x", 403, `configmaps "x" is forbidden: User "alice" cannot delete resource "configmaps" in API group "" in the namespace "a"`},
		{"PUT", "/apis/example.com/v1/namespaces/a/widgets/w/status", 403, `widgets.example.com "w" is forbidden: User "alice" cannot update resource "widgets/status" in API group "example.com" in the namespace "a"`},
		{"GET", "/metrics", 403, `forbidden: User "alice" cannot get path "/metrics"`},
		{"GET", "/api/v1/namespaces/a/secrets/%3Cb%3E", 403, `secrets "<b>" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the namespace "a"`},
	} {
		t.Run(tc.method+strings.ReplaceAll(tc.path, "/", "_"), func(t *testing.T) {
			code, st := call(t, srv, tc.method, tc.path)
			if code != tc.code {
				t.Fatalf("code %d (%s), want %d", code, st.Message, tc.code)
			}
			if tc.code == 403 && (st.Message != tc.message || st.Reason != metav1.StatusReasonForbidden || st.Code != 403) {
				t.Errorf("Status %+v,\nwant message %s", st, tc.message)
			}
		})
	}
}

func TestFilterWithoutUserDenies(t *testing.T) {
	e := start(t)
	code, st := call(t, serveAs(t, nil, e.az, ok), "GET", "/api")
	if code != 403 || st.Message != `forbidden: User "" cannot get path "/api"` {
		t.Errorf("%d %q, want 403", code, st.Message)
	}
}

// TestFilterAuthorizerError checks that an authorizer's error with a
// denial is answered as that error, not as a 403 nor by the handler.
func TestFilterAuthorizerError(t *testing.T) {
	failing := authorizer.AuthorizerFunc(func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
		return authorizer.DecisionNoOpinion, "", errors.New("store down")
	})
	code, st := call(t, serveAs(t, alice, failing, ok), "GET", "/api")
	if code != 500 || st.Reason != metav1.StatusReasonInternalError {
		t.Errorf("%d %+v, want a 500 Status", code, st)
	}
}

// review creates a review of resource (kind) with spec as u and returns
// its status.
func review(t *testing.T, reg *registry.Registry, u user.Info, group, resource, kind string, spec map[string]any) (map[string]any, error) {
	t.Helper()
	res, ok := reg.Lookup(group, "v1", resource)
	if !ok {
		t.Fatalf("%s not served", resource)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": group + "/v1", "kind": kind, "spec": spec}}
	ctx := request.WithUser(t.Context(), u)
	got, err := reg.Create(ctx, res, "", obj, registry.WriteOptions{})
	if err != nil {
		return nil, err
	}
	status, _ := got.Object.Object["status"].(map[string]any)
	return status, nil
}

func TestReviews(t *testing.T) {
	e := start(t)
	namespace(t, e.Registry, "a")
	write(t, e.Registry, "RoleBinding", "a", "alice-view", grant("ClusterRole", "view", "alice"))
	ssar := func(u user.Info, attrs map[string]any) map[string]any {
		t.Helper()
		st, err := review(t, e.Registry, u, "authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview", map[string]any{"resourceAttributes": attrs})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := ssar(alice, map[string]any{"verb": "list", "resource": "configmaps", "namespace": "a"}); st["allowed"] != true || !strings.Contains(st["reason"].(string), `RoleBinding "a/alice-view"`) {
		t.Errorf("alice list configmaps in a: %v", st)
	}
	if st := ssar(alice, map[string]any{"verb": "list", "resource": "configmaps", "namespace": "b"}); st["allowed"] != false {
		t.Errorf("alice list configmaps in b: %v", st)
	}
	if st := ssar(bob, map[string]any{"verb": "list", "resource": "configmaps", "namespace": "a"}); st["allowed"] != false {
		t.Errorf("bob list configmaps in a: %v", st)
	}
	_, err := review(t, e.Registry, alice, "authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview", map[string]any{})
	if !strings.Contains(errString(err), "exactly one of nonResourceAttributes or resourceAttributes must be specified") {
		t.Errorf("empty spec: %v", err)
	}

	rules, err := review(t, e.Registry, alice, "authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview", map[string]any{"namespace": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(toJSON(t, rules["resourceRules"]), `"configmaps"`) || !strings.Contains(toJSON(t, rules["nonResourceRules"]), `"/apis/*"`) {
		t.Errorf("alice's rules in a: %s", toJSON(t, rules))
	}

	who, err := review(t, e.Registry, alice, "authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := toJSON(t, who); got != `{"userInfo":{"groups":["system:authenticated"],"username":"alice"}}` {
		t.Errorf("whoami: %s", got)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
