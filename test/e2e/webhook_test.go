package e2e

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestValidatingWebhookRejectsCustomResource runs an HTTPS admission
// webhook in the test, registers it with client-go as a
// ValidatingWebhookConfiguration on the server binary, and checks that a
// widget the webhook rejects is refused with its message and not stored,
// while one it accepts is.
func TestValidatingWebhookRejectsCustomResource(t *testing.T) {
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "hooks")

	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		var obj unstructured.Unstructured
		_ = json.Unmarshal(review.Request.Object.Raw, &obj.Object)
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		if color, _, _ := unstructured.NestedString(obj.Object, "spec", "color"); color == "green" {
			resp.Allowed = false
			resp.Result = &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
				Message: "green widgets are sold out (asked by " + review.Request.UserInfo.Username + ")"}
		}
		review.Request, review.Response = nil, resp
		_ = json.NewEncoder(w).Encode(&review)
	}))
	t.Cleanup(hook.Close)
	url := hook.URL + "/validate"
	none := admissionregistrationv1.SideEffectClassNone
	_, err := c.core.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "widget-stock"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "stock.widgets.e2e.setpoint.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL: &url, CABundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw}),
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{testGroup}, APIVersions: []string{"*"}, Resources: []string{"widgets"}},
			}},
			SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	cl := c.widgets("hooks")
	spec := validSpec()
	spec["color"] = "green"
	_, err = cl.Create(ctx, widget("hooks", "green", nil, spec), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `admission webhook "stock.widgets.e2e.setpoint.dev" denied the request: green widgets are sold out`) {
		t.Fatalf("create green widget: %v", err)
	}
	if strings.Contains(err.Error(), "(asked by )") {
		t.Errorf("the webhook got no userInfo: %v", err)
	}
	wantNotFound(t, ctx, cl, "green")
	mustCreate(t, ctx, cl, widget("hooks", "red", nil, validSpec()))
}
