package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
)

// compactedLine matches the server's debug log line for a compaction.
var compactedLine = regexp.MustCompile(`compacted change log.*revision=(\d+)`)

// TestCompaction runs the server with a tiny compaction window, waits for
// its log to report a compaction past some writes, and checks that reads
// from before it answer 410 Expired while reads after it still work.
func TestCompaction(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--compaction-window", "1ns", "--compaction-interval", "20ms", "--log-level", "debug")
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "compact")
	wc := c.widgets("compact")
	first := mustCreate(t, ctx, wc, widget("compact", "x", nil, validSpec()))
	mustCreate(t, ctx, wc, widget("compact", "y", nil, validSpec()))
	page, err := wc.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil || page.GetContinue() == "" {
		t.Fatalf("first page: %v (continue %q)", err, page.GetContinue())
	}
	last, err := wc.Patch(ctx, "x", types.MergePatchType, []byte(`{"spec":{"size":4}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lastRV, _ := strconv.ParseUint(last.GetResourceVersion(), 10, 64)
	s.waitLog("a compaction past revision "+last.GetResourceVersion(), func(line string) bool {
		m := compactedLine.FindStringSubmatch(line)
		if m == nil {
			return false
		}
		rev, _ := strconv.ParseUint(m[1], 10, 64)
		return rev >= lastRV
	})

	t.Run("WatchFromCompacted", func(t *testing.T) {
		w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: first.GetResourceVersion()})
		if err != nil {
			if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
				t.Fatalf("watch from a compacted revision: want 410, got %v", err)
			}
			return
		}
		defer w.Stop()
		ev := <-w.ResultChan()
		st, ok := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !ok || st.Code != 410 || (st.Reason != metav1.StatusReasonExpired && st.Reason != metav1.StatusReasonGone) {
			t.Errorf("watch from a compacted revision: first event %s %#v, want an ERROR with a 410 Expired Status", ev.Type, ev.Object)
		}
	})
	t.Run("ListExactCompacted", func(t *testing.T) {
		_, err := wc.List(ctx, metav1.ListOptions{ResourceVersion: first.GetResourceVersion(), ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Errorf("exact list at a compacted revision: want 410, got %v", err)
		}
	})
	t.Run("ContinueCompacted", func(t *testing.T) {
		_, err := wc.List(ctx, metav1.ListOptions{Limit: 1, Continue: page.GetContinue()})
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Errorf("continue from a compacted snapshot: want 410, got %v", err)
		}
	})
	t.Run("CurrentStillServed", func(t *testing.T) {
		list, err := wc.List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 2 {
			t.Fatalf("list after compaction: %v, %v", names(list.Items), err)
		}
		w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			t.Fatalf("watch from the current revision: %v", err)
		}
		defer w.Stop()
		z := mustCreate(t, ctx, wc, widget("compact", "z", nil, validSpec()))
		expectEvents(t, w, []event{{watch.Added, "z", z.GetResourceVersion()}})
	})
}

// TestInformerUnderCompaction runs dynamic informers, in both initial-list
// modes, against a server that compacts its change log every few
// milliseconds while writers are busy. Watches that fall behind get 410 and
// the informers relist; in the end each cache must equal the stored state.
// It changes a process-wide client-go feature gate, so it is not parallel.
func TestInformerUnderCompaction(t *testing.T) {
	s := startServer(t, "--compaction-window", "1ns", "--compaction-interval", "5ms")
	c := newClients(t, s)
	installCRD(t, c, widgetCRD())
	for _, tc := range []struct {
		name      string
		watchList bool
	}{{"WatchList", true}, {"ListWatch", false}} {
		t.Run(tc.name, func(t *testing.T) {
			clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, tc.watchList)
			ns := "compact-" + strings.ToLower(tc.name)
			createNamespace(t, c, ns)
			ctx := testContext(t, 2*time.Minute)
			wc := c.widgets(ns)

			inf, events := startWidgetInformer(t, c.dynamic, ns, nil)

			var (
				mu    sync.Mutex
				final = map[string]string{} // name -> last acknowledged resourceVersion, "" once deleted
				wg    sync.WaitGroup
			)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					name := fmt.Sprintf("w%d", g)
					obj, err := wc.Create(ctx, widget(ns, name, nil, validSpec()), metav1.CreateOptions{})
					for i := 0; err == nil && i < 40; i++ {
						mu.Lock()
						final[name] = obj.GetResourceVersion()
						mu.Unlock()
						obj.Object["spec"].(map[string]any)["size"] = int64(1 + i%10)
						obj, err = wc.Update(ctx, obj, metav1.UpdateOptions{})
					}
					if err == nil && g%2 == 0 {
						err = wc.Delete(ctx, name, metav1.DeleteOptions{})
						obj = nil
					}
					if err != nil {
						t.Errorf("writer %d: %v", g, err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					final[name] = ""
					if obj != nil {
						final[name] = obj.GetResourceVersion()
					}
				}()
			}
			wg.Wait()
			want := map[string]string{}
			for name, rv := range final {
				if rv != "" {
					want[ns+"/"+name] = rv
				}
			}
			// matches reports whether the cache holds exactly the final state.
			matches := func() bool {
				items := inf.GetStore().List()
				if len(items) != len(want) {
					return false
				}
				for _, it := range items {
					u := it.(*unstructured.Unstructured)
					if want[u.GetNamespace()+"/"+u.GetName()] != u.GetResourceVersion() {
						return false
					}
				}
				return true
			}
			timeout := time.NewTimer(time.Minute)
			defer timeout.Stop()
			for !matches() {
				select {
				case <-events:
				case <-timeout.C:
					t.Fatalf("the informer cache did not reach the final state within a minute: has %v, want %v", inf.GetStore().ListKeys(), want)
				}
			}
		})
	}
}

// TestRevisionAfterCompactionAndRestart deletes every object, lets the
// change log be compacted past the deletes, restarts the server (cleanly,
// then with SIGKILL) and checks that new writes get revisions above every
// revision handed out before: a revision is never reused.
func TestRevisionAfterCompactionAndRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--compaction-window", "1ns", "--compaction-interval", "20ms", "--log-level", "debug")
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "reuse")
	for round, end := range []func(){s.stop, s.kill} {
		wc := c.widgets("reuse")
		obj := mustCreate(t, ctx, wc, widget("reuse", "x", nil, validSpec()))
		for i := range 3 {
			var err error
			if obj, err = wc.Patch(ctx, "x", types.MergePatchType, fmt.Appendf(nil, `{"spec":{"size":%d}}`, i+4), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: obj.GetResourceVersion()})
		if err != nil {
			t.Fatal(err)
		}
		if err := wc.Delete(ctx, "x", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		ev := nextEvent(t, w)
		w.Stop()
		deleted := mustRV(ev.Object.(*unstructured.Unstructured))
		s.waitLog(fmt.Sprintf("a compaction past revision %d", deleted), func(line string) bool {
			m := compactedLine.FindStringSubmatch(line)
			if m == nil {
				return false
			}
			rev, _ := strconv.ParseUint(m[1], 10, 64)
			return rev >= deleted
		})
		end()
		s.start()
		c = newClients(t, s)
		next := mustCreate(t, ctx, c.widgets("reuse"), widget("reuse", fmt.Sprintf("after-%d", round), nil, validSpec()))
		if got := mustRV(next); got <= deleted {
			t.Errorf("round %d: first write after the restart got resourceVersion %d, not above the delete's %d: revisions are reused", round, got, deleted)
		}
		if err := c.widgets("reuse").Delete(ctx, next.GetName(), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}
