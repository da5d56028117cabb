package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/webhook"
)

// FuzzAdmissionResponse sends hostile response bodies (the seed's "UID"
// replaced with the request's uid) from a real HTTPS webhook with
// failurePolicy Fail. Nothing may panic, and a request may pass only when
// the body is a well-formed admission.k8s.io/v1 AdmissionReview that
// allows it.
func FuzzAdmissionResponse(f *testing.F) {
	for _, seed := range []string{
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"UID","allowed":true}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"UID","allowed":false,"status":{"code":403,"message":"no"}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"UID","allowed":true,"warnings":["w"],"patchType":"JSONPatch","patch":"W3sib3AiOiJhZGQiLCJwYXRoIjoiL21ldGFkYXRhL2xhYmVscyIsInZhbHVlIjp7ImEiOiJiIn19XQ=="}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"UID","allowed":true,"patchType":"JSONPatch","patch":"W3sib3AiOiJyZW1vdmUiLCJwYXRoIjoiL21ldGFkYXRhIn1d"}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"UID","allowed":true,"allowed":false}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"UID","Allowed":true}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"UID","allowed":true}} trailing`,
		`{"response":{"uid":"UID","allowed":true}}`,
		`null`, ``, `[]`, `{"apiVersion":1}`,
	} {
		f.Add([]byte(seed))
	}
	var mu sync.Mutex
	var body []byte
	var uid string
	s := newRawServer(f, func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&review)
		mu.Lock()
		uid = string(review.Request.UID)
		out := bytes.ReplaceAll(body, []byte("UID"), []byte(uid))
		mu.Unlock()
		_, _ = w.Write(out)
	})
	d := webhook.New(webhook.Options{MaxResponseBytes: 64 << 10, Logger: slog.New(slog.DiscardHandler)})
	fail := admissionregistrationv1.Fail
	v := vhook("fuzz.example.com", s, configMapRule)
	v.FailurePolicy = &fail
	m := mhook("fuzz.example.com", s, configMapRule)
	m.FailurePolicy = &fail
	d.Configure(
		[]*admissionregistrationv1.MutatingWebhookConfiguration{{ObjectMeta: metav1.ObjectMeta{Name: "m"}, Webhooks: []admissionregistrationv1.MutatingWebhook{m}}},
		[]*admissionregistrationv1.ValidatingWebhookConfiguration{{ObjectMeta: metav1.ObjectMeta{Name: "v"}, Webhooks: []admissionregistrationv1.ValidatingWebhook{v}}},
	)
	cms := &registry.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		mu.Lock()
		body = b
		mu.Unlock()
		req := &registry.AdmissionRequest{
			Resource: cms, Kind: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Operation: admissionv1.Create,
			Name: "c", Namespace: "default", Object: configMap("c", nil, map[string]string{"k": "v"}),
			Equivalents: func() []*registry.Resource { return nil },
		}
		_, verr := d.Validate(t.Context(), req)
		mu.Lock()
		allowed := allowsRequest(bytes.ReplaceAll(b, []byte("UID"), []byte(uid)), uid)
		mu.Unlock()
		if verr == nil && !allowed {
			t.Fatalf("validating webhook passed a request on %q", b)
		}
		obj, _, merr := d.Mutate(t.Context(), req)
		if merr == nil && (!allowed || obj == nil) {
			t.Fatalf("mutating webhook passed a request on %q (object %v)", b, obj)
		}
	})
}

// allowsRequest is the reference answer: whether body is an
// admission.k8s.io/v1 AdmissionReview whose response, for uid, has
// allowed true.
func allowsRequest(body []byte, uid string) bool {
	var review map[string]any
	if json.Unmarshal(body, &review) != nil || review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
		return false
	}
	resp, _ := review["response"].(map[string]any)
	return resp["uid"] == uid && resp["allowed"] == true
}
