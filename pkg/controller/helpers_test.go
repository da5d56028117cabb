package controller_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/internal/leakcheck"
	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// TestMain fails the tests if goroutines of the SDK outlive the tests that
// started them.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "setpoint/setpoint/pkg/controller.", "setpoint/setpoint/pkg/informer.",
		"setpoint/setpoint/pkg/workqueue.", "setpoint/setpoint/pkg/client.")
}

// Widget is the test CRD's Go type.
type Widget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WidgetSpec   `json:"spec,omitempty"`
	Status            WidgetStatus `json:"status,omitempty"`
}

// WidgetSpec is what a Widget asks for.
type WidgetSpec struct {
	Size int `json:"size"`
}

// WidgetStatus is what the widget controller reports.
type WidgetStatus struct {
	ObservedSize int `json:"observedSize,omitempty"`
}

var (
	widgetResource = client.Resource{Group: "test.setpoint.dev", Version: "v1", Resource: "widgets", Kind: "Widget", Namespaced: true}
	crdResource    = client.Resource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions", Kind: "CustomResourceDefinition"}
	cmResource     = client.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}
)

// env is a test server with the Widget CRD installed and clients for
// widgets and config maps.
type env struct {
	cfg     *rest.Config
	widgets *client.Client[Widget, *Widget]
	cms     *client.Client[corev1.ConfigMap, *corev1.ConfigMap]
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := setpointtest.Start(t, setpointtest.Options{})
	cfg := s.RESTConfig()
	installWidgetCRD(t, cfg)
	return &env{cfg: cfg, widgets: must(client.New[Widget](cfg, widgetResource)), cms: must(client.New[corev1.ConfigMap](cfg, cmResource))}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// installWidgetCRD creates the Widget CRD and watches it until Established.
func installWidgetCRD(t testing.TB, cfg *rest.Config) {
	t.Helper()
	ctx := t.Context()
	crds := must(client.New[apiextv1.CustomResourceDefinition](cfg, crdResource))
	obj := map[string]apiextv1.JSONSchemaProps{"size": {Type: "integer"}}
	crd := &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.test.setpoint.dev"},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: "test.setpoint.dev",
			Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextv1.JSONSchemaProps{
						"spec":   {Type: "object", Properties: obj},
						"status": {Type: "object", Properties: map[string]apiextv1.JSONSchemaProps{"observedSize": {Type: "integer"}}},
					},
				}},
				Subresources: &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}
	created, err := crds.Create(ctx, crd, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the Widget CRD: %v", err)
	}
	if established(created) {
		return
	}
	w, err := crds.Watch(ctx, "", metav1.ListOptions{FieldSelector: "metadata.name=" + crd.Name, ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatalf("watching the Widget CRD: %v", err)
	}
	defer w.Stop()
	for ev := range w.Events() {
		if ev.Type != watch.Bookmark && established(ev.Object) {
			return
		}
	}
	t.Fatalf("the Widget CRD's watch ended before it was Established: %v", w.Err())
}

func established(crd *apiextv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
			return true
		}
	}
	return false
}

// widget returns a Widget named name in the default namespace.
func widget(name string, size int) *Widget {
	return &Widget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: WidgetSpec{Size: size}}
}

// run runs the manager until the test ends, then checks it stopped cleanly.
func run(t *testing.T, m *controller.Manager) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Manager.Run: %v", err)
		}
	})
	t.Cleanup(stop)
	return stop
}

// manage builds a Manager without leader election running the given
// informers and controllers until the test ends.
func manage(t *testing.T, runnables ...controller.Runnable) {
	t.Helper()
	m, err := controller.NewManager(controller.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runnables {
		if err := m.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	run(t, m)
}

// widgetInformer returns an informer of the default namespace's widgets.
func (e *env) widgetInformer() *informer.Informer[Widget, *Widget] {
	return informer.New(e.widgets, informer.Options[*Widget]{Namespace: "default"})
}

// await receives from ch, failing the test if the test's deadline comes
// first.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-t.Context().Done():
		t.Fatalf("test ended waiting for %s", what)
	}
	var zero T
	return zero
}

// waitFor watches the default namespace's widgets until cond holds for the
// one named name, and returns it.
func (e *env) waitFor(t *testing.T, name string, cond func(*Widget) bool) *Widget {
	t.Helper()
	ctx := t.Context()
	got, err := e.widgets.Get(ctx, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	if cond(got) {
		return got
	}
	w, err := e.widgets.Watch(ctx, "default", metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: got.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.Events() {
		if ev.Type != watch.Bookmark && ev.Type != watch.Deleted && cond(ev.Object) {
			return ev.Object
		}
	}
	t.Fatalf("watch of widget %s ended before the condition held: %v", name, errors.Join(w.Err(), ctx.Err()))
	return nil
}
