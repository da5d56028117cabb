package webhook_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// warnings records the Warning headers client-go receives.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.list)
}

// TestThroughTheAPI configures webhooks with client-go's typed clientset
// (protobuf bodies, as it sends them) on a real server over HTTP and checks
// what clients see: the webhook's message on a denied create, a mutation
// in the stored object, the webhooks' warnings as Warning headers, on
// delete too.
func TestThroughTheAPI(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	rec := &warnings{}
	cfg := srv.RESTConfig()
	cfg.WarningHandler = rec
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	validator := newHookServer(t, func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		if r.Operation == admissionv1.Delete {
			return &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{"deleting " + r.Name}}
		}
		var cm corev1.ConfigMap
		_ = json.Unmarshal(r.Object.Raw, &cm)
		if cm.Data["colour"] == "red" {
			return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: "red is not allowed"}}
		}
		return &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{"checked " + r.Name}}
	})
	mutator := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return jsonPatch(map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]any{"mutated-by": "webhook"}})
	})
	deletes := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Delete}
	if _, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "colours"},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{vhook("colours.example.com", validator, rule("", "v1", deletes, "configmaps"))},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "annotate"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{mhook("annotate.example.com", mutator, rule("", "v1", creates, "configmaps"))},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cms := c.CoreV1().ConfigMaps("default")
	_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "red"}, Data: map[string]string{"colour": "red"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `admission webhook "colours.example.com" denied the request: red is not allowed`) {
		t.Fatalf("create red: %v", err)
	}
	if _, err := cms.Get(ctx, "red", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("denied object stored: %v", err)
	}

	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "blue"}, Data: map[string]string{"colour": "blue"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx, "blue", metav1.GetOptions{})
	if err != nil || got.Annotations["mutated-by"] != "webhook" {
		t.Fatalf("stored %v, %v", got.Annotations, err)
	}
	if err := cms.Delete(ctx, "blue", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"checked blue", "deleting blue"} {
		if !slices.Contains(rec.all(), w) {
			t.Errorf("warnings %q lack %q", rec.all(), w)
		}
	}

	// A webhook configuration is invalid with a service reference.
	_, err = c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "svc"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{func() admissionregistrationv1.ValidatingWebhook {
			h := vhook("svc.example.com", validator, configMapRule)
			h.ClientConfig = admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "default", Name: "hooks"}}
			return h
		}()},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "service references are not supported") {
		t.Fatalf("service reference: %v", err)
	}
}
