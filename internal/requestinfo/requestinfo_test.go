package requestinfo_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/requestinfo"
)

// TestWith checks what the filter puts in the context for the paths
// kubectl and client-go use, over real HTTP.
func TestWith(t *testing.T) {
	got := make(chan *request.RequestInfo, 1)
	srv := httptest.NewServer(requestinfo.With(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := request.RequestInfoFrom(r.Context())
		if !ok {
			t.Error("no RequestInfo in the context")
		}
		got <- info
	})))
	defer srv.Close()

	tests := []struct {
		method, path string
		want         request.RequestInfo
	}{
		{"GET", "/api/v1/namespaces/a/configmaps", request.RequestInfo{IsResourceRequest: true, Verb: "list", APIVersion: "v1", Namespace: "a", Resource: "configmaps"}},
		{"GET", "/api/v1/namespaces/a/configmaps?watch=true", request.RequestInfo{IsResourceRequest: true, Verb: "watch", APIVersion: "v1", Namespace: "a", Resource: "configmaps"}},
		{"GET", "/api/v1/watch/namespaces/a/configmaps/x", request.RequestInfo{IsResourceRequest: true, Verb: "watch", APIVersion: "v1", Namespace: "a", Resource: "configmaps", Name: "x"}},
		{"POST", "/apis/example.com/v1/namespaces/a/widgets", request.RequestInfo{IsResourceRequest: true, Verb: "create", APIGroup: "example.com", APIVersion: "v1", Namespace: "a", Resource: "widgets"}},
		{"PUT", "/apis/example.com/v1/namespaces/a/widgets/w/status", request.RequestInfo{IsResourceRequest: true, Verb: "update", APIGroup: "example.com", APIVersion: "v1", Namespace: "a", Resource: "widgets", Subresource: "status", Name: "w"}},
		{"PATCH", "/apis/example.com/v1/clusterthings/t", request.RequestInfo{IsResourceRequest: true, Verb: "patch", APIGroup: "example.com", APIVersion: "v1", Resource: "clusterthings", Name: "t"}},
		{"DELETE", "/api/v1/namespaces/a/secrets", request.RequestInfo{IsResourceRequest: true, Verb: "deletecollection", APIVersion: "v1", Namespace: "a", Resource: "secrets"}},
		{"GET", "/api/v1/namespaces/a", request.RequestInfo{IsResourceRequest: true, Verb: "get", APIVersion: "v1", Namespace: "a", Resource: "namespaces", Name: "a"}},
		{"GET", "/version", request.RequestInfo{Verb: "get"}},
		{"GET", "/apis", request.RequestInfo{Verb: "get"}},
		{"POST", "/healthz", request.RequestInfo{Verb: "post"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			info := <-got
			info.Path, info.Parts, info.APIPrefix = "", nil, ""
			want := tt.want
			if want.IsResourceRequest != info.IsResourceRequest || want.Verb != info.Verb || want.APIGroup != info.APIGroup ||
				want.APIVersion != info.APIVersion || want.Namespace != info.Namespace || want.Resource != info.Resource ||
				want.Subresource != info.Subresource || want.Name != info.Name {
				t.Errorf("RequestInfo = %+v, want %+v", *info, want)
			}
		})
	}
}
