package webhook_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/registry/registrytest"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
	"github.com/setpoint/setpoint/internal/webhook"
)

// hookServer is an HTTPS admission webhook served on loopback that records
// the requests it gets.
type hookServer struct {
	*httptest.Server
	// ca is the PEM of the server's certificate, its caBundle.
	ca []byte

	mu   sync.Mutex
	reqs []*admissionv1.AdmissionRequest
}

// newHookServer serves a webhook that answers every AdmissionReview with
// respond's response (uid filled in).
func newHookServer(t testing.TB, respond func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) *hookServer {
	t.Helper()
	s := &hookServer{}
	s.start(t, func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, review.Request)
		s.mu.Unlock()
		resp := respond(review.Request)
		resp.UID = review.Request.UID
		review.Request, review.Response = nil, resp
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	})
	return s
}

// newRawServer serves a webhook with handler h.
func newRawServer(t testing.TB, h http.HandlerFunc) *hookServer {
	t.Helper()
	s := &hookServer{}
	s.start(t, h)
	return s
}

func (s *hookServer) start(t testing.TB, h http.HandlerFunc) {
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = nil
	s.StartTLS()
	t.Cleanup(s.Close)
	s.ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// requests returns the requests received so far.
func (s *hookServer) requests() []*admissionv1.AdmissionRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*admissionv1.AdmissionRequest(nil), s.reqs...)
}

// allow answers every request with allowed.
func allow(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true}
}

// env is a registry with a webhook dispatcher over a fresh SQLite store.
type env struct {
	reg   *registry.Registry
	d     *webhook.Dispatcher
	store *sqlite.Store
}

func newEnv(t testing.TB, opts webhook.Options) *env {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := webhook.New(opts)
	re := registrytest.StartWithWebhooks(t, d)
	return &env{reg: re.Registry, d: d, store: re.Store}
}

func (e *env) lookup(t testing.TB, group, version, resource string) *registry.Resource {
	t.Helper()
	res, ok := e.reg.Lookup(group, version, resource)
	if !ok {
		t.Fatalf("%s/%s %s not served", group, version, resource)
	}
	return res
}

// create stores obj as a res through the registry.
func (e *env) create(t testing.TB, res *registry.Resource, ns string, obj any) (registry.Result, error) {
	t.Helper()
	m, ok := obj.(map[string]any)
	if !ok {
		var err error
		if m, err = runtime.DefaultUnstructuredConverter.ToUnstructured(obj); err != nil {
			t.Fatal(err)
		}
	}
	return e.reg.Create(t.Context(), res, ns, &unstructured.Unstructured{Object: m}, registry.WriteOptions{})
}

// mustCreate is create that fails the test on error.
func (e *env) mustCreate(t testing.TB, res *registry.Resource, ns string, obj any) registry.Result {
	t.Helper()
	r, err := e.create(t, res, ns, obj)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return r
}

// validating stores a ValidatingWebhookConfiguration.
func (e *env) validating(t testing.TB, name string, hooks ...admissionregistrationv1.ValidatingWebhook) {
	t.Helper()
	e.mustCreate(t, e.lookup(t, "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"), "",
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
			ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: hooks,
		})
}

// mutating stores a MutatingWebhookConfiguration.
func (e *env) mutating(t testing.TB, name string, hooks ...admissionregistrationv1.MutatingWebhook) {
	t.Helper()
	e.mustCreate(t, e.lookup(t, "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"), "",
		&admissionregistrationv1.MutatingWebhookConfiguration{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
			ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: hooks,
		})
}

// rule covers ops on resources of group/version.
func rule(group, version string, ops []admissionregistrationv1.OperationType, resources ...string) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
		APIGroups: []string{group}, APIVersions: []string{version}, Resources: resources,
	}}
}

// Operation lists for rules.
var (
	creates = []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	all     = []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll}
)

// configMapRule covers every operation on ConfigMaps.
var configMapRule = rule("", "v1", all, "configmaps")

// vhook is a validating webhook served by s.
func vhook(name string, s *hookServer, rules ...admissionregistrationv1.RuleWithOperations) admissionregistrationv1.ValidatingWebhook {
	none := admissionregistrationv1.SideEffectClassNone
	u := s.URL
	return admissionregistrationv1.ValidatingWebhook{
		Name: name, ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: s.ca},
		Rules: rules, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
	}
}

// mhook is a mutating webhook served by s.
func mhook(name string, s *hookServer, rules ...admissionregistrationv1.RuleWithOperations) admissionregistrationv1.MutatingWebhook {
	v := vhook(name, s, rules...)
	return admissionregistrationv1.MutatingWebhook{
		Name: v.Name, ClientConfig: v.ClientConfig, Rules: v.Rules, SideEffects: v.SideEffects,
		AdmissionReviewVersions: v.AdmissionReviewVersions,
	}
}

// configMap is a ConfigMap named name with labels and data.
func configMap(name string, labels, data map[string]string) map[string]any {
	md := map[string]any{"name": name}
	if labels != nil {
		md["labels"] = toAny(labels)
	}
	m := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}
	if data != nil {
		m["data"] = toAny(data)
	}
	return m
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// wantStatus fails unless err is a StatusError with code, returning it.
func wantStatus(t testing.TB, err error, code int32) *apierrors.StatusError {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a StatusError; want %d", err, err, code)
	}
	if se.ErrStatus.Code != code {
		t.Fatalf("got %d %s (%s), want %d", se.ErrStatus.Code, se.ErrStatus.Reason, se.ErrStatus.Message, code)
	}
	return se
}

// wantAbsent fails unless the ConfigMap default/name does not exist.
func (e *env) wantAbsent(t testing.TB, name string) {
	t.Helper()
	_, err := e.reg.Get(t.Context(), e.lookup(t, "", "v1", "configmaps"), "default", name)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("configmap %s: %v, want NotFound", name, err)
	}
}

// otherCA is the PEM of a self-signed certificate that signed none of the
// test servers' certificates.
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
