package feed

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

const resource = "example.com/widgets"

func newStore(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "feed.db"), sqlite.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return s
}

// runFeed starts Run in a goroutine; cleanup closes the feed and checks Run.
func runFeed(tb testing.TB, s storage.Store, opts Options) *Feed {
	tb.Helper()
	f := New(s, opts)
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	tb.Cleanup(func() {
		if err := f.Close(); err != nil {
			tb.Errorf("close feed: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("run: %v", err)
		}
	})
	return f
}

func key(ns, name string) storage.Key {
	return storage.Key{Resource: resource, Namespace: ns, Name: name}
}

func create(tb testing.TB, s storage.Store, ns, name string, l map[string]string) storage.Object {
	tb.Helper()
	o, err := s.Create(context.Background(), key(ns, name), []byte(`{"n":"`+name+`"}`), l)
	if err != nil {
		tb.Fatalf("create %s/%s: %v", ns, name, err)
	}
	return o
}

func update(tb testing.TB, s storage.Store, ns, name string, l map[string]string) storage.Object {
	tb.Helper()
	o, err := s.Update(context.Background(), key(ns, name), []byte(`{"n":"`+name+`","u":1}`), l, storage.Precondition{})
	if err != nil {
		tb.Fatalf("update %s/%s: %v", ns, name, err)
	}
	return o
}

func watch(tb testing.TB, f *Feed, opts WatchOptions) *Watcher {
	tb.Helper()
	if opts.Resource == "" {
		opts.Resource = resource
	}
	w, err := f.Watch(context.Background(), opts)
	if err != nil {
		tb.Fatalf("watch %+v: %v", opts, err)
	}
	tb.Cleanup(w.Stop)
	return w
}

// next returns the next non-progress event, failing after a deadline or
// when the watcher ends.
func next(tb testing.TB, w *Watcher) *Event {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				tb.Fatalf("watcher ended: %v", w.Err())
			}
			if ev.Type != Progress {
				return ev
			}
		case <-deadline:
			tb.Fatal("timed out waiting for an event")
		}
	}
}

// collect reads events until one has revision >= upTo.
func collect(tb testing.TB, w *Watcher, upTo int64) []*Event {
	tb.Helper()
	var out []*Event
	for len(out) == 0 || out[len(out)-1].Revision < upTo {
		out = append(out, next(tb, w))
	}
	return out
}

// expected computes what a watcher with opts must receive after rev from the
// store's log, using the store as the reference model.
func expected(tb testing.TB, s storage.Store, opts WatchOptions, after, upTo int64) []Event {
	tb.Helper()
	var out []Event
	for after < upTo {
		evs, err := s.Changes(context.Background(), after, 1000)
		if err != nil {
			tb.Fatalf("changes after %d: %v", after, err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			sh := &shared{ev: &evs[i]}
			if ev := sh.forWatcher(&Watcher{opts: opts}); ev != nil && evs[i].Revision() <= upTo {
				out = append(out, Event{Type: ev.Type, Revision: ev.Revision, Object: ev.Object})
			}
		}
		after = evs[len(evs)-1].Revision()
	}
	return out
}

func checkSame(tb testing.TB, name string, got []*Event, want []Event) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d events, want %d", name, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], &want[i]
		if g.Type != w.Type || g.Revision != w.Revision || g.Object.Key != w.Object.Key {
			tb.Fatalf("%s: event %d: got %v %d %v, want %v %d %v", name, i, g.Type, g.Revision, g.Object.Key, w.Type, w.Revision, w.Object.Key)
		}
	}
}

func currentRevision(tb testing.TB, s storage.Store) int64 {
	tb.Helper()
	rev, err := s.CurrentRevision(context.Background())
	if err != nil {
		tb.Fatalf("current revision: %v", err)
	}
	return rev
}

func TestConcurrentWritersManyWatchers(t *testing.T) {
	s := newStore(t)
	f := runFeed(t, s, Options{WatcherBuffer: 64})
	start := currentRevision(t, s)
	if err := f.WaitForRevision(t.Context(), start); err != nil {
		t.Fatal(err)
	}
	const writers, perWriter, watchers = 32, 10, 50
	var ws []*Watcher
	var opts []WatchOptions
	for i := range watchers {
		o := WatchOptions{Resource: resource, After: start}
		switch i % 4 {
		case 1:
			o.Namespace = fmt.Sprintf("ns%d", i%writers)
		case 2:
			o.Labels = labels.SelectorFromSet(labels.Set{"parity": "even"})
		case 3:
			o.Name = fmt.Sprintf("obj%d-%d", i%writers, i%perWriter)
		}
		opts = append(opts, o)
		ws = append(ws, watch(t, f, o))
	}
	var wg sync.WaitGroup
	for wr := range writers {
		wg.Go(func() {
			ns := fmt.Sprintf("ns%d", wr)
			for j := range perWriter {
				name := fmt.Sprintf("obj%d-%d", wr, j)
				parity := map[bool]string{true: "even", false: "odd"}
				if _, err := s.Create(t.Context(), key(ns, name), []byte(`{}`), map[string]string{"parity": parity[j%2 == 0]}); err != nil {
					t.Errorf("create: %v", err)
					return
				}
				if _, err := s.Update(t.Context(), key(ns, name), []byte(`{"u":1}`), map[string]string{"parity": parity[j%2 == 1]}, storage.Precondition{}); err != nil {
					t.Errorf("update: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	end := currentRevision(t, s)
	if err := f.WaitForRevision(t.Context(), end); err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		want := expected(t, s, opts[i], start, end)
		var got []*Event
		for len(got) < len(want) {
			got = append(got, next(t, w))
		}
		checkSame(t, fmt.Sprintf("watcher%d", i), got, want)
	}
}

func TestCatchUpFromOldRevision(t *testing.T) {
	s := newStore(t)
	var revs []int64
	for i := range 10 {
		revs = append(revs, create(t, s, "ns", fmt.Sprintf("o%d", i), nil).Revision)
	}
	f := runFeed(t, s, Options{BatchSize: 3})
	if err := f.WaitForRevision(t.Context(), revs[9]); err != nil {
		t.Fatal(err)
	}
	w := watch(t, f, WatchOptions{After: revs[2]})
	live := create(t, s, "ns", "live", nil)
	got := collect(t, w, live.Revision)
	checkSame(t, "catch-up", got, expected(t, s, w.opts, revs[2], live.Revision))
}

func TestWatchRejectsCompactedAndFutureRevisions(t *testing.T) {
	s := newStore(t)
	for i := range 5 {
		create(t, s, "ns", fmt.Sprintf("o%d", i), nil)
	}
	cur := currentRevision(t, s)
	if err := s.Compact(t.Context(), cur-1); err != nil {
		t.Fatal(err)
	}
	f := runFeed(t, s, Options{})
	if err := f.WaitForRevision(t.Context(), cur); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Watch(context.Background(), WatchOptions{Resource: resource, After: cur - 2}); !errors.Is(err, storage.ErrCompacted) {
		t.Errorf("watch below compaction: got %v, want ErrCompacted", err)
	}
	if _, err := f.Watch(context.Background(), WatchOptions{Resource: resource, After: cur + 5}); !errors.Is(err, storage.ErrFutureRevision) {
		t.Errorf("watch in the future: got %v, want ErrFutureRevision", err)
	}
	w := watch(t, f, WatchOptions{After: cur - 1})
	if ev := next(t, w); ev.Revision != cur {
		t.Errorf("got revision %d, want %d", ev.Revision, cur)
	}
}

// isLagging reports whether w is in the catch-up group.
func (f *Feed) isLagging(w *Watcher) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.unsynced[w]
	return ok
}

func TestSlowWatcherDoesNotDelayOthers(t *testing.T) {
	s := newStore(t)
	f := runFeed(t, s, Options{WatcherBuffer: 4, BatchSize: 8})
	start := currentRevision(t, s)
	if err := f.WaitForRevision(t.Context(), start); err != nil {
		t.Fatal(err)
	}
	slow := watch(t, f, WatchOptions{After: start})
	fast := watch(t, f, WatchOptions{After: start})
	var last int64
	for i := range 50 {
		last = create(t, s, "ns", fmt.Sprintf("o%d", i), nil).Revision
	}
	want := expected(t, s, fast.opts, start, last)
	checkSame(t, "fast", collect(t, fast, last), want)
	if !f.isLagging(slow) {
		t.Fatal("slow watcher with a full buffer is not in catch-up")
	}
	checkSame(t, "slow", collect(t, slow, last), want)
}

func TestCompactionWhileBehindEndsWatcher(t *testing.T) {
	s := newStore(t)
	f := runFeed(t, s, Options{WatcherBuffer: 2})
	start := currentRevision(t, s)
	if err := f.WaitForRevision(t.Context(), start); err != nil {
		t.Fatal(err)
	}
	w := watch(t, f, WatchOptions{After: start})
	var last int64
	for i := range 20 {
		last = create(t, s, "ns", fmt.Sprintf("o%d", i), nil).Revision
	}
	if err := f.WaitForRevision(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-w.Events():
			if ok {
				continue
			}
			if !errors.Is(w.Err(), storage.ErrCompacted) {
				t.Fatalf("Err() = %v, want ErrCompacted", w.Err())
			}
			return
		case <-deadline:
			t.Fatal("watcher behind compaction was not ended")
		}
	}
}

func TestLabelTransitions(t *testing.T) {
	s := newStore(t)
	f := runFeed(t, s, Options{})
	start := currentRevision(t, s)
	w := watch(t, f, WatchOptions{After: start, Labels: labels.SelectorFromSet(labels.Set{"app": "a"})})
	a, b := map[string]string{"app": "a"}, map[string]string{"app": "b"}
	create(t, s, "ns", "other", b)
	steps := []struct {
		do   func() storage.Object
		want storage.EventType
	}{
		{func() storage.Object { return create(t, s, "ns", "x", a) }, storage.Added},
		{func() storage.Object { return update(t, s, "ns", "x", a) }, storage.Modified},
		// Stopping to match sends the last matching state (labels a).
		{func() storage.Object { o := update(t, s, "ns", "x", b); o.Labels = a; return o }, storage.Deleted},
		{func() storage.Object { return update(t, s, "ns", "x", b) }, 0},
		{func() storage.Object { return update(t, s, "ns", "x", a) }, storage.Added},
		{func() storage.Object {
			o, err := s.Delete(t.Context(), key("ns", "x"), storage.Precondition{})
			if err != nil {
				t.Fatal(err)
			}
			return o
		}, storage.Deleted},
	}
	for i, st := range steps {
		o := st.do()
		if st.want == 0 {
			continue
		}
		ev := next(t, w)
		if ev.Type != st.want || ev.Revision != o.Revision || ev.Object.Labels["app"] != o.Labels["app"] {
			t.Fatalf("step %d: got %v rev %d labels %v, want %v rev %d labels %v", i, ev.Type, ev.Revision, ev.Object.Labels, st.want, o.Revision, o.Labels)
		}
	}
}

func TestNameAndNamespaceFilters(t *testing.T) {
	s := newStore(t)
	f := runFeed(t, s, Options{})
	start := currentRevision(t, s)
	byNS := watch(t, f, WatchOptions{After: start, Namespace: "a"})
	byName := watch(t, f, WatchOptions{After: start, Namespace: "b", Name: "x"})
	other := watch(t, f, WatchOptions{After: start, Resource: "example.com/others"})
	create(t, s, "b", "y", nil)
	ax := create(t, s, "a", "x", nil)
	bx := create(t, s, "b", "x", nil)
	if ev := next(t, byNS); ev.Revision != ax.Revision {
		t.Errorf("namespace watcher got revision %d, want %d", ev.Revision, ax.Revision)
	}
	if ev := next(t, byName); ev.Revision != bx.Revision {
		t.Errorf("name watcher got revision %d, want %d", ev.Revision, bx.Revision)
	}
	if err := f.WaitForRevision(t.Context(), bx.Revision); err != nil {
		t.Fatal(err)
	}
	other.RequestProgress()
	select {
	case ev := <-other.Events():
		if ev.Type != Progress || ev.Revision != bx.Revision {
			t.Errorf("other resource watcher got %v at %d, want progress at %d", ev.Type, ev.Revision, bx.Revision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no progress event")
	}
}

func TestWaitForRevision(t *testing.T) {
	s := newStore(t)
	f := runFeed(t, s, Options{PollInterval: time.Hour})
	o := create(t, s, "ns", "x", nil)
	if err := f.WaitForRevision(t.Context(), o.Revision); err != nil {
		t.Fatalf("wait for committed revision: %v", err)
	}
	if got := f.Revision(); got < o.Revision {
		t.Errorf("Revision() = %d, want >= %d", got, o.Revision)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := f.WaitForRevision(ctx, o.Revision+100); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait for a future revision: got %v, want DeadlineExceeded", err)
	}
}

// unnotifiedStore hides the store's commit notifications, as a replica
// that missed them (another process wrote).
type unnotifiedStore struct {
	storage.Store
}

// Notify returns a channel that never fires.
func (unnotifiedStore) Notify() <-chan struct{} { return make(chan struct{}) }

// TestWaitForRevisionReadsAtOnce checks that a consistent read waiting for
// a revision the feed has no notification of makes the feed read it,
// rather than wait for the next poll (an hour here).
func TestWaitForRevisionReadsAtOnce(t *testing.T) {
	s := newStore(t)
	f := runFeed(t, unnotifiedStore{s}, Options{PollInterval: time.Hour})
	cur, err := s.CurrentRevision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WaitForRevision(t.Context(), cur); err != nil {
		t.Fatal(err)
	}
	w := watch(t, f, WatchOptions{After: f.Revision()})
	o := create(t, s, "ns", "x", nil)
	// Bounded well below the poll interval, so that waiting for a poll fails.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := f.WaitForRevision(ctx, o.Revision); err != nil {
		t.Fatalf("wait for a revision written without notification: %v", err)
	}
	if ev := <-w.Events(); ev.Revision != o.Revision {
		t.Fatalf("watcher got revision %d, want %d", ev.Revision, o.Revision)
	}
}

// TestWatchAheadOfFeed checks a watch from a revision the store has
// committed but this feed has not read (a client saw the write through
// another replica): it is accepted, and delivers exactly the events after
// that revision once the feed reads them.
func TestWatchAheadOfFeed(t *testing.T) {
	s := newStore(t)
	f := New(s, Options{})
	t.Cleanup(func() { f.Close() })
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var revs []int64
	for i := range 4 {
		revs = append(revs, create(t, s, "ns", fmt.Sprintf("o%d", i), nil).Revision)
	}
	if f.Revision() >= revs[1] {
		t.Fatalf("feed at %d, want it behind %d", f.Revision(), revs[1])
	}
	w := watch(t, f, WatchOptions{After: revs[1]})
	if _, err := f.Watch(context.Background(), WatchOptions{Resource: resource, After: revs[3] + 1}); !errors.Is(err, storage.ErrFutureRevision) {
		t.Fatalf("watch after an uncommitted revision: %v, want ErrFutureRevision", err)
	}
	pollAll(t, f)
	var got []int64
	for len(w.Events()) > 0 {
		got = append(got, (<-w.Events()).Revision)
	}
	if fmt.Sprint(got) != fmt.Sprint(revs[2:]) {
		t.Fatalf("watch after %d got %v, want %v", revs[1], got, revs[2:])
	}
}

// pollAll reads and dispatches the log until nothing is left.
func pollAll(t *testing.T, f *Feed) {
	t.Helper()
	for {
		n, err := f.Poll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestStepByStep drives the core without goroutines: Poll moves a watcher
// with a full buffer to catch-up, CatchUp replays it, Tick sends progress.
func TestStepByStep(t *testing.T) {
	s := newStore(t)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	f := New(s, Options{WatcherBuffer: 2, BatchSize: 3, ProgressInterval: time.Second, Now: clock.Now})
	t.Cleanup(func() { f.Close() })
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := f.Revision()
	w := watch(t, f, WatchOptions{After: start})
	var revs []int64
	for i := range 5 {
		revs = append(revs, create(t, s, "ns", fmt.Sprintf("o%d", i), nil).Revision)
	}
	pollAll(t, f)
	if f.Revision() != revs[4] || !f.isLagging(w) {
		t.Fatalf("after Poll: revision %d (want %d), lagging %v (want true)", f.Revision(), revs[4], f.isLagging(w))
	}
	var got []int64
	for range 3 {
		for len(w.Events()) > 0 {
			got = append(got, (<-w.Events()).Revision)
		}
		if _, err := f.CatchUp(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for len(w.Events()) > 0 {
		got = append(got, (<-w.Events()).Revision)
	}
	if fmt.Sprint(got) != fmt.Sprint(revs) || f.isLagging(w) {
		t.Fatalf("after CatchUp: got %v, want %v; lagging %v", got, revs, f.isLagging(w))
	}
	f.Tick()
	if len(w.Events()) != 0 {
		t.Fatal("progress sent before the interval")
	}
	clock.add(time.Second)
	f.Tick()
	if ev := <-w.Events(); ev.Type != Progress || ev.Revision != revs[4] {
		t.Fatalf("got %v at %d, want progress at %d", ev.Type, ev.Revision, revs[4])
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	s := newStore(t)
	before := runtime.NumGoroutine()
	f := New(s, Options{})
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	w1 := watch(t, f, WatchOptions{})
	w2 := watch(t, f, WatchOptions{Namespace: "ns"})
	o := create(t, s, "ns", "x", nil)
	if err := f.WaitForRevision(t.Context(), o.Revision); err != nil {
		t.Fatal(err)
	}
	w1.Stop()
	if _, ok := <-w1.Events(); ok {
		// the event may be buffered; the channel must close after it
		if _, ok := <-w1.Events(); ok {
			t.Error("stopped watcher still open")
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	for range w2.Events() {
	}
	if !errors.Is(w2.Err(), ErrClosed) {
		t.Errorf("watcher after Close: Err() = %v, want ErrClosed", w2.Err())
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEncodeCacheEncodesOnce(t *testing.T) {
	var c EncodeCache
	calls := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			b, err := c.Get(func() ([]byte, error) { calls++; return []byte("x"), nil })
			if string(b) != "x" || err != nil {
				t.Errorf("Get = %q, %v", b, err)
			}
		})
	}
	wg.Wait()
	if calls != 1 {
		t.Errorf("encode called %d times, want 1", calls)
	}
}

// TestMatchTransitions: Match filters like a label selector, with the same
// transitions, and watchers share what it derives for one event.
func TestMatchTransitions(t *testing.T) {
	s := newStore(t)
	f := runFeed(t, s, Options{})
	start := currentRevision(t, s)
	var derived atomic.Int64
	match := func(o storage.Object, memo *Memo) bool {
		v, _ := memo.Get(func() (any, error) {
			derived.Add(1)
			return o.Labels["app"], nil
		})
		return v == "a"
	}
	w1 := watch(t, f, WatchOptions{After: start, Match: match})
	w2 := watch(t, f, WatchOptions{After: start, Match: match})
	a, b := map[string]string{"app": "a"}, map[string]string{"app": "b"}
	c := create(t, s, "ns", "x", a)
	u1 := update(t, s, "ns", "x", b)
	update(t, s, "ns", "x", b)
	u3 := update(t, s, "ns", "x", a)
	for _, w := range []*Watcher{w1, w2} {
		for _, want := range []struct {
			typ storage.EventType
			rev int64
			app string
		}{{storage.Added, c.Revision, "a"}, {storage.Deleted, u1.Revision, "a"}, {storage.Added, u3.Revision, "a"}} {
			ev := next(t, w)
			if ev.Type != want.typ || ev.Revision != want.rev || ev.Object.Labels["app"] != want.app {
				t.Fatalf("got %v rev %d app %q, want %v rev %d app %q", ev.Type, ev.Revision, ev.Object.Labels["app"], want.typ, want.rev, want.app)
			}
		}
	}
	// One derivation per object state: x's four states and the three
	// previous states, whatever the number of watchers.
	if n := derived.Load(); n != 7 {
		t.Errorf("Match derived %d times, want 7", n)
	}
}
