package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// crashDeleteObjects is how many widgets the deletions must remove; enough
// that the deletion is still running when the server is killed.
const crashDeleteObjects = 300

// TestCrashDuringDeletion kills the server with SIGKILL right after it
// accepted the deletion of a namespace and of a CRD, each holding many
// objects, and checks that after a restart both deletions finish.
func TestCrashDuringDeletion(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	installCRD(t, c, widgetCRD())
	installCRD(t, c, gadgetCRD())
	createNamespace(t, c, "doomed")
	createNamespace(t, c, "kept")
	fill(t, c, "doomed", crashDeleteObjects)
	fill(t, c, "kept", 10)
	gc := c.dynamic.Resource(gadgetsGVR)
	for i := range crashDeleteObjects {
		g := widget("", fmt.Sprintf("g%d", i), nil, map[string]any{"owner": "e2e"})
		g.SetAPIVersion(testGroup + "/" + testVersion)
		g.SetKind("Gadget")
		mustCreate(t, ctx, gc, g)
	}

	if err := c.core.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace: %v", err)
	}
	if err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, gadgetsCRD, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete CRD: %v", err)
	}
	s.kill()
	s.start()
	c = newClients(t, s)

	// The namespace and the CRD finish going away.
	waitGone(t, "namespace doomed", func(opts metav1.ListOptions) (string, error) {
		l, err := c.core.CoreV1().Namespaces().List(ctx, opts)
		if err != nil || len(l.Items) == 0 {
			return "", err
		}
		return l.ResourceVersion, nil
	}, func(opts metav1.ListOptions) (watch.Interface, error) {
		return c.core.CoreV1().Namespaces().Watch(ctx, opts)
	}, "doomed")
	waitGone(t, "CRD "+gadgetsCRD, func(opts metav1.ListOptions) (string, error) {
		l, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().List(ctx, opts)
		if err != nil || len(l.Items) == 0 {
			return "", err
		}
		return l.ResourceVersion, nil
	}, func(opts metav1.ListOptions) (watch.Interface, error) {
		return c.apiext.ApiextensionsV1().CustomResourceDefinitions().Watch(ctx, opts)
	}, gadgetsCRD)

	all, err := c.dynamic.Resource(widgetsGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list widgets: %v", err)
	}
	for _, it := range all.Items {
		if it.GetNamespace() != "kept" {
			t.Errorf("widget %s/%s survived the deletion of its namespace", it.GetNamespace(), it.GetName())
		}
	}
	if len(all.Items) != 10 {
		t.Errorf("%d widgets left, want the 10 in namespace kept", len(all.Items))
	}
	installCRD(t, c, gadgetCRD())
	if l, err := c.dynamic.Resource(gadgetsGVR).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("gadgets after the CRD was deleted and recreated: %d, %v; want none", len(l.Items), err)
	}
}

// fill creates n widgets in ns from 8 goroutines.
func fill(t *testing.T, c *clients, ns string, n int) {
	t.Helper()
	ctx := testContext(t, time.Minute)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				if _, err := c.widgets(ns).Create(ctx, widget(ns, fmt.Sprintf("w%d", i), nil, validSpec()), metav1.CreateOptions{}); err != nil {
					t.Errorf("create widget %d in %s: %v", i, ns, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// waitGone lists the object called name with a field selector and, while it
// exists, watches from the list's version until it is deleted.
func waitGone(t *testing.T, what string, list func(metav1.ListOptions) (string, error), watchFrom func(metav1.ListOptions) (watch.Interface, error), name string) {
	t.Helper()
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	rv, err := list(metav1.ListOptions{FieldSelector: sel})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("list %s: %v", what, err)
	}
	if rv == "" {
		return
	}
	w, err := watchFrom(metav1.ListOptions{FieldSelector: sel, ResourceVersion: rv})
	if err != nil {
		t.Fatalf("watch %s: %v", what, err)
	}
	defer w.Stop()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch of %s ended before it was deleted", what)
			}
			if ev.Type == watch.Deleted {
				return
			}
		case <-timeout.C:
			t.Fatalf("%s was not deleted within a minute", what)
		}
	}
}
