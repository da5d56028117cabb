package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The objects of the benchmark are Widgets of a CRD registered by the
// benchmark itself, about objectSize bytes of JSON each.
const (
	benchGroup = "bench.setpoint.dev"
	objectSize = 1024
	// buckets is how many values the "bucket" label takes; selecting one
	// matches 1% of the objects.
	buckets = 100
	// selectedBucket is the bucket the label-selector list asks for.
	selectedBucket = 7
)

// Namespaces the scenarios write to, so that each list and watch sees only
// its own objects.
const (
	nsBench  = "bench"  // the N objects lists, status updates and deletes run on
	nsSingle = "single" // creates of one client
	nsWatch  = "watch"  // writes the watchers receive
)

var (
	crdGVR    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	nsGVR     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	widgetGVR = schema.GroupVersionResource{Group: benchGroup, Version: "v1", Resource: "widgets"}
	colors    = []string{"red", "green", "blue"}
	// padding fills spec.data so that a widget is about objectSize bytes.
	padding = strings.Repeat("x", max(0, objectSize-len(mustJSON(widget(nsBench, 0, "")))))
)

// widgetCRD is the Widget type in group: a typed schema, the status
// subresource and printer columns.
func widgetCRD(group string) *unstructured.Unstructured {
	str := func(extra func(*apiextensionsv1.JSONSchemaProps)) apiextensionsv1.JSONSchemaProps {
		p := apiextensionsv1.JSONSchemaProps{Type: "string"}
		if extra != nil {
			extra(&p)
		}
		return p
	}
	zero := 0.0
	crd := &apiextensionsv1.CustomResourceDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList", ShortNames: []string{"wd"},
			},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
					{Name: "Color", Type: "string", JSONPath: ".spec.color"},
					{Name: "Replicas", Type: "integer", JSONPath: ".spec.replicas"},
					{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
					{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
				},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {
							Type:     "object",
							Required: []string{"color"},
							Properties: map[string]apiextensionsv1.JSONSchemaProps{
								"color": str(func(p *apiextensionsv1.JSONSchemaProps) {
									p.Enum = []apiextensionsv1.JSON{{Raw: []byte(`"red"`)}, {Raw: []byte(`"green"`)}, {Raw: []byte(`"blue"`)}}
								}),
								"replicas": {Type: "integer", Minimum: &zero},
								"data":     str(func(p *apiextensionsv1.JSONSchemaProps) { p.MaxLength = ptr(int64(4 * objectSize)) }),
							},
						},
						"status": {
							Type: "object",
							Properties: map[string]apiextensionsv1.JSONSchemaProps{
								"phase":              str(nil),
								"observedGeneration": {Type: "integer"},
							},
						},
					},
				}},
			}},
		},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
	if err != nil {
		panic(fmt.Sprintf("convert the widget CRD: %v", err)) // a bug in the literal above
	}
	return &unstructured.Unstructured{Object: m}
}

// widget is object i of namespace: named w-<i>, labelled with one of
// buckets buckets, and carrying data in its spec.
func widget(namespace string, i int, data string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": widgetGVR.GroupVersion().String(),
		"kind":       "Widget",
		"metadata": map[string]any{
			"name":      widgetName(i),
			"namespace": namespace,
			"labels":    map[string]any{"bucket": bucketLabel(i % buckets)},
		},
		"spec": map[string]any{
			"color":    colors[i%len(colors)],
			"replicas": int64(i % 10),
			"data":     data,
		},
	}}
}

// benchWidget is widget i of namespace at the full object size.
func benchWidget(namespace string, i int) *unstructured.Unstructured {
	return widget(namespace, i, padding)
}

// widgetName is the name of object i; widgetIndex reverses it.
func widgetName(i int) string { return fmt.Sprintf("w-%07d", i) }

// widgetIndex is the i of a name made by widgetName, or -1.
func widgetIndex(name string) int {
	digits, ok := strings.CutPrefix(name, "w-")
	i, err := strconv.Atoi(digits)
	if !ok || err != nil {
		return -1
	}
	return i
}

// bucketLabel is the value of the bucket label of bucket b.
func bucketLabel(b int) string { return fmt.Sprintf("b%02d", b) }

func mustJSON(u *unstructured.Unstructured) []byte {
	data, err := json.Marshal(u.Object)
	if err != nil {
		panic(fmt.Sprintf("encode a widget: %v", err)) // maps of plain values always encode
	}
	return data
}

func ptr[T any](v T) *T { return &v }
