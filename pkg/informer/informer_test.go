package informer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// waitLimit bounds every wait for an event, so that a missing event fails
// the test instead of hanging it.
const waitLimit = 20 * time.Second

var configMaps = client.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}

type cmClient = client.Client[corev1.ConfigMap, *corev1.ConfigMap]

func newClient(t testing.TB, srv *setpointtest.Server) *cmClient {
	t.Helper()
	c, err := client.New[corev1.ConfigMap](srv.RESTConfig(), configMaps)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := client.New[corev1.Namespace](srv.RESTConfig(), client.Resource{Version: "v1", Resource: "namespaces", Kind: "Namespace"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		_, err := ns.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil && !client.IsAlreadyExists(err) {
			t.Fatalf("creating namespace %s: %v", name, err)
		}
	}
	return c
}

// logger writes an informer's logs to the test's output.
func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// event is one handler call, as recorded by a recorder.
type event struct {
	kind   string // add, update, delete
	key    string
	rv     string // the new object's resourceVersion (the old one for delete)
	oldRV  string // for update
	sameOb bool   // update with old == new (a resync)
}

func (e event) String() string { return fmt.Sprintf("%s %s@%s", e.kind, e.key, e.rv) }

// recorder is a handler that sends every call to a channel.
type recorder struct{ ch chan event }

func newRecorder() *recorder { return &recorder{ch: make(chan event, 10000)} }

func (r *recorder) handler() informer.Handler[*corev1.ConfigMap] {
	return informer.Handler[*corev1.ConfigMap]{
		OnAdd: func(o *corev1.ConfigMap) {
			r.ch <- event{kind: "add", key: informer.KeyOf(o), rv: o.ResourceVersion}
		},
		OnUpdate: func(old, o *corev1.ConfigMap) {
			r.ch <- event{kind: "update", key: informer.KeyOf(o), rv: o.ResourceVersion, oldRV: old.ResourceVersion, sameOb: old == o}
		},
		OnDelete: func(o *corev1.ConfigMap) {
			r.ch <- event{kind: "delete", key: informer.KeyOf(o), rv: o.ResourceVersion}
		},
	}
}

// next returns the next handler call, failing the test if none comes.
func (r *recorder) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(waitLimit):
		t.Fatal("no handler call")
		return event{}
	}
}

// expect reads n calls and compares them, ignoring order, by kind and key.
func (r *recorder) expect(t *testing.T, want ...string) []event {
	t.Helper()
	var got []event
	var names []string
	for range want {
		e := r.next(t)
		got = append(got, e)
		names = append(names, e.kind+" "+e.key)
	}
	slices.Sort(names)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("handler calls %v, want %v", names, want)
	}
	return got
}

// empty fails if a handler call is waiting.
func (r *recorder) empty(t *testing.T) {
	t.Helper()
	select {
	case e := <-r.ch:
		t.Fatalf("unexpected handler call %v", e)
	default:
	}
}

// run starts inf and stops it when the test ends, checking that Run
// returns.
func run(t *testing.T, inf *informer.Informer[corev1.ConfigMap, *corev1.ConfigMap]) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inf.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, waitLimit)
	defer wcancel()
	if err := inf.WaitForSync(wctx); err != nil {
		t.Fatal(err)
	}
	if !inf.HasSynced() {
		t.Fatal("HasSynced false after WaitForSync")
	}
}

func create(t testing.TB, c *cmClient, ns, name string, labels map[string]string) *corev1.ConfigMap {
	t.Helper()
	obj, err := c.Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Data:       map[string]string{"v": "1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %s/%s: %v", ns, name, err)
	}
	return obj
}

func update(t *testing.T, c *cmClient, obj *corev1.ConfigMap, value string) *corev1.ConfigMap {
	t.Helper()
	obj = obj.DeepCopy()
	obj.Data = map[string]string{"v": value}
	obj, err := c.Update(context.Background(), obj, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("updating %s: %v", obj.Name, err)
	}
	return obj
}

func remove(t *testing.T, c *cmClient, ns, name string) {
	t.Helper()
	if err := c.Delete(context.Background(), ns, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting %s/%s: %v", ns, name, err)
	}
}

// source wraps a client to count lists, report each watch request (once
// it is made, or once it is held back), stop the current watch, hold new
// watches back, and switch servers.
type source struct {
	mu      sync.Mutex
	c       *cmClient
	lists   int
	pages   int
	current *client.Watch[corev1.ConfigMap, *corev1.ConfigMap]
	gate    chan struct{} // nil: watches go ahead; else they wait for it to close
	// beforeNextPage, if set, runs once before the first continued page is
	// asked for, with the resourceVersion of the list.
	beforeNextPage func(rv string)
	listRV         string
	watches        chan metav1.ListOptions
}

func newSource(c *cmClient) *source {
	return &source{c: c, watches: make(chan metav1.ListOptions, 100)}
}

func (s *source) List(ctx context.Context, ns string, opts metav1.ListOptions) (*client.List[corev1.ConfigMap], error) {
	s.mu.Lock()
	c := s.c
	s.pages++
	if opts.Continue == "" {
		s.lists++
	}
	hook := s.beforeNextPage
	if opts.Continue != "" {
		s.beforeNextPage = nil
	} else {
		hook = nil
	}
	rv := s.listRV
	s.mu.Unlock()
	if hook != nil {
		hook(rv)
	}
	l, err := c.List(ctx, ns, opts)
	if err == nil {
		s.mu.Lock()
		s.listRV = l.ResourceVersion
		s.mu.Unlock()
	}
	return l, err
}

func (s *source) Watch(ctx context.Context, ns string, opts metav1.ListOptions) (*client.Watch[corev1.ConfigMap, *corev1.ConfigMap], error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.watches <- opts
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	w, err := c.Watch(ctx, ns, opts)
	if err == nil {
		s.mu.Lock()
		s.current = w
		s.mu.Unlock()
	}
	if gate == nil {
		s.watches <- opts
	}
	return w, err
}

// counts returns the number of lists (first pages) and pages asked for.
func (s *source) counts() (lists, pages int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists, s.pages
}

// hold makes new watches wait until release, and ends the current one.
func (s *source) hold() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	w := s.current
	s.mu.Unlock()
	w.Stop()
}

func (s *source) release() {
	s.mu.Lock()
	close(s.gate)
	s.gate = nil
	s.mu.Unlock()
}

func (s *source) use(c *cmClient) {
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
}

// nextWatch returns the options of the next watch request.
func (s *source) nextWatch(t *testing.T) metav1.ListOptions {
	t.Helper()
	select {
	case o := <-s.watches:
		return o
	case <-time.After(waitLimit):
		t.Fatal("no watch request")
		return metav1.ListOptions{}
	}
}

func TestSyncThenEvents(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	c := newClient(t, srv)
	for i := range 3 {
		create(t, c, "a", "cm"+strconv.Itoa(i), nil)
	}
	create(t, c, "b", "cm0", nil)
	src := newSource(c)
	rec := newRecorder()
	inf := informer.New(src, informer.Options[*corev1.ConfigMap]{Logger: logger(t), PageSize: 2})
	inf.AddHandler(rec.handler())
	run(t, inf)
	rec.expect(t, "add a/cm0", "add a/cm1", "add a/cm2", "add b/cm0")
	if lists, pages := src.counts(); lists != 1 || pages != 2 {
		t.Errorf("lists %d pages %d, want 1 list in 2 pages", lists, pages)
	}
	if n := len(inf.List()); n != 4 {
		t.Errorf("List has %d objects, want 4", n)
	}
	if n := len(inf.ByIndex(informer.NamespaceIndex, "a")); n != 3 {
		t.Errorf("namespace a has %d objects, want 3", n)
	}
	w := src.nextWatch(t)
	if !w.AllowWatchBookmarks || w.ResourceVersion == "" || w.ResourceVersion == "0" {
		t.Errorf("watch options %+v, want bookmarks from the list's resourceVersion", w)
	}

	created := create(t, c, "b", "new", nil)
	if e := rec.next(t); e.kind != "add" || e.key != "b/new" || e.rv != created.ResourceVersion {
		t.Fatalf("got %v, want add b/new@%s", e, created.ResourceVersion)
	}
	updated := update(t, c, created, "2")
	if e := rec.next(t); e.kind != "update" || e.key != "b/new" || e.oldRV != created.ResourceVersion || e.rv != updated.ResourceVersion {
		t.Fatalf("got %+v, want update b/new %s -> %s", e, created.ResourceVersion, updated.ResourceVersion)
	}
	if got, ok := inf.Get("b", "new"); !ok || got.Data["v"] != "2" {
		t.Fatalf("Get b/new = %v, %v; want the updated object", got, ok)
	}
	remove(t, c, "a", "cm1")
	if e := rec.next(t); e.kind != "delete" || e.key != "a/cm1" {
		t.Fatalf("got %v, want delete a/cm1", e)
	}
	if _, ok := inf.Get("a", "cm1"); ok {
		t.Fatal("a/cm1 still cached after its delete")
	}
	if n := len(inf.ByIndex(informer.NamespaceIndex, "a")); n != 2 {
		t.Errorf("namespace a has %d objects, want 2", n)
	}
	rec.empty(t)
}

func TestLateHandlerGetsCachedObjects(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	c := newClient(t, srv)
	create(t, c, "a", "one", nil)
	inf := informer.New(newSource(c), informer.Options[*corev1.ConfigMap]{Logger: logger(t)})
	run(t, inf)
	first, second := newRecorder(), newRecorder()
	inf.AddHandler(first.handler())
	first.expect(t, "add a/one")
	inf.AddHandler(second.handler())
	second.expect(t, "add a/one")
	create(t, c, "a", "two", nil)
	first.expect(t, "add a/two")
	second.expect(t, "add a/two")
}

func TestHandlersCalledInOrder(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	c := newClient(t, srv)
	calls := make(chan string, 100)
	inf := informer.New(newSource(c), informer.Options[*corev1.ConfigMap]{Logger: logger(t)})
	for _, name := range []string{"first", "second"} {
		inf.AddHandler(informer.Handler[*corev1.ConfigMap]{
			OnAdd:    func(o *corev1.ConfigMap) { calls <- name + " add " + o.Name },
			OnUpdate: func(_, o *corev1.ConfigMap) { calls <- name + " update " + o.Name },
			OnDelete: func(o *corev1.ConfigMap) { calls <- name + " delete " + o.Name },
		})
	}
	run(t, inf)
	obj := create(t, c, "a", "one", nil)
	update(t, c, obj, "2")
	remove(t, c, "a", "one")
	for _, want := range []string{
		"first add one", "second add one",
		"first update one", "second update one",
		"first delete one", "second delete one",
	} {
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("handler call %q, want %q", got, want)
			}
		case <-time.After(waitLimit):
			t.Fatalf("no handler call, want %q", want)
		}
	}
}

func TestTransformBeforeCaching(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	c := newClient(t, srv)
	if obj := create(t, c, "a", "listed", nil); len(obj.ManagedFields) == 0 {
		t.Fatal("the server kept no managedFields; the test proves nothing")
	}
	rec := newRecorder()
	inf := informer.New(newSource(c), informer.Options[*corev1.ConfigMap]{
		Logger:    logger(t),
		Transform: stripManagedFields,
	})
	inf.AddHandler(rec.handler())
	run(t, inf)
	rec.expect(t, "add a/listed")
	create(t, c, "a", "watched", nil)
	rec.expect(t, "add a/watched")
	for _, name := range []string{"listed", "watched"} {
		if obj, ok := inf.Get("a", name); !ok || obj.ManagedFields != nil {
			t.Errorf("a/%s cached %v with managedFields %v, want none", name, ok, obj.ManagedFields)
		}
	}
}

func stripManagedFields(cm *corev1.ConfigMap) *corev1.ConfigMap {
	cm.ManagedFields = nil
	return cm
}

func TestLabelSelector(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	c := newClient(t, srv)
	create(t, c, "a", "x1", map[string]string{"app": "x"})
	create(t, c, "a", "y1", map[string]string{"app": "y"})
	rec := newRecorder()
	inf := informer.New(newSource(c), informer.Options[*corev1.ConfigMap]{Logger: logger(t), LabelSelector: "app=x"})
	inf.AddHandler(rec.handler())
	run(t, inf)
	rec.expect(t, "add a/x1")
	create(t, c, "a", "y2", map[string]string{"app": "y"})
	create(t, c, "a", "x2", map[string]string{"app": "x"})
	rec.expect(t, "add a/x2")
	if _, ok := inf.Get("a", "y1"); ok {
		t.Error("a/y1 cached though the selector excludes it")
	}
	rec.empty(t)
}

func TestResumeAfterWatchEnds(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	c := newClient(t, srv)
	src := newSource(c)
	rec := newRecorder()
	inf := informer.New(src, informer.Options[*corev1.ConfigMap]{Logger: logger(t), WatchTimeout: time.Second})
	inf.AddHandler(rec.handler())
	run(t, inf)
	first := src.nextWatch(t)
	if *first.TimeoutSeconds != 1 {
		t.Fatalf("timeoutSeconds %d, want 1", *first.TimeoutSeconds)
	}
	obj := create(t, c, "a", "one", nil)
	rec.expect(t, "add a/one")
	// The server ends the watch after a second; the informer watches again
	// from the last resourceVersion it saw, without listing.
	second := src.nextWatch(t)
	if second.ResourceVersion != obj.ResourceVersion {
		// A bookmark may have moved it on, never back.
		if n, _ := strconv.ParseInt(second.ResourceVersion, 10, 64); n < mustInt(t, obj.ResourceVersion) {
			t.Fatalf("resumed from %s, want %s or later", second.ResourceVersion, obj.ResourceVersion)
		}
	}
	create(t, c, "a", "two", nil)
	rec.expect(t, "add a/two")
	if lists, _ := src.counts(); lists != 1 {
		t.Errorf("%d lists, want 1", lists)
	}
	rec.empty(t)
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pauses is a time hook that hands every wait to the test.
type pauses chan pause

type pause struct {
	d    time.Duration
	fire chan time.Time
}

func (p pauses) after(d time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	p <- pause{d, c}
	return c
}

func (p pauses) next(t *testing.T) pause {
	t.Helper()
	select {
	case w := <-p:
		return w
	case <-time.After(waitLimit):
		t.Fatal("no wait asked for")
		return pause{}
	}
}

func TestResumeAfterServerRestartWithBackoff(t *testing.T) {
	dir := t.TempDir()
	srv := setpointtest.Start(t, setpointtest.Options{DataDir: dir})
	c := newClient(t, srv)
	create(t, c, "a", "one", nil)
	src := newSource(c)
	rec := newRecorder()
	waits := make(pauses, 100)
	inf := informer.New(src, informer.Options[*corev1.ConfigMap]{
		Logger:  logger(t),
		Backoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, After: waits.after,
	})
	inf.AddHandler(rec.handler())
	run(t, inf)
	rec.expect(t, "add a/one")
	src.nextWatch(t)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// While the server is down every retry fails, and the waits double up
	// to the cap.
	var ds []time.Duration
	for len(ds) < 5 {
		p := waits.next(t)
		ds = append(ds, p.d)
		p.fire <- time.Time{}
		src.nextWatch(t)
	}
	if ds[len(ds)-1] != 300*time.Millisecond || !slices.IsSorted(ds) || slices.Max(ds) > 300*time.Millisecond {
		t.Fatalf("waits %v, want them growing to the 300ms cap", ds)
	}
	// The server comes back on the same database; the informer resumes its
	// watch there and sees what changed, without listing again.
	p := waits.next(t)
	srv2 := setpointtest.Start(t, setpointtest.Options{DataDir: dir})
	c2 := newClient(t, srv2)
	src.use(c2)
	create(t, c2, "a", "two", nil)
	p.fire <- time.Time{}
	rec.expect(t, "add a/two")
	if lists, _ := src.counts(); lists != 1 {
		t.Errorf("%d lists, want 1", lists)
	}
	rec.empty(t)
}

func TestRelistAfterGoneDeliversDifferences(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{CompactionWindow: time.Millisecond, CompactionInterval: 10 * time.Millisecond})
	c := newClient(t, srv)
	create(t, c, "a", "gone", nil)
	changed := create(t, c, "a", "changed", nil)
	create(t, c, "a", "same", nil)
	src := newSource(c)
	rec := newRecorder()
	inf := informer.New(src, informer.Options[*corev1.ConfigMap]{Logger: logger(t)})
	inf.AddHandler(rec.handler())
	run(t, inf)
	rec.expect(t, "add a/gone", "add a/changed", "add a/same")
	src.nextWatch(t)

	// Cut the informer off, change things, and wait until the change log
	// no longer reaches back to where the informer stopped.
	src.hold()
	held := src.nextWatch(t)
	remove(t, c, "a", "gone")
	updated := update(t, c, changed, "2")
	create(t, c, "a", "new", nil)
	if err := awaitCompacted(c, held.ResourceVersion); err != nil {
		t.Fatal(err)
	}
	src.release()

	got := rec.expect(t, "delete a/gone", "update a/changed", "add a/new")
	for _, e := range got {
		if e.kind == "update" && (e.oldRV != changed.ResourceVersion || e.rv != updated.ResourceVersion) {
			t.Errorf("update %s -> %s, want %s -> %s", e.oldRV, e.rv, changed.ResourceVersion, updated.ResourceVersion)
		}
	}
	if lists, _ := src.counts(); lists < 2 {
		t.Errorf("%d lists, want a relist", lists)
	}
	if n := len(inf.List()); n != 3 {
		t.Errorf("cache has %d objects, want 3", n)
	}
	create(t, c, "a", "after", nil)
	rec.expect(t, "add a/after")
	rec.empty(t)
}

func TestListStartsOverWhenPagesExpire(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{CompactionWindow: time.Millisecond, CompactionInterval: 10 * time.Millisecond})
	c := newClient(t, srv)
	create(t, c, "a", "one", nil)
	create(t, c, "a", "two", nil)
	src := newSource(c)
	// Between the pages, a change is made and compacted away, so that the
	// continue token expires.
	// The hook runs on the informer's goroutine: it reports, not stops.
	src.beforeNextPage = func(rv string) {
		late := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "late"}}
		if _, err := c.Create(context.Background(), late, metav1.CreateOptions{}); err != nil {
			t.Error(err)
		}
		if err := awaitCompacted(c, rv); err != nil {
			t.Error(err)
		}
	}
	rec := newRecorder()
	inf := informer.New(src, informer.Options[*corev1.ConfigMap]{Logger: logger(t), PageSize: 1})
	inf.AddHandler(rec.handler())
	run(t, inf)
	rec.expect(t, "add a/one", "add a/two", "add a/late")
	if lists, pages := src.counts(); lists != 2 || pages != 3 {
		t.Errorf("lists %d pages %d, want a page, an expired page, then the list in one request", lists, pages)
	}
	rec.empty(t)
}

// awaitCompacted polls until a watch from rv is answered 410 Gone.
func awaitCompacted(c *cmClient, rv string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitLimit)
	for {
		w, err := c.Watch(context.Background(), "a", metav1.ListOptions{ResourceVersion: rv})
		if client.IsGone(err) {
			return nil
		}
		if err != nil {
			return err
		}
		w.Stop()
		select {
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("resourceVersion %s never compacted", rv)
		}
	}
}

func TestResync(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	c := newClient(t, srv)
	create(t, c, "a", "one", nil)
	create(t, c, "b", "two", nil)
	waits := make(pauses, 100)
	rec := newRecorder()
	inf := informer.New(newSource(c), informer.Options[*corev1.ConfigMap]{Logger: logger(t), ResyncPeriod: time.Hour, After: waits.after})
	inf.AddHandler(rec.handler())
	run(t, inf)
	rec.expect(t, "add a/one", "add b/two")
	for range 2 {
		p := waits.next(t)
		if p.d != time.Hour {
			t.Fatalf("waited %v, want the resync period", p.d)
		}
		p.fire <- time.Time{}
		for _, e := range rec.expect(t, "update a/one", "update b/two") {
			if !e.sameOb {
				t.Errorf("resync update of %s with different objects", e.key)
			}
		}
	}
	rec.empty(t)
}

func TestIndexers(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	c := newClient(t, srv)
	byTeam := func(o *corev1.ConfigMap) []string {
		if team, ok := o.Labels["team"]; ok {
			return []string{team}
		}
		return nil
	}
	one := create(t, c, "a", "one", map[string]string{"team": "red"})
	create(t, c, "b", "two", map[string]string{"team": "red"})
	create(t, c, "b", "three", nil)
	rec := newRecorder()
	inf := informer.New(newSource(c), informer.Options[*corev1.ConfigMap]{
		Logger:   logger(t),
		Indexers: map[string]informer.IndexFunc[*corev1.ConfigMap]{"team": byTeam},
	})
	inf.AddHandler(rec.handler())
	run(t, inf)
	rec.expect(t, "add a/one", "add b/two", "add b/three")
	keys := func(index, value string) []string {
		var ks []string
		for _, o := range inf.ByIndex(index, value) {
			ks = append(ks, informer.KeyOf(o))
		}
		slices.Sort(ks)
		return ks
	}
	if got := keys("team", "red"); !slices.Equal(got, []string{"a/one", "b/two"}) {
		t.Errorf("team red: %v", got)
	}
	if got := keys(informer.NamespaceIndex, "b"); !slices.Equal(got, []string{"b/three", "b/two"}) {
		t.Errorf("namespace b: %v", got)
	}
	if got := keys("nope", "red"); got != nil {
		t.Errorf("unknown index: %v", got)
	}
	moved := one.DeepCopy()
	moved.Labels["team"] = "blue"
	if _, err := c.Update(context.Background(), moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "update a/one")
	if got := keys("team", "red"); !slices.Equal(got, []string{"b/two"}) {
		t.Errorf("team red after the move: %v", got)
	}
	if got := keys("team", "blue"); !slices.Equal(got, []string{"a/one"}) {
		t.Errorf("team blue after the move: %v", got)
	}
	remove(t, c, "b", "two")
	rec.expect(t, "delete b/two")
	if got := keys("team", "red"); got != nil {
		t.Errorf("team red after the delete: %v", got)
	}
}

func TestServerDownBeforeSync(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	c := newClient(t, srv)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	waits := make(pauses, 100)
	inf := informer.New(newSource(c), informer.Options[*corev1.ConfigMap]{Logger: logger(t), After: waits.after})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inf.Run(ctx) }()
	// The list fails, so the informer backs off, unsynced; WaitForSync
	// gives up with its context, and Run returns when its context ends.
	if p := waits.next(t); p.d != 100*time.Millisecond {
		t.Errorf("first wait %v, want the default 100ms", p.d)
	}
	if inf.HasSynced() {
		t.Error("synced without a list")
	}
	wctx, wcancel := context.WithCancel(context.Background())
	wcancel()
	if err := inf.WaitForSync(wctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitForSync = %v, want context.Canceled", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after its context ended")
	}
	if err := inf.Run(context.Background()); err == nil {
		t.Error("a second Run did not fail")
	}
}

func TestReservedIndexNamePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for an indexer named namespace")
		}
	}()
	informer.New[corev1.ConfigMap](newSource(nil), informer.Options[*corev1.ConfigMap]{
		Logger:   logger(t),
		Indexers: map[string]informer.IndexFunc[*corev1.ConfigMap]{informer.NamespaceIndex: nil},
	})
}
