package registry_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/registry/registrytest"
)

// newFeedEnv is newEnv with a running feed.
func newFeedEnv(t *testing.T) *env {
	t.Helper()
	e := registrytest.StartWithFeed(t, feed.Options{ProgressInterval: 50 * time.Millisecond})
	return &env{reg: e.Registry, store: e.Store, feed: e.Feed}
}

// next returns the next event that is not a progress bookmark (unless
// bookmarks is set), failing after waitTimeout.
func next(t *testing.T, ch <-chan registry.WatchEvent, bookmarks bool) registry.WatchEvent {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch closed")
			}
			if ev.Type == "BOOKMARK" && !bookmarks {
				if u := ev.Object.(*unstructured.Unstructured); u.GetAnnotations() == nil {
					continue
				}
			}
			return ev
		case <-timeout:
			t.Fatal("no watch event")
		}
	}
}

func name(ev registry.WatchEvent) string {
	return ev.Object.(*unstructured.Unstructured).GetName()
}

func TestWatch(t *testing.T) {
	e := newFeedEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	first, err := e.reg.Create(ctx, res, "default", widget("a", nil), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("initial_state_then_changes", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := e.reg.Watch(wctx, res, "default", everything())
		if err != nil {
			t.Fatal(err)
		}
		if ev := next(t, ch, false); ev.Type != "ADDED" || name(ev) != "a" {
			t.Fatalf("first event %s %s", ev.Type, name(ev))
		}
		if _, err := e.reg.Create(ctx, res, "default", widget("b", nil), registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, ch, false); ev.Type != "ADDED" || name(ev) != "b" {
			t.Fatalf("second event %s %s", ev.Type, name(ev))
		}
		if _, _, err := e.reg.Delete(ctx, res, "default", "b", nil); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, ch, false); ev.Type != "DELETED" || name(ev) != "b" {
			t.Fatalf("third event %s %s", ev.Type, name(ev))
		}
	})
	t.Run("resume", func(t *testing.T) {
		o := everything()
		o.ResourceVersion = first.Object.GetResourceVersion()
		ch, err := e.reg.Watch(ctx, res, "default", o)
		if err != nil {
			t.Fatal(err)
		}
		if ev := next(t, ch, false); ev.Type != "ADDED" || name(ev) != "b" {
			t.Fatalf("resumed event %s %s", ev.Type, name(ev))
		}
		if ev := next(t, ch, false); ev.Type != "DELETED" || name(ev) != "b" {
			t.Fatalf("resumed event %s %s", ev.Type, name(ev))
		}
	})
	t.Run("send_initial_events", func(t *testing.T) {
		yes := true
		o := everything()
		o.SendInitialEvents = &yes
		_, err := e.reg.Watch(ctx, res, "default", o)
		wantStatus(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
		o.ResourceVersionMatch = metav1.ResourceVersionMatchNotOlderThan
		o.AllowWatchBookmarks = true
		o.Labels = labels.Everything()
		ch, err := e.reg.Watch(ctx, res, "default", o)
		if err != nil {
			t.Fatal(err)
		}
		if ev := next(t, ch, false); ev.Type != "ADDED" || name(ev) != "a" {
			t.Fatalf("initial event %s", ev.Type)
		}
		ev := next(t, ch, false)
		u := ev.Object.(*unstructured.Unstructured)
		if ev.Type != "BOOKMARK" || u.GetAnnotations()["k8s.io/initial-events-end"] != "true" || u.GetResourceVersion() == "" {
			t.Fatalf("want the initial-events-end bookmark, got %s %v", ev.Type, u.Object)
		}
		// Progress bookmarks follow while idle.
		if ev := next(t, ch, true); ev.Type != "BOOKMARK" {
			t.Fatalf("want a progress bookmark, got %s", ev.Type)
		}
	})
	t.Run("expired", func(t *testing.T) {
		rev, err := e.store.CurrentRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.reg.Create(ctx, res, "default", widget("c", nil), registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.Compact(ctx, rev+1); err != nil {
			t.Fatal(err)
		}
		o := everything()
		o.ResourceVersion = strconv.FormatInt(rev, 10)
		ch, err := e.reg.Watch(ctx, res, "default", o)
		if err != nil {
			wantStatus(t, err, http.StatusGone, metav1.StatusReasonExpired)
			return
		}
		ev := next(t, ch, false)
		st, ok := ev.Object.(*metav1.Status)
		if ev.Type != "ERROR" || !ok || st.Code != http.StatusGone || st.Reason != metav1.StatusReasonExpired {
			t.Fatalf("want 410 ERROR, got %s %v", ev.Type, ev.Object)
		}
	})
}

// replica starts a second registry on e's store and feed.
func (e *env) replica(t *testing.T) *registry.Registry {
	t.Helper()
	other, err := registry.New(registry.Options{Store: e.store, Feed: e.feed})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// TestWatchCRDsFromOtherReplica runs a second registry on the same store
// and feed: it learns about CRDs written by the first through the feed.
func TestWatchCRDsFromOtherReplica(t *testing.T) {
	e := newFeedEnv(t)
	other := e.replica(t)
	e.widgets(t)
	waitFor(t, func() bool {
		_, ok := other.Lookup("example.com", "v1", "widgets")
		return ok
	})
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	if _, _, err := e.reg.Delete(t.Context(), crds, "", "widgets.example.com", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, ok := other.Lookup("example.com", "v1", "widgets")
		return !ok
	})
}

// TestWatchSharedEventInTwoVersions watches one CRD in its storage version
// and in a second served version: both see the same write, each in its own
// apiVersion, although the event's object is decoded once for both.
func TestWatchSharedEventInTwoVersions(t *testing.T) {
	e := newFeedEnv(t)
	ctx := t.Context()
	crd := widgetCRD()
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	versions = append(versions, map[string]any{"name": "v2", "served": true, "storage": false, "schema": anySchema()})
	if err := unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"); err != nil {
		t.Fatal(err)
	}
	crds := e.lookup(t, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	if _, err := e.reg.Create(ctx, crds, "", crd, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	v1, v2 := e.lookup(t, "example.com", "v1", "widgets"), e.lookup(t, "example.com", "v2", "widgets")
	var chans []<-chan registry.WatchEvent
	for _, res := range []*registry.Resource{v1, v2, v1} {
		ch, err := e.reg.Watch(ctx, res, "default", everything())
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	created, err := e.reg.Create(ctx, v1, "default", widget("a", map[string]any{"size": int64(1)}), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"example.com/v1", "example.com/v2", "example.com/v1"} {
		ev := next(t, chans[i], false)
		u := ev.Object.(*unstructured.Unstructured)
		if ev.Type != "ADDED" || u.GetAPIVersion() != want || u.GetResourceVersion() != created.Object.GetResourceVersion() {
			t.Fatalf("watcher %d: got %s %s rv %s, want ADDED %s rv %s", i, ev.Type, u.GetAPIVersion(), u.GetResourceVersion(), want, created.Object.GetResourceVersion())
		}
		if size, _, _ := unstructured.NestedInt64(u.Object, "spec", "size"); size != 1 {
			t.Fatalf("watcher %d: spec.size %d, want 1", i, size)
		}
		if (ev.Cache != nil) != (want == "example.com/v1") {
			t.Fatalf("watcher %d (%s): shared encoding cache %v", i, want, ev.Cache != nil)
		}
	}
}

// TestNamespaceTerminatingOnTwoReplicas checks that creates are refused in
// a Terminating namespace at once on the replica that deleted it and, as
// soon as the feed delivers the change, on a replica that had seen the
// namespace open.
func TestNamespaceTerminatingOnTwoReplicas(t *testing.T) {
	e := newFeedEnv(t)
	ctx := t.Context()
	other := e.replica(t)
	res := e.widgets(t)
	ns := e.lookup(t, "", "v1", "namespaces")
	if _, err := e.reg.Create(ctx, ns, "", obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "team"}}), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	held := widget("held", nil)
	held.SetFinalizers([]string{"example.com/hold"})
	if _, err := other.Create(ctx, res, "team", held, registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.reg.Delete(ctx, ns, "", "team", nil); err != nil {
		t.Fatal(err)
	}
	_, err := e.reg.Create(ctx, res, "team", widget("late", nil), registry.WriteOptions{})
	wantStatus(t, err, http.StatusForbidden, metav1.StatusReasonForbidden)
	waitFor(t, func() bool {
		w := widget("", nil)
		w.SetGenerateName("late-")
		_, err := other.Create(ctx, res, "team", w, registry.WriteOptions{})
		return apierrors.IsForbidden(err)
	})
	// Once the namespace is finalized (the namespace controller's job,
	// done here by hand) it is gone and both replicas answer NotFound.
	cur, err := e.reg.Get(ctx, ns, "", "team")
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(cur.Object, []any{}, "spec", "finalizers"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Update(ctx, ns, "", "team", cur, registry.WriteOptions{Subresource: "finalize"}); err != nil {
		t.Fatal(err)
	}
	for _, reg := range []*registry.Registry{e.reg, other} {
		waitFor(t, func() bool {
			_, err := reg.Create(ctx, res, "team", widget("after", nil), registry.WriteOptions{})
			return apierrors.IsNotFound(err)
		})
	}
}
