package client_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// Widget is the typed test object, served by the CRD installWidgets
// creates.
type Widget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WidgetSpec   `json:"spec,omitempty"`
	Status            WidgetStatus `json:"status,omitempty"`
}

// WidgetSpec is what a Widget asks for.
type WidgetSpec struct {
	Color string `json:"color,omitempty"`
	Size  int64  `json:"size,omitempty"`
}

// WidgetStatus is what a Widget reports.
type WidgetStatus struct {
	Phase string `json:"phase,omitempty"`
}

var (
	widgetsRes    = client.Resource{Group: "example.com", Version: "v1", Resource: "widgets", Kind: "Widget", Namespaced: true}
	configMapsRes = client.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}
	crdsRes       = client.Resource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions", Kind: "CustomResourceDefinition"}
)

// start runs a test server and returns its configuration.
func start(t *testing.T, opts setpointtest.Options) *rest.Config {
	t.Helper()
	return setpointtest.Start(t, opts).RESTConfig()
}

// newClient is client.New that fails the test on error.
func newClient[T any, PT interface {
	*T
	client.Object
}](t *testing.T, cfg *rest.Config, res client.Resource) *client.Client[T, PT] {
	t.Helper()
	c, err := client.New[T, PT](cfg, res)
	if err != nil {
		t.Fatalf("client.New(%s): %v", res.Resource, err)
	}
	return c
}

// installWidgets creates the widgets CRD through the typed client: a
// namespaced resource with a status subresource and a bounded spec.size.
func installWidgets(t *testing.T, cfg *rest.Config) {
	t.Helper()
	crds := newClient[apiextv1.CustomResourceDefinition](t, cfg, crdsRes)
	maxSize := 10.0
	crd := &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: "example.com",
			Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextv1.JSONSchemaProps{
							"color": {Type: "string"},
							"size":  {Type: "integer", Maximum: &maxSize},
						}},
						"status": {Type: "object", Properties: map[string]apiextv1.JSONSchemaProps{
							"phase": {Type: "string"},
						}},
					},
				}},
				Subresources: &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}
	if _, err := crds.Create(t.Context(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create CRD: %v", err)
	}
}

// kit is what the shared suites need to know about one resource's
// objects: how to build one and where its test value lives.
type kit[T any, PT interface {
	*T
	client.Object
}] struct {
	c *client.Client[T, PT]
	// newObj returns an object ns/name, labelled app=name, whose value
	// is v, without apiVersion and kind.
	newObj   func(ns, name, v string) PT
	value    func(PT) string
	setValue func(PT, string)
	// path is where the value is in the JSON object.
	path []string
	// invalid returns an object the server rejects with 422.
	invalid func(ns string) PT
}

func widgetKit(c *client.Client[Widget, *Widget]) kit[Widget, *Widget] {
	return kit[Widget, *Widget]{
		c: c,
		newObj: func(ns, name, v string) *Widget {
			return &Widget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}}, Spec: WidgetSpec{Color: v, Size: 1}}
		},
		value:    func(w *Widget) string { return w.Spec.Color },
		setValue: func(w *Widget, v string) { w.Spec.Color = v },
		path:     []string{"spec", "color"},
		invalid: func(ns string) *Widget {
			return &Widget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "too-big"}, Spec: WidgetSpec{Size: 11}}
		},
	}
}

func configMapKit(c *client.Client[corev1.ConfigMap, *corev1.ConfigMap]) kit[corev1.ConfigMap, *corev1.ConfigMap] {
	return kit[corev1.ConfigMap, *corev1.ConfigMap]{
		c: c,
		newObj: func(ns, name, v string) *corev1.ConfigMap {
			return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}}, Data: map[string]string{"v": v}}
		},
		value:    func(cm *corev1.ConfigMap) string { return cm.Data["v"] },
		setValue: func(cm *corev1.ConfigMap, v string) { cm.Data["v"] = v },
		path:     []string{"data", "v"},
		invalid: func(ns string) *corev1.ConfigMap {
			return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "Not_A_Name"}}
		},
	}
}

// unstructuredKit is the kit for c with objects of kind k whose value is
// at path and whose zero object is invalid when broken by invalid.
func unstructuredKit(c *client.Unstructured, path []string, invalid func(u *unstructured.Unstructured)) kit[unstructured.Unstructured, *unstructured.Unstructured] {
	newObj := func(ns, name, v string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetNamespace(ns)
		u.SetName(name)
		u.SetLabels(map[string]string{"app": name})
		if err := unstructured.SetNestedField(u.Object, v, path...); err != nil {
			panic(err)
		}
		return u
	}
	return kit[unstructured.Unstructured, *unstructured.Unstructured]{
		c:      c,
		newObj: newObj,
		value: func(u *unstructured.Unstructured) string {
			v, _, _ := unstructured.NestedString(u.Object, path...)
			return v
		},
		setValue: func(u *unstructured.Unstructured, v string) {
			if err := unstructured.SetNestedField(u.Object, v, path...); err != nil {
				panic(err)
			}
		},
		path: path,
		invalid: func(ns string) *unstructured.Unstructured {
			u := newObj(ns, "invalid", "x")
			invalid(u)
			return u
		},
	}
}

var namespacesRes = client.Resource{Version: "v1", Resource: "namespaces", Kind: "Namespace"}

// createNamespace creates namespace name through the typed client of a
// cluster-scoped resource.
func createNamespace(t *testing.T, cfg *rest.Config, name string) {
	t.Helper()
	nss := newClient[corev1.Namespace](t, cfg, namespacesRes)
	if _, err := nss.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}
