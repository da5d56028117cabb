package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// event is what the suite expects of one watch event: its type, the
// object's name and, when the write answered it, the resourceVersion.
type event struct {
	typ  watch.EventType
	name string
	rv   string
}

// String prints e for failure messages.
func (e event) String() string { return fmt.Sprintf("%s %s@%s", e.typ, e.name, e.rv) }

// TestWatchResume records the acknowledged versions of a series of writes
// and checks that watches resumed from several of them deliver exactly the
// later events, in order, with the acknowledged versions.
func TestWatchResume(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "watch")
	wc := c.widgets("watch")

	base := mustCreate(t, ctx, wc, widget("watch", "base", nil, validSpec()))
	var history []event
	record := func(typ watch.EventType, u *unstructured.Unstructured) {
		history = append(history, event{typ, u.GetName(), u.GetResourceVersion()})
	}
	a := mustCreate(t, ctx, wc, widget("watch", "a", nil, validSpec()))
	record(watch.Added, a)
	a.Object["spec"].(map[string]any)["size"] = int64(4)
	a, err := wc.Update(ctx, a, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	record(watch.Modified, a)
	b := mustCreate(t, ctx, wc, widget("watch", "b", nil, validSpec()))
	record(watch.Added, b)
	b, err = wc.Patch(ctx, "b", types.MergePatchType, []byte(`{"metadata":{"labels":{"pick":"yes"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	record(watch.Modified, b)
	if err := wc.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	history = append(history, event{watch.Deleted, "a", ""})
	b.Object["status"] = map[string]any{"phase": "Ready"}
	b, err = wc.UpdateStatus(ctx, b, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	record(watch.Modified, b)

	// Resume from the version before the series and from several of its
	// writes; a sentinel written after all of them must come next on each.
	type resumed struct {
		from  int
		watch watch.Interface
	}
	var watches []resumed
	for _, from := range []int{-1, 0, 2, 3, len(history) - 1} {
		rv := base.GetResourceVersion()
		if from >= 0 {
			rv = history[from].rv
		}
		w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			t.Fatalf("watch from %s: %v", rv, err)
		}
		defer w.Stop()
		watches = append(watches, resumed{from, w})
	}
	sentinel := mustCreate(t, ctx, wc, widget("watch", "sentinel", nil, validSpec()))
	for _, r := range watches {
		t.Run("After"+strconv.Itoa(r.from+1), func(t *testing.T) {
			want := append(slices.Clone(history[r.from+1:]), event{watch.Added, "sentinel", sentinel.GetResourceVersion()})
			expectEvents(t, r.watch, want)
		})
	}

	t.Run("LabelSelector", func(t *testing.T) {
		w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: base.GetResourceVersion(), LabelSelector: "pick=yes"})
		if err != nil {
			t.Fatalf("watch pick=yes: %v", err)
		}
		defer w.Stop()
		// b starts matching when it gains the label: ADDED, as Kubernetes'
		// watch cache reports it; then its status update.
		expectEvents(t, w, []event{{watch.Added, "b", history[3].rv}, {watch.Modified, "b", history[5].rv}})
		gone, err := wc.Patch(ctx, "b", types.MergePatchType, []byte(`{"metadata":{"labels":{"pick":null}}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		expectEvents(t, w, []event{{watch.Deleted, "b", gone.GetResourceVersion()}})
	})

	t.Run("SendInitialEvents", func(t *testing.T) {
		list, err := wc.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := wc.Watch(ctx, metav1.ListOptions{
			SendInitialEvents:    ptr.To(true),
			ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
			AllowWatchBookmarks:  true,
		})
		if err != nil {
			t.Fatalf("watch with sendInitialEvents: %v", err)
		}
		defer w.Stop()
		var got []string
		for {
			ev := nextEvent(t, w)
			u := ev.Object.(*unstructured.Unstructured)
			if ev.Type == watch.Bookmark {
				if u.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" {
					continue
				}
				rv, _ := strconv.ParseUint(u.GetResourceVersion(), 10, 64)
				listRV, _ := strconv.ParseUint(list.GetResourceVersion(), 10, 64)
				if rv < listRV {
					t.Errorf("initial-events-end bookmark at %d, below the list's %d", rv, listRV)
				}
				break
			}
			if ev.Type != watch.Added {
				t.Fatalf("initial event %s %s, want ADDED", ev.Type, u.GetName())
			}
			got = append(got, u.GetName())
		}
		slices.Sort(got)
		want := names(list.Items)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("initial events for %v, want %v", got, want)
		}
	})

	t.Run("DeletedCarriesLastState", func(t *testing.T) {
		mustCreate(t, ctx, wc, widget("watch", "last", map[string]string{"k": "v"}, validSpec()))
		patched, err := wc.Patch(ctx, "last", types.MergePatchType, []byte(`{"spec":{"size":7}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: patched.GetResourceVersion()})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if err := wc.Delete(ctx, "last", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		ev := nextEvent(t, w)
		u, _ := ev.Object.(*unstructured.Unstructured)
		if ev.Type != watch.Deleted || u == nil || u.GetName() != "last" {
			t.Fatalf("event after the delete: %s %v, want DELETED last", ev.Type, ev.Object)
		}
		if nested[int64](t, u, "spec", "size") != 7 || u.GetLabels()["k"] != "v" || u.GetUID() != patched.GetUID() {
			t.Errorf("DELETED object %v, want the last state (size 7, label k=v, uid %s)", u.Object, patched.GetUID())
		}
		if mustRV(u) <= mustRV(patched) {
			t.Errorf("DELETED at resourceVersion %s, not above the last write's %s", u.GetResourceVersion(), patched.GetResourceVersion())
		}
	})

	t.Run("TimeoutSeconds", func(t *testing.T) {
		w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: sentinel.GetResourceVersion(), TimeoutSeconds: ptr.To[int64](1)})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if ev.Type == watch.Error {
					t.Fatalf("watch with timeoutSeconds ended with an error event: %v", ev.Object)
				}
			case <-timeout.C:
				t.Fatalf("watch with timeoutSeconds=1 still open after 30s")
			}
		}
	})

	t.Run("InitialState", func(t *testing.T) {
		list, err := wc.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, it := range list.Items {
			want = append(want, it.GetName())
		}
		slices.Sort(want)
		// Without a resourceVersion or with "0", a watch starts with the
		// current objects as ADDED events.
		for _, rv := range []string{"", "0"} {
			w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				t.Fatalf("watch at resourceVersion %q: %v", rv, err)
			}
			var got []string
			for range want {
				ev := nextEvent(t, w)
				if ev.Type != watch.Added {
					t.Fatalf("initial event %s, want ADDED", ev.Type)
				}
				got = append(got, ev.Object.(*unstructured.Unstructured).GetName())
			}
			w.Stop()
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("watch at resourceVersion %q: initial ADDED events for %v, want %v", rv, got, want)
			}
		}
	})
}

// nextEvent returns the next event of w, failing on errors, a closed
// channel or a minute without events.
func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatalf("watch closed early")
		}
		if ev.Type == watch.Error {
			t.Fatalf("watch error event: %v", ev.Object)
		}
		return ev
	case <-timeout.C:
		t.Fatalf("no watch event within a minute")
	}
	return watch.Event{}
}

// expectEvents reads len(want) events from w (skipping bookmarks) and
// compares them with want; resourceVersions must increase.
func expectEvents(t *testing.T, w watch.Interface, want []event) {
	t.Helper()
	var last uint64
	for i, wantEv := range want {
		ev := nextEvent(t, w)
		for ev.Type == watch.Bookmark {
			ev = nextEvent(t, w)
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			t.Fatalf("event %d: object %T", i, ev.Object)
		}
		got := event{ev.Type, u.GetName(), u.GetResourceVersion()}
		if got.typ != wantEv.typ || got.name != wantEv.name || (wantEv.rv != "" && got.rv != wantEv.rv) {
			t.Fatalf("event %d = %v, want %v (all expected: %v)", i, got, wantEv, want)
		}
		rv, err := strconv.ParseUint(got.rv, 10, 64)
		if err != nil || rv <= last {
			t.Fatalf("event %d resourceVersion %q not above the previous %d (%v)", i, got.rv, last, err)
		}
		last = rv
	}
}

// requestLog records the requests a client sends.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

// wrap makes rt record every request's method and URL.
func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		l.mu.Lock()
		l.reqs = append(l.reqs, req.Method+" "+req.URL.String())
		l.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

// matching returns the recorded requests containing every part.
func (l *requestLog) matching(parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.reqs {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(r, p) }) {
			out = append(out, r)
		}
	}
	return out
}

// roundTripperFunc turns a function into an http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestDynamicInformer runs a dynamic informer with the streaming initial
// list (WatchList, client-go's default) and with plain list+watch, and
// checks that it syncs and sees adds, updates and deletes.
// It changes a process-wide client-go feature gate, so it is not parallel.
func TestDynamicInformer(t *testing.T) {
	s := startServer(t)
	c := newClients(t, s)
	installCRD(t, c, widgetCRD())
	if !clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
		t.Logf("WatchListClient is off by default here (KUBE_FEATURE_WatchListClient set?)")
	}
	// Every case also has an object labeled pick=no; the Selector cases'
	// informers select pick=yes and must never see it.
	for _, tc := range []struct {
		name      string
		watchList bool
		selector  string
	}{{"WatchList", true, ""}, {"ListWatch", false, ""}, {"WatchListSelector", true, "pick=yes"}, {"ListWatchSelector", false, "pick=yes"}} {
		t.Run(tc.name, func(t *testing.T) {
			clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, tc.watchList)
			ns := strings.ToLower(tc.name)
			createNamespace(t, c, ns)
			ctx := testContext(t, 60*time.Second)
			wc := c.widgets(ns)
			for _, name := range []string{"pre-1", "pre-2", "pre-3"} {
				mustCreate(t, ctx, wc, widget(ns, name, map[string]string{"pick": "yes"}, validSpec()))
			}
			mustCreate(t, ctx, wc, widget(ns, "other", map[string]string{"pick": "no"}, validSpec()))
			wantInitial := []string{"other", "pre-1", "pre-2", "pre-3"}
			if tc.selector != "" {
				wantInitial = wantInitial[1:]
			}

			reqs := &requestLog{}
			cfg := s.restConfig()
			cfg.Wrap(reqs.wrap)
			dyn, err := dynamic.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			inf, events := startWidgetInformer(t, dyn, ns, func(o *metav1.ListOptions) { o.LabelSelector = tc.selector })
			var initial []string
			for range wantInitial {
				ev := nextInformerEvent(t, events)
				if ev.typ != watch.Added {
					t.Fatalf("initial informer event %v, want ADDED", ev)
				}
				initial = append(initial, ev.name)
			}
			slices.Sort(initial)
			if !slices.Equal(initial, wantInitial) {
				t.Errorf("initial informer events for %v, want %v", initial, wantInitial)
			}
			if keys := inf.GetStore().ListKeys(); len(keys) != len(wantInitial) {
				t.Errorf("informer store holds %v, want %v", keys, wantInitial)
			}

			created := mustCreate(t, ctx, wc, widget(ns, "live", map[string]string{"pick": "yes"}, validSpec()))
			wantInformerEvent(t, events, event{watch.Added, "live", created.GetResourceVersion()})
			patched, err := wc.Patch(ctx, "live", types.MergePatchType, []byte(`{"spec":{"size":9}}`), metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantInformerEvent(t, events, event{watch.Modified, "live", patched.GetResourceVersion()})
			obj, ok, err := inf.GetStore().GetByKey(ns + "/live")
			if err != nil || !ok || nested[int64](t, obj.(*unstructured.Unstructured), "spec", "size") != 9 {
				t.Errorf("informer store after the patch: %v, %v, %v", obj, ok, err)
			}
			if err := wc.Delete(ctx, "pre-2", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			wantInformerEvent(t, events, event{watch.Deleted, "pre-2", ""})
			if _, ok, _ := inf.GetStore().GetByKey(ns + "/pre-2"); ok {
				t.Errorf("informer store still holds pre-2 after its delete event")
			}

			path := "/apis/" + testGroup + "/" + testVersion + "/namespaces/" + ns + "/widgets"
			streamed := reqs.matching(path, "watch=true", "sendInitialEvents=true")
			var lists []string
			for _, r := range reqs.matching("GET " + s.baseURL() + path) {
				if !strings.Contains(r, "watch=true") {
					lists = append(lists, r)
				}
			}
			if tc.watchList && (len(streamed) == 0 || len(lists) != 0) {
				t.Errorf("WatchList informer: want a sendInitialEvents watch and no list, got requests %q", reqs.matching(path))
			}
			if !tc.watchList && (len(streamed) != 0 || len(lists) == 0) {
				t.Errorf("list+watch informer: want a list and no sendInitialEvents watch, got requests %q", reqs.matching(path))
			}
		})
	}
}

// nextInformerEvent returns the next event handed to the informer's handler.
func nextInformerEvent(t *testing.T, events <-chan event) event {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case ev := <-events:
		return ev
	case <-timeout.C:
		t.Fatalf("no informer event within 30s")
	}
	return event{}
}

// wantInformerEvent fails unless the next informer event is want.
func wantInformerEvent(t *testing.T, events <-chan event, want event) {
	t.Helper()
	got := nextInformerEvent(t, events)
	if got.typ != want.typ || got.name != want.name || (want.rv != "" && got.rv != want.rv) {
		t.Fatalf("informer event %v, want %v", got, want)
	}
}

// startWidgetInformer starts a dynamic informer on the widgets of ns,
// waits for it to sync and stops it when the test ends. The channel gets
// every add, update and delete it reports; it holds 1000 and the informer
// buffers beyond that.
func startWidgetInformer(t *testing.T, dyn dynamic.Interface, ns string, tweak dynamicinformer.TweakListOptionsFunc) (cache.SharedIndexInformer, <-chan event) {
	t.Helper()
	events := make(chan event, 1000)
	send := func(typ watch.EventType, obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		u := obj.(*unstructured.Unstructured)
		events <- event{typ, u.GetName(), u.GetResourceVersion()}
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, ns, tweak)
	inf := factory.ForResource(widgetsGVR).Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { send(watch.Added, obj) },
		UpdateFunc: func(_, obj any) { send(watch.Modified, obj) },
		DeleteFunc: func(obj any) { send(watch.Deleted, obj) },
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	t.Cleanup(func() {
		close(stop)
		factory.Shutdown()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for gvr, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync", gvr)
		}
	}
	return inf, events
}
