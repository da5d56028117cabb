package apiserver_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/setpoint/setpoint/internal/apiserver"
)

// TestWriteStatus checks the answers of the filters in front of the API:
// a Status in the format asked for, Retry-After when it carries one, and
// nothing of an error that is not a StatusError.
func TestWriteStatus(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		accept     string
		wantCode   int
		wantRetry  string
		wantReason metav1.StatusReason
	}{
		{"unauthorized", apierrors.NewUnauthorized("Unauthorized"), "", 401, "", metav1.StatusReasonUnauthorized},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 3), "application/json", 429, "3", metav1.StatusReasonTooManyRequests},
		{"yaml", apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "x", errors.New("no")), "application/yaml", 403, "", metav1.StatusReasonForbidden},
		{"not acceptable falls back to JSON", apierrors.NewBadRequest("bad"), "text/html", 400, "", metav1.StatusReasonBadRequest},
		{"plain error", errors.New("secret detail"), "", 500, "", metav1.StatusReasonInternalError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				apiserver.WriteStatus(w, r, tt.err)
			}))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+"/apis", nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var status metav1.Status
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") {
				err = yaml.Unmarshal(body, &status)
			} else {
				err = json.Unmarshal(body, &status)
			}
			if err != nil {
				t.Fatalf("decode %q: %v", body, err)
			}
			if resp.StatusCode != tt.wantCode || status.Kind != "Status" || int(status.Code) != tt.wantCode || status.Reason != tt.wantReason {
				t.Errorf("got %d %+v, want %d %s", resp.StatusCode, status, tt.wantCode, tt.wantReason)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			if tt.accept == "application/yaml" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") {
				t.Errorf("Content-Type = %q, want YAML", resp.Header.Get("Content-Type"))
			}
			if strings.Contains(string(body), "secret detail") {
				t.Errorf("the body %q reveals the internal error", body)
			}
		})
	}
}
