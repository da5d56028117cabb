package e2e

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
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

// TestInformerAcrossRestart keeps a dynamic informer running while the
// server restarts on the same address: it reconnects by itself, and events
// written after the restart reach it; its cache ends equal to the store.
func TestInformerAcrossRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "survive")
	wc := c.widgets("survive")
	for _, name := range []string{"a", "b", "c"} {
		mustCreate(t, ctx, wc, widget("survive", name, nil, validSpec()))
	}

	inf, events := startWidgetInformer(t, c.dynamic, "survive", nil)
	for range 3 {
		if ev := nextInformerEvent(t, events); ev.typ != watch.Added {
			t.Fatalf("initial informer event %v", ev)
		}
	}

	s.restartInPlace()
	c = newClients(t, s)
	wc = c.widgets("survive")
	d := mustCreate(t, ctx, wc, widget("survive", "d", nil, validSpec()))
	b, err := wc.Patch(ctx, "b", types.MergePatchType, []byte(`{"spec":{"size":8}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := wc.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The reconnecting informer resumes its watch or relists; either way
	// its cache must reach the new state, and it reports each change.
	want := map[string]string{"survive/b": b.GetResourceVersion(), "survive/c": "", "survive/d": d.GetResourceVersion()}
	wantEvents := []string{"ADDED d", "MODIFIED b", "DELETED a"}
	seen := map[string]bool{}
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for !cacheHolds(inf.GetStore(), want) || slices.ContainsFunc(wantEvents, func(e string) bool { return !seen[e] }) {
		select {
		case ev := <-events:
			seen[string(ev.typ)+" "+ev.name] = true
		case <-timeout.C:
			t.Fatalf("the informer did not reach the state after the restart within a minute: cache %v, events %v, want %v", inf.GetStore().ListKeys(), seen, wantEvents)
		}
	}
}

// cacheHolds reports whether store holds exactly the keys of want, each at
// the resourceVersion given (any when "").
func cacheHolds(store cache.Store, want map[string]string) bool {
	items := store.List()
	if len(items) != len(want) {
		return false
	}
	for _, it := range items {
		u := it.(*unstructured.Unstructured)
		rv, ok := want[u.GetNamespace()+"/"+u.GetName()]
		if !ok || (rv != "" && rv != u.GetResourceVersion()) {
			return false
		}
	}
	return true
}

// TestDataDirInUse starts a second server on the data directory of a
// running one: it must refuse to start, and the first keeps serving.
func TestDataDirInUse(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	createNamespace(t, c, "before")
	second := exec.CommandContext(ctx, setpointBin, "serve", "--data-dir", s.dataDir, "--listen", "127.0.0.1:0",
		"--kubeconfig-out", filepath.Join(t.TempDir(), "kubeconfig"))
	out, err := second.CombinedOutput()
	if err == nil || strings.Contains(string(out), listeningPrefix) {
		t.Fatalf("a second server on a data directory in use started (err %v):\n%s", err, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("the second server neither started nor exited: %v", ctx.Err())
	}
	t.Logf("second server refused: %v\n%s", err, out)
	createNamespace(t, c, "after")
}
