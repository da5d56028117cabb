package apiserver_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

var widgetsGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

func newWidget(name string, size int64) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"size": size},
	}}
}

func TestDynamicClient(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	ctx := t.Context()
	dc, err := dynamic.NewForConfig(&rest.Config{Host: e.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	widgets := dc.Resource(widgetsGVR).Namespace("default")
	created, err := widgets.Create(ctx, newWidget("w1", 1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := widgets.Create(ctx, newWidget("w1", 1), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: %v, want AlreadyExists", err)
	}
	created.Object["spec"] = map[string]any{"size": int64(2)}
	updated, err := widgets.Update(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := widgets.Update(ctx, created, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v, want Conflict", err)
	}
	patched, err := widgets.Patch(ctx, "w1", types.MergePatchType, []byte(`{"spec":{"size":3}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if patched.GetGeneration() != updated.GetGeneration()+1 {
		t.Fatalf("generation %d after %d", patched.GetGeneration(), updated.GetGeneration())
	}
	if _, err := widgets.Create(ctx, newWidget("w2", 1000), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("invalid create: %v, want Invalid", err)
	}
	list, err := dc.Resource(widgetsGVR).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if err := widgets.Delete(ctx, "w1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := widgets.Get(ctx, "w1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want NotFound", err)
	}
}

// TestTypedClientProtobuf uses a typed clientset as controllers build it:
// it sends protobuf bodies and accepts JSON answers.
func TestTypedClientProtobuf(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: e.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "proto", Labels: map[string]string{"a": "b"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.UID == "" || ns.Labels["a"] != "b" || ns.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("created %+v", ns)
	}
	ns.Labels["a"] = "c"
	if ns, err = cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil || ns.Labels["a"] != "c" {
		t.Fatalf("update: %+v, %v", ns, err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, "proto", metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions("other")}); !apierrors.IsConflict(err) {
		t.Fatalf("delete with a wrong uid precondition: %v, want Conflict", err)
	}
	w, err := cs.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{ResourceVersion: ns.ResourceVersion, FieldSelector: "metadata.name=proto"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := cs.CoreV1().Namespaces().Delete(ctx, "proto", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if got, ok := ev.Object.(*corev1.Namespace); !ok || got.DeletionTimestamp == nil {
			t.Fatalf("typed watch event %s %#v", ev.Type, ev.Object)
		}
	case <-timeout():
		t.Fatal("no typed watch event")
	}
}

// counter sums apiserver_request_total for verb and resource.
func (e *env) counter(t *testing.T, verb, resource string) float64 {
	t.Helper()
	families, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != "apiserver_request_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "verb") == verb && label(m, "resource") == resource {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// added collects the names an informer reports as added.
func added(t *testing.T, inf cache.SharedIndexInformer) <-chan string {
	t.Helper()
	ch := make(chan string, 100)
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if o, ok := obj.(metav1.Object); ok {
			ch <- o.GetName()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// waitAdded waits until name is reported.
func waitAdded(t *testing.T, ch <-chan string, name string) {
	t.Helper()
	for {
		select {
		case n := <-ch:
			if n == name {
				return
			}
		case <-timeout():
			t.Fatalf("informer did not report %s", name)
		}
	}
}

// informerContext bounds an informer test; at cleanup it is cancelled
// before shutdown waits for the informers.
func informerContext(t *testing.T, shutdown func()) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(shutdown)
	t.Cleanup(cancel)
	return ctx
}

func TestInformersSync(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("before", 1))
	cfg := &rest.Config{Host: e.srv.URL}

	t.Run("Dynamic", func(t *testing.T) {
		dc, err := dynamic.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		f := dynamicinformer.NewDynamicSharedInformerFactory(dc, time.Hour)
		ctx := informerContext(t, f.Shutdown)
		inf := f.ForResource(widgetsGVR).Informer()
		ch := added(t, inf)
		f.Start(ctx.Done())
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			t.Fatal("dynamic informer did not sync")
		}
		waitAdded(t, ch, "before")
		// client-go v0.37 informers stream the initial state with a
		// WatchList request instead of listing.
		if n := e.counter(t, "list", "widgets"); n != 0 {
			t.Fatalf("the informer listed %v times; want WatchList", n)
		}
		e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("dynamic-after", 1))
		waitAdded(t, ch, "dynamic-after")
	})
	t.Run("Metadata", func(t *testing.T) {
		mc, err := metadata.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		f := metadatainformer.NewSharedInformerFactory(mc, time.Hour)
		ctx := informerContext(t, f.Shutdown)
		inf := f.ForResource(widgetsGVR).Informer()
		ch := added(t, inf)
		f.Start(ctx.Done())
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			t.Fatal("metadata informer did not sync")
		}
		waitAdded(t, ch, "before")
		e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("metadata-after", 1))
		waitAdded(t, ch, "metadata-after")
		obj, exists, err := inf.GetStore().GetByKey("default/metadata-after")
		if err != nil || !exists {
			t.Fatalf("store: %v %v", exists, err)
		}
		if pm, ok := obj.(*metav1.PartialObjectMetadata); !ok || pm.Name != "metadata-after" {
			t.Fatalf("stored %T %+v", obj, obj)
		}
	})
}
