package discovery_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/registry/registrytest"
)

// newRegistry starts a registry over a fresh SQLite store.
func newRegistry(t testing.TB) *registry.Registry {
	t.Helper()
	return registrytest.Start(t).Registry
}

// createCRD registers crd and fails the test if it is rejected.
func createCRD(t testing.TB, reg *registry.Registry, crd map[string]any) {
	t.Helper()
	crds, ok := reg.Lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
	if !ok {
		t.Fatal("customresourcedefinitions not served")
	}
	if _, err := reg.Create(context.Background(), crds, "", &unstructured.Unstructured{Object: crd}, registry.WriteOptions{}); err != nil {
		t.Fatalf("create CRD: %v", err)
	}
}

// widgetSchema is a structural schema with a spec and a status.
func widgetSchema() map[string]any {
	return map[string]any{"openAPIV3Schema": map[string]any{
		"type":        "object",
		"description": "Widget is a test resource.",
		"properties": map[string]any{
			"spec": map[string]any{
				"type":        "object",
				"description": "Spec is the desired state.",
				"properties": map[string]any{
					"size":  map[string]any{"type": "integer", "minimum": int64(0), "description": "Size in units."},
					"color": map[string]any{"type": "string", "enum": []any{"red", "blue"}},
				},
				"required": []any{"size"},
			},
			"status": map[string]any{
				"type":       "object",
				"properties": map[string]any{"ready": map[string]any{"type": "boolean"}},
			},
		},
	}}
}

// widgetCRD is namespaced example.com Widget served as v1 (stored) and
// v1beta1, with the status subresource, short names, categories and
// printer columns.
func widgetCRD() map[string]any {
	version := func(name string, storage bool) map[string]any {
		return map[string]any{
			"name": name, "served": true, "storage": storage,
			"schema":       widgetSchema(),
			"subresources": map[string]any{"status": map[string]any{}},
			"additionalPrinterColumns": []any{
				map[string]any{"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
			},
		}
	}
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{
				"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
				"shortNames": []any{"wd", "wds"}, "categories": []any{"all", "toys"},
			},
			"versions": []any{version("v1", true), version("v1beta1", false)},
		},
	}
}

// gizmoCRD is cluster-scoped tools.example.org Gizmo v1 without status.
func gizmoCRD() map[string]any {
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gizmos.tools.example.org"},
		"spec": map[string]any{
			"group": "tools.example.org", "scope": "Cluster",
			"names": map[string]any{"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type":                                 "object",
					"x-kubernetes-preserve-unknown-fields": true,
				}},
			}},
		},
	}
}

// newPopulated is a registry serving the widget and gizmo CRDs.
func newPopulated(t testing.TB) *registry.Registry {
	t.Helper()
	reg := newRegistry(t)
	createCRD(t, reg, widgetCRD())
	createCRD(t, reg, gizmoCRD())
	return reg
}
