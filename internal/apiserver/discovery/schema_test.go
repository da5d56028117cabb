package discovery_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/openapi3"
	"k8s.io/kube-openapi/pkg/spec3"

	setpointdiscovery "github.com/setpoint/setpoint/internal/apiserver/discovery"
)

// oddCRD uses the schema features that differ most from plain JSON
// Schema: preserved unknown fields (at the root of a subtree and next to
// properties), int-or-string with and without the anyOf form, nested
// arrays, maps, list-map keys, nullable, embedded resources, CEL rules
// and defaults.
func oddCRD() map[string]any {
	obj := func(props map[string]any) map[string]any {
		return map[string]any{"type": "object", "properties": props}
	}
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "oddities.odd.example.com"},
		"spec": map[string]any{
			"group": "odd.example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "oddities", "kind": "Oddity"},
			"versions": []any{map[string]any{
				"name": "v1alpha1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": obj(map[string]any{
					"spec": map[string]any{
						"type":                     "object",
						"x-kubernetes-validations": []any{map[string]any{"rule": "self.replicas >= 0", "message": "no negative replicas"}},
						"properties": map[string]any{
							"replicas": map[string]any{"type": "integer", "default": int64(1)},
							"port":     map[string]any{"x-kubernetes-int-or-string": true},
							"maxSurge": map[string]any{"x-kubernetes-int-or-string": true,
								"anyOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}},
							"free": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true},
							"half": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true,
								"properties": map[string]any{"known": map[string]any{"type": "string"}}},
							"matrix": map[string]any{"type": "array", "items": map[string]any{
								"type": "array", "items": obj(map[string]any{
									"cells": map[string]any{"type": "array", "items": map[string]any{"type": "number"}},
								}),
							}},
							"labels": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
							"ports": map[string]any{
								"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": []any{"name"},
								"items": map[string]any{"type": "object", "required": []any{"name"}, "properties": map[string]any{
									"name":     map[string]any{"type": "string"},
									"protocol": map[string]any{"type": "string", "default": "TCP", "enum": []any{"TCP", "UDP"}},
								}},
							},
							"note":     map[string]any{"type": "string", "nullable": true, "maxLength": int64(20), "pattern": "^[a-z]*$"},
							"template": map[string]any{"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
							"when":     map[string]any{"type": "string", "format": "date-time"},
						},
					},
				})},
			}},
		},
	}
}

func TestOddSchemasMakeValidDocuments(t *testing.T) {
	reg := newPopulated(t)
	createCRD(t, reg, oddCRD())
	for _, path := range []string{"api/v1", "apis/apiextensions.k8s.io/v1", "apis/example.com/v1", "apis/example.com/v1beta1",
		"apis/tools.example.org/v1", "apis/odd.example.com/v1alpha1"} {
		t.Run(strings.ReplaceAll(path, "/", "_"), func(t *testing.T) {
			b, ok := setpointdiscovery.OpenAPI(reg, path)
			if !ok {
				t.Fatal("not served")
			}
			checkDocument(t, b)
		})
	}
	tc, err := openapi.NewTypeConverter(openAPIClient(t, reg), false)
	if err != nil {
		t.Fatal(err)
	}
	oddity := map[string]any{
		"apiVersion": "odd.example.com/v1alpha1", "kind": "Oddity",
		"metadata": map[string]any{"name": "o", "namespace": "default"},
		"spec": map[string]any{
			"replicas": int64(2), "port": "http", "maxSurge": int64(25),
			"free":     map[string]any{"any": []any{int64(1), "two", map[string]any{"three": 3.0}}},
			"half":     map[string]any{"known": "k", "unknown": true},
			"matrix":   []any{[]any{map[string]any{"cells": []any{1.5, 2.0}}}},
			"labels":   map[string]any{"a": "b"},
			"ports":    []any{map[string]any{"name": "web", "protocol": "UDP"}},
			"note":     nil,
			"template": map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"}, "spec": map[string]any{}},
			"when":     "2026-01-02T03:04:05Z",
		},
	}
	if _, err := tc.ObjectToTyped(&unstructured.Unstructured{Object: oddity}); err != nil {
		t.Fatal(err)
	}
	root := openapi3.NewRoot(openAPIClient(t, reg))
	gvr := schema.GroupVersionResource{Group: "odd.example.com", Version: "v1alpha1", Resource: "oddities"}
	if d, _ := explainSchema(t, root, gvr, "spec", "template", "metadata", "name")["description"].(string); d == "" {
		t.Error("embedded resource's metadata.name has no description")
	}
	oddity["spec"].(map[string]any)["port"] = int64(8080)
	if _, err := tc.ObjectToTyped(&unstructured.Unstructured{Object: oddity}); err != nil {
		t.Fatalf("int-or-string as int: %v", err)
	}
	oddity["spec"].(map[string]any)["matrix"] = []any{map[string]any{"cells": []any{}}}
	if _, err := tc.ObjectToTyped(&unstructured.Unstructured{Object: oddity}); err == nil {
		t.Fatal("object accepted where the schema wants an array of arrays")
	}
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// checkDocument checks that doc is an OpenAPI 3.0 document whose
// references all resolve within it, with no siblings next to a reference
// (OpenAPI 3.0 ignores them; Kubernetes wraps such references in allOf),
// unique operation IDs, every path template parameter declared and every
// operation marked with a group-version-kind.
func checkDocument(t *testing.T, b []byte) {
	t.Helper()
	var typed spec3.OpenAPI
	if err := json.Unmarshal(b, &typed); err != nil {
		t.Fatalf("decode as spec3.OpenAPI: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.0.0" {
		t.Errorf("openapi %v", doc["openapi"])
	}
	schemas, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if len(v) != 1 {
					t.Errorf("%s: $ref with siblings: %v", at, v)
				}
				if _, ok := schemas[strings.TrimPrefix(ref, "#/components/schemas/")]; !ok || !strings.HasPrefix(ref, "#/components/schemas/") {
					t.Errorf("%s: unresolved $ref %s", at, ref)
				}
			}
			for k, e := range v {
				walk(at+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s/%d", at, i), e)
			}
		}
	}
	walk("", doc)
	ids := map[string]bool{}
	for path, item := range typed.Paths.Paths {
		declared := map[string]bool{}
		for _, p := range item.Parameters {
			if p.In == "path" {
				declared[p.Name] = true
			}
		}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %s not declared", path, m[1])
			}
		}
		for _, op := range []*spec3.Operation{item.Get, item.Put, item.Post, item.Patch, item.Delete} {
			if op == nil {
				continue
			}
			if ids[op.OperationId] || op.OperationId == "" {
				t.Errorf("%s: operation ID %q empty or repeated", path, op.OperationId)
			}
			ids[op.OperationId] = true
			if _, ok := op.Extensions["x-kubernetes-group-version-kind"]; !ok {
				t.Errorf("%s %s: no group-version-kind", path, op.OperationId)
			}
		}
	}
	if len(ids) == 0 {
		t.Error("no operations")
	}
}
