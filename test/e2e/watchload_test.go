package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
)

// Watch load test sizes: loadWriters goroutines each make loadObjects
// objects, update each loadUpdates times and delete every other one.
const (
	loadWriters = 16
	loadObjects = 6
	loadUpdates = 30
	loadNoteLen = 2048
)

// ackedEvent is a write the server acknowledged, as a watcher should see it.
type ackedEvent struct {
	typ watch.EventType
	key string // namespace/name
	rv  uint64 // 0 for deletes: the client is not told their revision
	hot bool   // the object has label hot=yes
}

// TestWatchUnderLoad runs concurrent writers against four watchers opened
// before them: one namespace, all namespaces, a label selector, and one that
// reads nothing until the writers are done. Each must deliver exactly the
// acknowledged writes it selects, once each, in revision order.
func TestWatchUnderLoad(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "load-a")
	createNamespace(t, c, "load-b")
	start, err := c.dynamic.Resource(widgetsGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	from := metav1.ListOptions{ResourceVersion: start.GetResourceVersion()}
	hotOnly := from
	hotOnly.LabelSelector = "hot=yes"
	type watcher struct {
		name   string
		w      watch.Interface
		filter func(ackedEvent) bool
	}
	open := func(name string, ri dynamic.ResourceInterface, opts metav1.ListOptions, filter func(ackedEvent) bool) watcher {
		w, err := ri.Watch(ctx, opts)
		if err != nil {
			t.Fatalf("watch %s: %v", name, err)
		}
		t.Cleanup(w.Stop)
		return watcher{name, w, filter}
	}
	all := func(ackedEvent) bool { return true }
	watchers := []watcher{
		open("NamespaceA", c.widgets("load-a"), from, func(e ackedEvent) bool { return strings.HasPrefix(e.key, "load-a/") }),
		open("AllNamespaces", c.dynamic.Resource(widgetsGVR), from, all),
		open("HotLabel", c.dynamic.Resource(widgetsGVR), hotOnly, func(e ackedEvent) bool { return e.hot }),
	}
	slow := open("Slow", c.dynamic.Resource(widgetsGVR), from, all)

	// Fast watchers read as events come, until the end marker.
	got := make([][]watch.Event, len(watchers))
	var readers sync.WaitGroup
	for i, w := range watchers {
		readers.Add(1)
		go func() {
			defer readers.Done()
			got[i] = readUntilEnd(w.w)
		}()
	}

	var (
		mu     sync.Mutex
		acked  []ackedEvent
		errs   []error
		writes sync.WaitGroup
	)
	for g := range loadWriters {
		writes.Add(1)
		go func() {
			defer writes.Done()
			var mine []ackedEvent
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			for i := range loadObjects {
				ns := []string{"load-a", "load-b"}[(g+i)%2]
				hot := i%2 == 0
				labels := map[string]string{"hot": "no"}
				if hot {
					labels["hot"] = "yes"
				}
				wc := c.widgets(ns)
				spec := validSpec()
				spec["note"] = strings.Repeat("n", loadNoteLen)
				obj, err := wc.Create(ctx, widget(ns, fmt.Sprintf("g%d-o%d", g, i), labels, spec), metav1.CreateOptions{})
				if err != nil {
					fail(err)
					return
				}
				key := ns + "/" + obj.GetName()
				mine = append(mine, ackedEvent{watch.Added, key, mustRV(obj), hot})
				for u := range loadUpdates {
					if err := unstructured.SetNestedField(obj.Object, int64(1+u%10), "spec", "size"); err != nil {
						fail(err)
						return
					}
					if obj, err = wc.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
						fail(err)
						return
					}
					mine = append(mine, ackedEvent{watch.Modified, key, mustRV(obj), hot})
				}
				if i%2 == 1 {
					if err := wc.Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); err != nil {
						fail(err)
						return
					}
					mine = append(mine, ackedEvent{watch.Deleted, key, 0, hot})
				}
			}
			mu.Lock()
			acked = append(acked, mine...)
			mu.Unlock()
		}()
	}
	writes.Wait()
	for _, err := range errs {
		t.Errorf("write: %v", err)
	}
	end := widget("load-a", "zz-end", map[string]string{"hot": "yes"}, validSpec())
	mustCreate(t, ctx, c.widgets("load-a"), end)

	done := make(chan struct{})
	go func() {
		readers.Wait()
		close(done)
	}()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	select {
	case <-done:
	case <-timeout.C:
		for _, w := range watchers {
			w.w.Stop()
		}
		<-done
		t.Errorf("watchers did not see the end marker within a minute")
	}
	for i, w := range watchers {
		checkStream(t, w.name, got[i], acked, w.filter)
	}
	checkStream(t, "Slow", readUntilEnd(slow.w), acked, slow.filter)
}

// mustRV parses u's resourceVersion; a bad one becomes 0, which no event
// matches.
func mustRV(u *unstructured.Unstructured) uint64 {
	rv, _ := strconv.ParseUint(u.GetResourceVersion(), 10, 64)
	return rv
}

// readUntilEnd reads w until the ADDED event of zz-end or the end of the
// stream, and returns the events before the marker.
func readUntilEnd(w watch.Interface) []watch.Event {
	var out []watch.Event
	for ev := range w.ResultChan() {
		if u, ok := ev.Object.(*unstructured.Unstructured); ok && ev.Type == watch.Added && u.GetName() == "zz-end" {
			return out
		}
		out = append(out, ev)
	}
	return append(out, watch.Event{Type: watch.Error, Object: &unstructured.Unstructured{Object: map[string]any{"reason": "stream ended before the end marker"}}})
}

// checkStream compares what a watcher got with the acknowledged writes
// filter selects: the same events, once each, revisions strictly increasing.
func checkStream(t *testing.T, name string, events []watch.Event, acked []ackedEvent, filter func(ackedEvent) bool) {
	t.Helper()
	want := map[string]bool{}
	wantDeletes := map[string]bool{}
	for _, e := range acked {
		if !filter(e) {
			continue
		}
		if e.typ == watch.Deleted {
			wantDeletes[e.key] = true
		} else {
			want[fmt.Sprintf("%s %s@%d", e.typ, e.key, e.rv)] = true
		}
	}
	var last uint64
	problems := 0
	report := func(format string, args ...any) {
		problems++
		if problems <= 5 {
			t.Errorf("%s: "+format, append([]any{name}, args...)...)
		}
	}
	for i, ev := range events {
		if ev.Type == watch.Bookmark {
			continue
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || ev.Type == watch.Error {
			report("event %d is %s %v", i, ev.Type, ev.Object)
			continue
		}
		rv := mustRV(u)
		if rv <= last {
			report("event %d %s %s at %d not above the previous %d", i, ev.Type, u.GetName(), rv, last)
		}
		last = rv
		key := u.GetNamespace() + "/" + u.GetName()
		if ev.Type == watch.Deleted {
			if !wantDeletes[key] {
				report("unexpected or repeated DELETED %s", key)
			}
			delete(wantDeletes, key)
			continue
		}
		id := fmt.Sprintf("%s %s@%d", ev.Type, key, rv)
		if !want[id] {
			report("unexpected or repeated event %s", id)
		}
		delete(want, id)
	}
	for id := range want {
		report("missed %s", id)
	}
	for key := range wantDeletes {
		report("missed DELETED %s", key)
	}
	if problems > 5 {
		t.Errorf("%s: %d problems in all, over %d events", name, problems, len(events))
	}
}
