package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/webhook"
)

func TestValidatingDenyAndAllow(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		var cm map[string]any
		_ = json.Unmarshal(r.Object.Raw, &cm)
		if data, _ := cm["data"].(map[string]any); data["bad"] != nil {
			return &admissionv1.AdmissionResponse{Warnings: []string{"looked at it"},
				Result: &metav1.Status{Code: http.StatusForbidden, Message: "no bad data"}}
		}
		return &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{"fine by me"}}
	})
	e.validating(t, "deny-bad", vhook("deny.example.com", s, configMapRule))
	cms := e.lookup(t, "", "v1", "configmaps")

	ctx := request.WithUser(t.Context(), &user.DefaultInfo{Name: "alice", Groups: []string{"devs", "system:authenticated"}})
	body := &unstructured.Unstructured{Object: configMap("bad", nil, map[string]string{"bad": "x"})}
	_, err := e.reg.Create(ctx, cms, "default", body, registry.WriteOptions{})
	se := wantStatus(t, err, http.StatusForbidden)
	if want := `admission webhook "deny.example.com" denied the request: no bad data`; se.ErrStatus.Message != want {
		t.Errorf("message %q, want %q", se.ErrStatus.Message, want)
	}
	e.wantAbsent(t, "bad")

	res := e.mustCreate(t, cms, "default", configMap("good", nil, map[string]string{"ok": "y"}))
	if !slices.Contains(res.Warnings, "fine by me") {
		t.Errorf("warnings %q lack the webhook's", res.Warnings)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	r := reqs[0]
	if r.Operation != admissionv1.Create || r.Namespace != "default" || r.Resource.Resource != "configmaps" ||
		r.Kind.Kind != "ConfigMap" || r.RequestKind == nil || r.RequestKind.Kind != "ConfigMap" || r.DryRun == nil || *r.DryRun {
		t.Errorf("request %+v", r)
	}
	if r.UserInfo.Username != "alice" || !slices.Contains(r.UserInfo.Groups, "devs") {
		t.Errorf("userInfo %+v", r.UserInfo)
	}
	var opts map[string]any
	if err := json.Unmarshal(r.Options.Raw, &opts); err != nil || opts["kind"] != "CreateOptions" {
		t.Errorf("options %s", r.Options.Raw)
	}
}

// jsonPatch answers with a JSON patch.
func jsonPatch(ops ...map[string]any) *admissionv1.AdmissionResponse {
	b, _ := json.Marshal(ops)
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: b, PatchType: &pt}
}

func TestMutatingPatchIsStored(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return jsonPatch(map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]any{"mutated": "yes"}})
	})
	e.mutating(t, "labeler", mhook("label.example.com", s, configMapRule))
	cms := e.lookup(t, "", "v1", "configmaps")
	res := e.mustCreate(t, cms, "default", configMap("c", nil, nil))
	if res.Object.GetLabels()["mutated"] != "yes" {
		t.Fatalf("created %v", res.Object.GetLabels())
	}
	got, err := e.reg.Get(t.Context(), cms, "default", "c")
	if err != nil || got.GetLabels()["mutated"] != "yes" {
		t.Fatalf("stored %v, %v", got, err)
	}
	if ts := got.GetCreationTimestamp(); got.GetUID() == "" || ts.IsZero() {
		t.Errorf("system metadata missing: %v", got.Object["metadata"])
	}
}

func TestMutationIsValidatedAfterwards(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return jsonPatch(map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]any{"bad label!": "x"}})
	})
	e.mutating(t, "breaker", mhook("break.example.com", s, configMapRule))
	_, err := e.create(t, e.lookup(t, "", "v1", "configmaps"), "default", configMap("c", nil, nil))
	wantStatus(t, err, http.StatusUnprocessableEntity)
	e.wantAbsent(t, "c")
}

func TestMutatingOrder(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	appender := func(tag string) *hookServer {
		return newHookServer(t, func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var cm map[string]any
			_ = json.Unmarshal(r.Object.Raw, &cm)
			md := cm["metadata"].(map[string]any)
			ann, _ := md["annotations"].(map[string]any)
			order, _ := ann["order"].(string)
			if ann == nil {
				return jsonPatch(map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]any{"order": tag}})
			}
			return jsonPatch(map[string]any{"op": "replace", "path": "/metadata/annotations/order", "value": order + "," + tag})
		})
	}
	// Configurations run by name, webhooks in their configuration's order.
	e.mutating(t, "b-config", mhook("b1.example.com", appender("b1"), configMapRule))
	e.mutating(t, "a-config", mhook("a2.example.com", appender("a2"), configMapRule), mhook("a1.example.com", appender("a1"), configMapRule))
	res := e.mustCreate(t, e.lookup(t, "", "v1", "configmaps"), "default", configMap("c", nil, nil))
	if got := res.Object.GetAnnotations()["order"]; got != "a2,a1,b1" {
		t.Fatalf("order %q, want a2,a1,b1", got)
	}
}

func TestReinvocationIfNeeded(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	// first copies label "b" into label "a" once "b" exists; second adds "b".
	first := newHookServer(t, func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		var cm map[string]any
		_ = json.Unmarshal(r.Object.Raw, &cm)
		l, _ := cm["metadata"].(map[string]any)["labels"].(map[string]any)
		if b, ok := l["b"].(string); ok {
			return jsonPatch(map[string]any{"op": "add", "path": "/metadata/labels/a", "value": b})
		}
		return allow(r)
	})
	second := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return jsonPatch(map[string]any{"op": "add", "path": "/metadata/labels/b", "value": "from-second"})
	})
	h := mhook("first.example.com", first, configMapRule)
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	h.ReinvocationPolicy = &ifNeeded
	e.mutating(t, "a", h)
	e.mutating(t, "b", mhook("second.example.com", second, configMapRule))
	res := e.mustCreate(t, e.lookup(t, "", "v1", "configmaps"), "default", configMap("c", map[string]string{"x": "y"}, nil))
	if got := res.Object.GetLabels()["a"]; got != "from-second" {
		t.Fatalf("labels %v: first webhook not reinvoked", res.Object.GetLabels())
	}
	if n := len(first.requests()); n != 2 {
		t.Errorf("first webhook called %d times, want 2", n)
	}
}

func TestObjectSelector(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, allow)
	h := vhook("sel.example.com", s, configMapRule)
	h.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"hook": "yes"}}
	e.validating(t, "sel", h)
	cms := e.lookup(t, "", "v1", "configmaps")
	e.mustCreate(t, cms, "default", configMap("plain", nil, nil))
	e.mustCreate(t, cms, "default", configMap("marked", map[string]string{"hook": "yes"}, nil))
	if reqs := s.requests(); len(reqs) != 1 || reqs[0].Name != "marked" {
		t.Fatalf("requests %d, want only the labelled object", len(reqs))
	}
	// A delete is selected by its old object's labels.
	if _, _, err := e.reg.Delete(t.Context(), cms, "default", "marked", nil); err != nil {
		t.Fatal(err)
	}
	if reqs := s.requests(); len(reqs) != 2 || reqs[1].Operation != admissionv1.Delete {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestNamespaceSelector(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, allow)
	h := vhook("ns.example.com", s, rule("", "v1", creates, "configmaps", "namespaces"))
	h.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	e.validating(t, "ns", h)
	nss := e.lookup(t, "", "v1", "namespaces")
	ns := func(name string, labels map[string]string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": toAny(labels)}}
	}
	// A Namespace is selected by its own labels.
	e.mustCreate(t, nss, "", ns("prod", map[string]string{"env": "prod"}))
	e.mustCreate(t, nss, "", ns("dev", map[string]string{"env": "dev"}))
	cms := e.lookup(t, "", "v1", "configmaps")
	e.mustCreate(t, cms, "prod", configMap("a", nil, nil))
	e.mustCreate(t, cms, "dev", configMap("b", nil, nil))
	var got []string
	for _, r := range s.requests() {
		got = append(got, r.Resource.Resource+"/"+r.Namespace+"/"+r.Name)
	}
	if want := []string{"namespaces/prod/prod", "configmaps/prod/a"}; !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

func TestClusterScopedIgnoresNamespaceSelector(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, allow)
	h := vhook("crd.example.com", s, rule("apiextensions.k8s.io", "v1", creates, "customresourcedefinitions"))
	h.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"never": "there"}}
	e.validating(t, "crds", h)
	installWidgets(t, e)
	if n := len(s.requests()); n != 1 {
		t.Fatalf("%d requests, want 1: cluster-scoped objects are never excluded by a namespace selector", n)
	}
}

// installWidgets creates the CRD of namespaced example.com Widgets, served
// as v1 and v2, with the status and scale subresources.
func installWidgets(t *testing.T, e *env) {
	t.Helper()
	schema := map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
	sub := map[string]any{"status": map[string]any{}, "scale": map[string]any{
		"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}
	crd := map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "kind": "Widget"},
			"versions": []any{
				map[string]any{"name": "v1", "served": true, "storage": true, "schema": schema, "subresources": sub},
				map[string]any{"name": "v2", "served": true, "storage": false, "schema": schema, "subresources": sub},
			},
		},
	}
	e.mustCreate(t, e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions"), "", crd)
}

func widget(version, name string) map[string]any {
	return map[string]any{"apiVersion": "example.com/" + version, "kind": "Widget",
		"metadata": map[string]any{"name": name}, "spec": map[string]any{"replicas": int64(1)}}
}

func TestSubresourceMatching(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	installWidgets(t, e)
	statusOnly := newHookServer(t, allow)
	mainOnly := newHookServer(t, allow)
	scale := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return jsonPatch(map[string]any{"op": "replace", "path": "/spec/replicas", "value": 7})
	})
	updates := []admissionregistrationv1.OperationType{admissionregistrationv1.Update}
	e.validating(t, "status", vhook("status.example.com", statusOnly, rule("example.com", "v1", updates, "widgets/status")))
	e.validating(t, "main", vhook("main.example.com", mainOnly, rule("example.com", "v1", updates, "widgets")))
	e.mutating(t, "scale", mhook("scale.example.com", scale, rule("example.com", "v1", updates, "*/scale")))
	ws := e.lookup(t, "example.com", "v1", "widgets")
	created := e.mustCreate(t, ws, "default", widget("v1", "w"))

	st := created.Object.DeepCopy()
	st.Object["status"] = map[string]any{"replicas": int64(1)}
	if _, err := e.reg.Update(t.Context(), ws, "default", "w", st, registry.WriteOptions{Subresource: "status"}); err != nil {
		t.Fatal(err)
	}
	if reqs := statusOnly.requests(); len(reqs) != 1 || reqs[0].SubResource != "status" || reqs[0].OldObject.Raw == nil {
		t.Fatalf("status webhook requests %+v", reqs)
	}
	if n := len(mainOnly.requests()); n != 0 {
		t.Fatalf("main webhook called %d times for a status write", n)
	}

	scaled, err := e.reg.PatchScale(t.Context(), ws, "default", "w", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(scaled.Object.Object, "spec", "replicas"); r != 7 {
		t.Fatalf("scale replicas %d, want the webhook's 7", r)
	}
	reqs := scale.requests()
	if len(reqs) != 1 || reqs[0].Kind.Kind != "Scale" || reqs[0].Kind.Group != "autoscaling" || reqs[0].SubResource != "scale" {
		t.Fatalf("scale webhook requests %+v", reqs)
	}
	got, err := e.reg.Get(t.Context(), ws, "default", "w")
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); r != 7 {
		t.Fatalf("stored replicas %d, want 7", r)
	}
}

func TestMatchPolicyEquivalent(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	installWidgets(t, e)
	equivalent := newHookServer(t, func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return jsonPatch(map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]any{"seen-as": r.Kind.Version}})
	})
	exact := newHookServer(t, allow)
	eh := mhook("equivalent.example.com", equivalent, rule("example.com", "v1", creates, "widgets"))
	xh := mhook("exact.example.com", exact, rule("example.com", "v1", creates, "widgets"))
	exactPolicy := admissionregistrationv1.Exact
	xh.MatchPolicy = &exactPolicy
	e.mutating(t, "widgets", eh, xh)
	res := e.mustCreate(t, e.lookup(t, "example.com", "v2", "widgets"), "default", widget("v2", "w"))
	if res.Object.GetLabels()["seen-as"] != "v1" || res.Object.GetAPIVersion() != "example.com/v2" {
		t.Fatalf("created %v %v", res.Object.GetAPIVersion(), res.Object.GetLabels())
	}
	r := equivalent.requests()[0]
	if r.Kind.Version != "v1" || r.RequestKind.Version != "v2" || r.Resource.Version != "v1" || r.RequestResource.Version != "v2" {
		t.Fatalf("request kind %v/%v resource %v/%v", r.Kind, r.RequestKind, r.Resource, r.RequestResource)
	}
	var obj map[string]any
	if err := json.Unmarshal(r.Object.Raw, &obj); err != nil || obj["apiVersion"] != "example.com/v1" {
		t.Fatalf("object sent as %v", obj["apiVersion"])
	}
	if n := len(exact.requests()); n != 0 {
		t.Fatalf("exact webhook called %d times for another version", n)
	}
}

func TestDeleteSendsOldObject(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "keep it"}}
	})
	e.validating(t, "keep", vhook("keep.example.com", s, rule("", "v1", []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}, "configmaps")))
	cms := e.lookup(t, "", "v1", "configmaps")
	e.mustCreate(t, cms, "default", configMap("c", nil, map[string]string{"k": "v"}))
	_, _, err := e.reg.Delete(t.Context(), cms, "default", "c", nil)
	if se := wantStatus(t, err, http.StatusBadRequest); !strings.Contains(se.ErrStatus.Message, "keep it") {
		t.Errorf("message %q", se.ErrStatus.Message)
	}
	if _, err := e.reg.Get(t.Context(), cms, "default", "c"); err != nil {
		t.Fatalf("object gone after a denied delete: %v", err)
	}
	r := s.requests()[0]
	var old map[string]any
	if err := json.Unmarshal(r.OldObject.Raw, &old); err != nil || old["data"] == nil || r.Object.Raw != nil || r.Name != "c" {
		t.Fatalf("delete request object %s old %s", r.Object.Raw, r.OldObject.Raw)
	}
	var opts map[string]any
	if err := json.Unmarshal(r.Options.Raw, &opts); err != nil || opts["kind"] != "DeleteOptions" {
		t.Errorf("options %s", r.Options.Raw)
	}
}

func TestMutatingDeletePatchIsRefused(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return jsonPatch(map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]any{"x": "y"}})
	})
	e.mutating(t, "m", mhook("m.example.com", s, configMapRule))
	cms := e.lookup(t, "", "v1", "configmaps")
	e.mustCreate(t, cms, "default", configMap("c", nil, nil))
	_, _, err := e.reg.Delete(t.Context(), cms, "default", "c", nil)
	wantStatus(t, err, http.StatusInternalServerError)
}

func TestWebhookConfigurationsAreNotSentToWebhooks(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "no"}}
	})
	everything := rule("*", "*", all, "*/*")
	e.validating(t, "deny-all", vhook("deny-all.example.com", s, everything))
	e.mutating(t, "also", mhook("also.example.com", s, everything))
	vwcs := e.lookup(t, "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
	// The configuration can still be changed and removed: a webhook never
	// guards its own configuration.
	if _, _, err := e.reg.Delete(t.Context(), vwcs, "", "deny-all", nil); err != nil {
		t.Fatalf("delete the denying configuration: %v", err)
	}
	if n := len(s.requests()); n != 0 {
		t.Fatalf("webhook called %d times for webhook configurations", n)
	}
	mwcs := e.lookup(t, "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
	if _, _, err := e.reg.Delete(t.Context(), mwcs, "", "also", nil); err != nil {
		t.Fatal(err)
	}
	e.mustCreate(t, e.lookup(t, "", "v1", "configmaps"), "default", configMap("after", nil, nil))
}

func TestDryRunAndSideEffects(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	s := newHookServer(t, allow)
	e.validating(t, "v", vhook("none.example.com", s, configMapRule))
	cms := e.lookup(t, "", "v1", "configmaps")
	body := &unstructured.Unstructured{Object: configMap("dry", nil, nil)}
	if _, err := e.reg.Create(t.Context(), cms, "default", body, registry.WriteOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	e.wantAbsent(t, "dry")
	reqs := s.requests()
	if len(reqs) != 1 || reqs[0].DryRun == nil || !*reqs[0].DryRun {
		t.Fatalf("requests %+v, want one with dryRun", reqs)
	}
	var opts map[string]any
	_ = json.Unmarshal(reqs[0].Options.Raw, &opts)
	if fmt.Sprint(opts["dryRun"]) != "[All]" {
		t.Errorf("options %s", reqs[0].Options.Raw)
	}

	// Webhooks that may have side effects are refused a dry run, and the
	// request with them, whatever their failurePolicy. v1 validation keeps
	// such configurations out of storage, so the dispatcher is given one.
	for _, class := range []admissionregistrationv1.SideEffectClass{admissionregistrationv1.SideEffectClassSome, admissionregistrationv1.SideEffectClassUnknown} {
		d := webhook.New(webhook.Options{})
		h := vhook("some.example.com", s, configMapRule)
		h.SideEffects = &class
		ignore := admissionregistrationv1.Ignore
		h.FailurePolicy = &ignore
		d.Configure(nil, []*admissionregistrationv1.ValidatingWebhookConfiguration{{ObjectMeta: metav1.ObjectMeta{Name: "v"}, Webhooks: []admissionregistrationv1.ValidatingWebhook{h}}})
		req := &registry.AdmissionRequest{
			Resource: cms, Kind: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Operation: admissionv1.Create, Name: "dry", Namespace: "default",
			Object: configMap("dry", nil, nil), DryRun: true, Equivalents: func() []*registry.Resource { return nil },
		}
		_, err := d.Validate(t.Context(), req)
		se := wantStatus(t, err, http.StatusBadRequest)
		if want := `admission webhook "some.example.com" does not support dry run`; se.ErrStatus.Message != want {
			t.Errorf("message %q, want %q", se.ErrStatus.Message, want)
		}
		if n := len(s.requests()); n != 1 {
			t.Fatalf("webhook with side effects called on a dry run")
		}
	}
}

func TestFailurePolicy(t *testing.T) {
	valid := func(w http.ResponseWriter, r *http.Request, change func(map[string]any)) {
		var review map[string]any
		_ = json.NewDecoder(r.Body).Decode(&review)
		uid := review["request"].(map[string]any)["uid"]
		resp := map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
			"response": map[string]any{"uid": uid, "allowed": true}}
		change(resp)
		_ = json.NewEncoder(w).Encode(resp)
	}
	cases := map[string]http.HandlerFunc{
		"hang": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // so the server sees the caller hang up
			<-r.Context().Done()
		},
		"garbage": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>not json")) },
		"oversize": func(w http.ResponseWriter, r *http.Request) {
			valid(w, r, func(m map[string]any) { m["response"].(map[string]any)["warnings"] = []any{strings.Repeat("x", 4096)} })
		},
		"server-error": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
		"wrong-uid": func(w http.ResponseWriter, r *http.Request) {
			valid(w, r, func(m map[string]any) { m["response"].(map[string]any)["uid"] = "someone-else" })
		},
		"no-allowed": func(w http.ResponseWriter, r *http.Request) {
			valid(w, r, func(m map[string]any) { delete(m["response"].(map[string]any), "allowed") })
		},
		"wrong-kind": func(w http.ResponseWriter, r *http.Request) {
			valid(w, r, func(m map[string]any) { m["apiVersion"] = "admission.k8s.io/v1beta1" })
		},
		"duplicate-key": func(w http.ResponseWriter, r *http.Request) {
			var review admissionv1.AdmissionReview
			_ = json.NewDecoder(r.Body).Decode(&review)
			fmt.Fprintf(w, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":%q,"allowed":false,"allowed":true}}`, review.Request.UID)
		},
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		},
	}
	names := []string{"refused", "untrusted"}
	for name := range cases {
		names = append(names, name)
	}
	for _, name := range names {
		for _, policy := range []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Fail, admissionregistrationv1.Ignore} {
			t.Run(name+"-"+string(policy), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, webhook.Options{MaxResponseBytes: 1024})
				var h admissionregistrationv1.ValidatingWebhook
				switch name {
				case "refused":
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					addr := ln.Addr().String()
					ln.Close()
					h = vhook("failing.example.com", &hookServer{Server: &httptest.Server{URL: "https://" + addr}}, configMapRule)
				case "untrusted":
					h = vhook("failing.example.com", newHookServer(t, allow), configMapRule)
					h.ClientConfig.CABundle = otherCA(t)
				default:
					h = vhook("failing.example.com", newRawServer(t, cases[name]), configMapRule)
				}
				one := int32(1)
				h.TimeoutSeconds = &one
				h.FailurePolicy = &policy
				e.validating(t, "failing", h)
				_, err := e.create(t, e.lookup(t, "", "v1", "configmaps"), "default", configMap("c", nil, nil))
				if policy == admissionregistrationv1.Ignore {
					if err != nil {
						t.Fatalf("failurePolicy Ignore: %v", err)
					}
					return
				}
				se := wantStatus(t, err, http.StatusInternalServerError)
				if !strings.HasPrefix(se.ErrStatus.Message, `Internal error occurred: failed calling webhook "failing.example.com": `) || se.ErrStatus.Reason != metav1.StatusReasonInternalError {
					t.Errorf("status %s %q", se.ErrStatus.Reason, se.ErrStatus.Message)
				}
				e.wantAbsent(t, "c")
			})
		}
	}
}

// TestConfigurationReachesOtherReplicas writes configurations through one
// registry and checks that another over the same store applies them once
// it has synced with the store, as a replica on the same database does.
func TestConfigurationReachesOtherReplicas(t *testing.T) {
	a := newEnv(t, webhook.Options{})
	d := webhook.New(webhook.Options{Logger: slog.New(slog.DiscardHandler)})
	f := feed.New(a.store, feed.Options{})
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(context.Background()) }()
	t.Cleanup(func() { f.Close(); <-done })
	regB, err := registry.New(registry.Options{Store: a.store, Feed: f, Webhooks: d})
	if err != nil {
		t.Fatal(err)
	}
	if err := regB.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { regB.Close() })
	b := &env{reg: regB, d: d, store: a.store}

	s := newHookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "no"}}
	})
	a.validating(t, "deny", vhook("deny.example.com", s, configMapRule))
	if err := regB.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err = b.create(t, b.lookup(t, "", "v1", "configmaps"), "default", configMap("c", nil, nil))
	wantStatus(t, err, http.StatusBadRequest)

	vwcs := a.lookup(t, "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
	if _, _, err := a.reg.Delete(t.Context(), vwcs, "", "deny", nil); err != nil {
		t.Fatal(err)
	}
	if err := regB.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.mustCreate(t, b.lookup(t, "", "v1", "configmaps"), "default", configMap("c", nil, nil))
}
