package registry_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/registry"
)

// webhookConfig is a ValidatingWebhookConfiguration (or, with mutating, a
// MutatingWebhookConfiguration) with one webhook of the given fields.
func webhookConfig(mutating bool, hook map[string]any) *unstructured.Unstructured {
	kind := "ValidatingWebhookConfiguration"
	if mutating {
		kind = "MutatingWebhookConfiguration"
	}
	return obj(map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
		"metadata": map[string]any{"name": "hooks"},
		"webhooks": []any{hook},
	})
}

// minimalHook is the least a webhook needs.
func minimalHook() map[string]any {
	return map[string]any{
		"name":                    "check.example.com",
		"clientConfig":            map[string]any{"url": "https://hooks.example.com/check"},
		"sideEffects":             "None",
		"admissionReviewVersions": []any{"v1"},
		"rules": []any{map[string]any{
			"operations": []any{"CREATE"}, "apiGroups": []any{""}, "apiVersions": []any{"v1"}, "resources": []any{"configmaps"},
		}},
	}
}

func TestWebhookConfigurationDefaults(t *testing.T) {
	e := newEnv(t)
	for _, mutating := range []bool{false, true} {
		res := e.lookup(t, "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
		if mutating {
			res = e.lookup(t, "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
		}
		if res.Namespaced {
			t.Fatalf("%s is namespaced", res.Resource)
		}
		h := minimalHook()
		h["clientConfig"].(map[string]any)["caBundle"] = "Zm9v"
		got, err := e.reg.Create(t.Context(), res, "", webhookConfig(mutating, h), registry.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w := got.Object.Object["webhooks"].([]any)[0].(map[string]any)
		want := map[string]any{
			"failurePolicy": "Fail", "matchPolicy": "Equivalent", "timeoutSeconds": int64(10),
			"namespaceSelector": map[string]any{}, "objectSelector": map[string]any{},
		}
		if mutating {
			want["reinvocationPolicy"] = "Never"
		}
		for k, v := range want {
			if !reflect.DeepEqual(w[k], v) {
				t.Errorf("%s: %s = %#v, want %#v", res.Kind, k, w[k], v)
			}
		}
		if s := w["rules"].([]any)[0].(map[string]any)["scope"]; s != "*" {
			t.Errorf("rule scope %v, want *", s)
		}
		if got.Object.GetGeneration() != 1 {
			t.Errorf("generation %d", got.Object.GetGeneration())
		}
	}
}

func TestWebhookConfigurationValidation(t *testing.T) {
	e := newEnv(t)
	res := e.lookup(t, "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
	for name, tc := range map[string]struct {
		change func(h map[string]any)
		want   string
	}{
		"service": {func(h map[string]any) {
			h["clientConfig"] = map[string]any{"service": map[string]any{"name": "s", "namespace": "default"}}
		}, "webhooks[0].clientConfig.service: Forbidden: service references are not supported"},
		"no-client": {func(h map[string]any) { h["clientConfig"] = map[string]any{} }, "exactly one of url or service is required"},
		"http":      {func(h map[string]any) { h["clientConfig"] = map[string]any{"url": "http://x.example.com/"} }, "'https' is the only allowed URL scheme"},
		"user": {func(h map[string]any) {
			h["clientConfig"] = map[string]any{"url": "https://me:secret@x.example.com/"}
		}, "user information is not permitted"},
		"query":     {func(h map[string]any) { h["clientConfig"] = map[string]any{"url": "https://x.example.com/?a=b"} }, "query parameters are not permitted"},
		"fragment":  {func(h map[string]any) { h["clientConfig"] = map[string]any{"url": "https://x.example.com/#f"} }, "fragments are not permitted"},
		"no-host":   {func(h map[string]any) { h["clientConfig"] = map[string]any{"url": "https:///path"} }, "host must be specified"},
		"timeout":   {func(h map[string]any) { h["timeoutSeconds"] = int64(31) }, "the timeout value must be between 1 and 30 seconds"},
		"timeout-0": {func(h map[string]any) { h["timeoutSeconds"] = int64(0) }, "the timeout value must be between 1 and 30 seconds"},
		"unqualified": {func(h map[string]any) { h["name"] = "check" },
			"webhooks[0].name: Invalid value: \"check\": should be a domain with at least three segments"},
		"side-effects-missing": {func(h map[string]any) { delete(h, "sideEffects") }, "webhooks[0].sideEffects: Required value"},
		"side-effects-some":    {func(h map[string]any) { h["sideEffects"] = "Some" }, "webhooks[0].sideEffects: Unsupported value: \"Some\""},
		"review-missing":       {func(h map[string]any) { delete(h, "admissionReviewVersions") }, "webhooks[0].admissionReviewVersions: Required value"},
		"review-v1beta1":       {func(h map[string]any) { h["admissionReviewVersions"] = []any{"v1beta1"} }, "must include v1"},
		"failure-policy":       {func(h map[string]any) { h["failurePolicy"] = "Maybe" }, "webhooks[0].failurePolicy: Unsupported value"},
		"reinvocation":         {func(h map[string]any) { h["reinvocationPolicy"] = "Always" }, "webhooks[0].reinvocationPolicy: Unsupported value"},
		"operation": {func(h map[string]any) { rule0(h)["operations"] = []any{"PATCH"} },
			"webhooks[0].rules[0].operations[0]: Unsupported value: \"PATCH\""},
		"wildcard-and-more": {func(h map[string]any) { rule0(h)["apiGroups"] = []any{"*", "apps"} }, "if '*' is present, must not specify other API groups"},
		"no-versions":       {func(h map[string]any) { rule0(h)["apiVersions"] = []any{} }, "webhooks[0].rules[0].apiVersions: Required value"},
		"resources-overlap": {func(h map[string]any) { rule0(h)["resources"] = []any{"*/*", "pods"} }, "if '*/*' is present, must not specify other resources"},
		"subresource-overlap": {func(h map[string]any) { rule0(h)["resources"] = []any{"pods/*", "pods/status"} },
			"if 'pods/*' is present, must not specify pods/status"},
		"scope": {func(h map[string]any) { rule0(h)["scope"] = "Galaxy" }, "webhooks[0].rules[0].scope: Unsupported value"},
		"selector": {func(h map[string]any) {
			h["objectSelector"] = map[string]any{"matchLabels": map[string]any{"bad key!": "x"}}
		}, "webhooks[0].objectSelector.matchLabels"},
		"match-conditions": {func(h map[string]any) {
			h["matchConditions"] = []any{map[string]any{"name": "c", "expression": "true"}}
		}, "matchConditions are not supported"},
	} {
		t.Run(name, func(t *testing.T) {
			h := minimalHook()
			tc.change(h)
			_, err := e.reg.Create(t.Context(), res, "", webhookConfig(true, h), registry.WriteOptions{})
			wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
			if msg := err.Error(); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q lacks %q", msg, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %q echoes the URL's password", err)
			}
		})
	}
	two := webhookConfig(false, minimalHook())
	two.Object["webhooks"] = []any{minimalHook(), minimalHook()}
	_, err := e.reg.Create(t.Context(), e.lookup(t, "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"), "", two, registry.WriteOptions{})
	if wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid); !strings.Contains(err.Error(), "webhooks[1].name: Duplicate value") {
		t.Fatalf("error %v", err)
	}
}

func rule0(h map[string]any) map[string]any { return h["rules"].([]any)[0].(map[string]any) }
