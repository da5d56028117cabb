package e2e

import (
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// TestRestart stops the server cleanly with a watch open, starts it again on
// the same data and checks that CRDs, namespaces and objects are unchanged
// and that a watch resumed from the last version seen before the restart
// gets exactly the later events.
func TestRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	crd := installCRD(t, c, widgetCRD())
	createNamespace(t, c, "restart")
	wc := c.widgets("restart")
	start, err := wc.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: start.GetResourceVersion()})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	a := mustCreate(t, ctx, wc, widget("restart", "a", map[string]string{"k": "v"}, validSpec()))
	b := mustCreate(t, ctx, wc, widget("restart", "b", nil, validSpec()))
	a, err = wc.Patch(ctx, "a", types.MergePatchType, []byte(`{"spec":{"size":6}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Object["status"] = map[string]any{"phase": "Ready"}
	if a, err = wc.UpdateStatus(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, w, []event{
		{watch.Added, "a", ""}, {watch.Added, "b", b.GetResourceVersion()},
		{watch.Modified, "a", ""}, {watch.Modified, "a", a.GetResourceVersion()},
	})
	lastSeen := a.GetResourceVersion()
	before := map[string]*unstructured.Unstructured{"a": a, "b": b}

	s.stop()
	// A clean shutdown ends open watches.
	for range w.ResultChan() {
	}
	s.start()
	c = newClients(t, s)
	wc = c.widgets("restart")

	got, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, widgetsCRD, metav1.GetOptions{})
	if err != nil || got.UID != crd.UID || !established(got) {
		t.Fatalf("CRD after restart: %v (uid %s, was %s; established %v)", err, got.UID, crd.UID, established(got))
	}
	if _, err := c.core.CoreV1().Namespaces().Get(ctx, "restart", metav1.GetOptions{}); err != nil {
		t.Errorf("namespace after restart: %v", err)
	}
	for name, want := range before {
		got := mustGet(t, ctx, wc, name)
		if got.GetResourceVersion() != want.GetResourceVersion() || got.GetUID() != want.GetUID() || got.GetGeneration() != want.GetGeneration() {
			t.Errorf("%s after restart: rv %s uid %s generation %d; before: %s %s %d", name,
				got.GetResourceVersion(), got.GetUID(), got.GetGeneration(),
				want.GetResourceVersion(), want.GetUID(), want.GetGeneration())
		}
		if contentHash(got.Object["spec"].(map[string]any)) != contentHash(want.Object["spec"].(map[string]any)) {
			t.Errorf("%s spec after restart %v, before %v", name, got.Object["spec"], want.Object["spec"])
		}
	}
	if p, _, _ := unstructured.NestedString(mustGet(t, ctx, wc, "a").Object, "status", "phase"); p != "Ready" {
		t.Errorf("a's status.phase after restart %q, want Ready", p)
	}
	list, err := wc.List(ctx, metav1.ListOptions{LabelSelector: "k=v"})
	if err != nil || len(list.Items) != 1 || list.Items[0].GetName() != "a" {
		t.Errorf("label selector k=v after restart: %v, %v", names(list.Items), err)
	}

	cObj := mustCreate(t, ctx, wc, widget("restart", "c", nil, validSpec()))
	newRV, err1 := strconv.ParseUint(cObj.GetResourceVersion(), 10, 64)
	oldRV, err2 := strconv.ParseUint(lastSeen, 10, 64)
	if err1 != nil || err2 != nil || newRV <= oldRV {
		t.Errorf("first write after restart got resourceVersion %s, last seen before %s", cObj.GetResourceVersion(), lastSeen)
	}
	b2, err := wc.Patch(ctx, "b", types.MergePatchType, []byte(`{"spec":{"color":"blue"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := wc.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	resumed, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: lastSeen})
	if err != nil {
		t.Fatalf("watch from %s after restart: %v", lastSeen, err)
	}
	defer resumed.Stop()
	sentinel := mustCreate(t, ctx, wc, widget("restart", "sentinel", nil, validSpec()))
	expectEvents(t, resumed, []event{
		{watch.Added, "c", cObj.GetResourceVersion()},
		{watch.Modified, "b", b2.GetResourceVersion()},
		{watch.Deleted, "a", ""},
		{watch.Added, "sentinel", sentinel.GetResourceVersion()},
	})
}
