package client_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// TestWatch runs the watch suite on a typed custom resource, a typed
// built-in and an unstructured built-in.
func TestWatch(t *testing.T) {
	cfg := start(t, setpointtest.Options{})
	installWidgets(t, cfg)
	t.Run("typed_crd", func(t *testing.T) {
		runWatch(t, cfg, widgetKit(newClient[Widget](t, cfg, widgetsRes)), "watch-typed-crd")
	})
	t.Run("typed_builtin", func(t *testing.T) {
		runWatch(t, cfg, configMapKit(newClient[corev1.ConfigMap](t, cfg, configMapsRes)), "watch-typed-builtin")
	})
	t.Run("unstructured_builtin", func(t *testing.T) {
		runWatch(t, cfg, unstructuredKit(newClient[unstructured.Unstructured](t, cfg, configMapsRes), []string{"data", "v"}, nil), "watch-unstructured-builtin")
	})
}

// runWatch checks that a watch from a list's resourceVersion sees every
// change decoded, that it resumes from an event's resourceVersion, that
// bookmarks pass through, and that Stop, the context and timeoutSeconds
// end it with a nil Err.
func runWatch[T any, PT interface {
	*T
	client.Object
}](t *testing.T, cfg *rest.Config, k kit[T, PT], ns string) {
	createNamespace(t, cfg, ns)
	ctx := t.Context()
	c := k.c
	gvk := c.Resource().GroupVersionKind()
	list, err := c.List(ctx, ns, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, ns, metav1.ListOptions{ResourceVersion: list.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()

	obj, err := c.Create(ctx, k.newObj(ns, "w1", "a"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k.setValue(obj, "b")
	if _, err := c.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, ns, "w1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ   watch.EventType
		value string
	}{{watch.Added, "a"}, {watch.Modified, "b"}, {watch.Deleted, "b"}}
	var addedRV string
	for i, wnt := range want {
		ev := nextChange(t, w)
		if ev.Type != wnt.typ || k.value(ev.Object) != wnt.value || ev.Object.GetName() != "w1" || ev.Object.GetObjectKind().GroupVersionKind() != gvk {
			t.Fatalf("event %d = %s %+v, want %s with value %s", i, ev.Type, ev.Object, wnt.typ, wnt.value)
		}
		if i == 0 {
			addedRV = ev.Object.GetResourceVersion()
		}
	}

	// Resuming from the ADDED event's resourceVersion sees what followed.
	resumed, err := c.Watch(ctx, ns, metav1.ListOptions{ResourceVersion: addedRV})
	if err != nil {
		t.Fatalf("Watch from %s: %v", addedRV, err)
	}
	defer resumed.Stop()
	for i, wnt := range want[1:] {
		if ev := nextChange(t, resumed); ev.Type != wnt.typ || k.value(ev.Object) != wnt.value {
			t.Fatalf("resumed event %d = %s %+v, want %s", i, ev.Type, ev.Object, wnt.typ)
		}
	}

	// Initial events end with a bookmark, passed through with its
	// resourceVersion and annotation.
	if _, err := c.Create(ctx, k.newObj(ns, "w2", "c"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	yes := true
	initial, err := c.Watch(ctx, ns, metav1.ListOptions{SendInitialEvents: &yes, AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if err != nil {
		t.Fatalf("Watch with initial events: %v", err)
	}
	if ev := next(t, initial); ev.Type != watch.Added || ev.Object.GetName() != "w2" || k.value(ev.Object) != "c" {
		t.Fatalf("initial event = %s %+v", ev.Type, ev.Object)
	}
	ev := next(t, initial)
	if ev.Type != watch.Bookmark || ev.Object.GetResourceVersion() == "" || ev.Object.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" || ev.Object.GetObjectKind().GroupVersionKind() != gvk {
		t.Fatalf("event after the initial ones = %s %+v, want the initial-events-end bookmark", ev.Type, ev.Object)
	}
	// Stop ends the stream while nobody reads.
	initial.Stop()
	initial.Stop()
	awaitEnd(t, initial)

	// The stream ends when the context does.
	wctx, cancel := context.WithCancel(ctx)
	cw, err := c.Watch(wctx, ns, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next(t, cw) // w2, from the current state
	cancel()
	awaitEnd(t, cw)

	// timeoutSeconds ends it from the server side.
	tw, err := c.Watch(ctx, ns, metav1.ListOptions{ResourceVersion: ev.Object.GetResourceVersion(), TimeoutSeconds: ptrTo[int64](1)})
	if err != nil {
		t.Fatal(err)
	}
	awaitEnd(t, tw)
}

// waitLimit bounds every wait for an event.
const waitLimit = 30 * time.Second

// next returns the next event of w, failing the test when none comes.
func next[T any, PT interface {
	*T
	client.Object
}](t *testing.T, w *client.Watch[T, PT]) client.Event[PT] {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return ev
	case <-time.After(waitLimit):
		t.Fatal("no watch event")
	}
	panic("unreachable")
}

// nextChange is next, skipping bookmarks.
func nextChange[T any, PT interface {
	*T
	client.Object
}](t *testing.T, w *client.Watch[T, PT]) client.Event[PT] {
	t.Helper()
	for {
		if ev := next(t, w); ev.Type != watch.Bookmark {
			return ev
		}
	}
}

// awaitEnd drains w until its channel closes and checks Err is nil.
func awaitEnd[T any, PT interface {
	*T
	client.Object
}](t *testing.T, w *client.Watch[T, PT]) {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case _, ok := <-w.Events():
			if ok {
				continue
			}
			if err := w.Err(); err != nil {
				t.Fatalf("watch ended with %v, want nil", err)
			}
			return
		case <-timeout:
			t.Fatal("the watch did not end")
		}
	}
}

func ptrTo[V any](v V) *V { return &v }
