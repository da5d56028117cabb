package storagetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/setpoint/setpoint/internal/storage"
)

func sameObject(t testing.TB, got, want storage.Object) {
	t.Helper()
	if got.Key != want.Key || got.Revision != want.Revision || !bytes.Equal(got.Value, want.Value) ||
		!maps.Equal(got.Labels, want.Labels) {
		t.Fatalf("object = %+v (value %s), want %+v (value %s)", got, got.Value, want, want.Value)
	}
}

// RunCreateGet checks Create, Get, ErrExists and ErrNotFound.
func RunCreateGet(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	lbl := map[string]string{"app": "web", "tier": "front"}
	obj := must(s.Create(ctx, key("ns1", "a"), value("a"), lbl))(t)
	if obj.Revision <= 0 {
		t.Fatalf("revision = %d, want > 0", obj.Revision)
	}
	sameObject(t, obj, storage.Object{Key: key("ns1", "a"), Revision: obj.Revision, Labels: lbl, Value: value("a")})
	sameObject(t, must(s.Get(ctx, key("ns1", "a")))(t), obj)
	if cur := must(s.CurrentRevision(ctx))(t); cur != obj.Revision {
		t.Fatalf("current revision = %d, want %d", cur, obj.Revision)
	}

	_, err := s.Create(ctx, key("ns1", "a"), value("again"), nil)
	wantErr(t, err, storage.ErrExists)
	if cur := must(s.CurrentRevision(ctx))(t); cur != obj.Revision {
		t.Fatalf("failed create moved the revision to %d", cur)
	}
	sameObject(t, must(s.Get(ctx, key("ns1", "a")))(t), obj)

	_, err = s.Get(ctx, key("ns1", "missing"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.Get(ctx, key("ns2", "a"))
	wantErr(t, err, storage.ErrNotFound)

	// Cluster-scoped key, no labels.
	c := must(s.Create(ctx, key("", "a"), value("cluster"), nil))(t)
	if c.Revision != obj.Revision+1 {
		t.Fatalf("revision = %d, want %d", c.Revision, obj.Revision+1)
	}
	got := must(s.Get(ctx, key("", "a")))(t)
	if len(got.Labels) != 0 || !bytes.Equal(got.Value, value("cluster")) {
		t.Fatalf("get cluster-scoped = %+v", got)
	}
}

// RunUpdate checks Update with and without a precondition.
func RunUpdate(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	first := create(t, ctx, s, "ns", "a", map[string]string{"app": "web"})

	second := must(s.Update(ctx, key("ns", "a"), value("v2"), map[string]string{"app": "db"}, storage.Precondition{Revision: first.Revision}))(t)
	if second.Revision <= first.Revision {
		t.Fatalf("update revision %d not after %d", second.Revision, first.Revision)
	}
	sameObject(t, must(s.Get(ctx, key("ns", "a")))(t), second)

	_, err := s.Update(ctx, key("ns", "a"), value("stale"), nil, storage.Precondition{Revision: first.Revision})
	wantErr(t, err, storage.ErrConflict)
	if cur := must(s.CurrentRevision(ctx))(t); cur != second.Revision {
		t.Fatalf("failed update moved the revision to %d", cur)
	}

	third := must(s.Update(ctx, key("ns", "a"), value("v3"), nil, storage.Precondition{}))(t)
	sameObject(t, must(s.Get(ctx, key("ns", "a")))(t), third)

	_, err = s.Update(ctx, key("ns", "missing"), value("x"), nil, storage.Precondition{})
	wantErr(t, err, storage.ErrNotFound)

	// The label index follows updates.
	res := must(s.List(ctx, storage.ListOptions{Resource: testResource, Labels: labels.SelectorFromSet(labels.Set{"app": "web"})}))(t)
	if len(res.Objects) != 0 {
		t.Fatalf("stale label index: %+v", res.Objects)
	}
}

// RunDelete checks Delete with and without a precondition.
func RunDelete(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	obj := create(t, ctx, s, "ns", "a", map[string]string{"app": "web"})

	_, err := s.Delete(ctx, key("ns", "a"), storage.Precondition{Revision: obj.Revision + 100})
	wantErr(t, err, storage.ErrConflict)
	sameObject(t, must(s.Get(ctx, key("ns", "a")))(t), obj)

	del := must(s.Delete(ctx, key("ns", "a"), storage.Precondition{Revision: obj.Revision}))(t)
	if del.Revision != obj.Revision+1 {
		t.Fatalf("delete revision = %d, want %d", del.Revision, obj.Revision+1)
	}
	sameObject(t, del, storage.Object{Key: obj.Key, Revision: del.Revision, Labels: obj.Labels, Value: obj.Value})
	_, err = s.Get(ctx, key("ns", "a"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.Delete(ctx, key("ns", "a"), storage.Precondition{})
	wantErr(t, err, storage.ErrNotFound)

	// The key can be created again, with a new revision.
	again := create(t, ctx, s, "ns", "a", nil)
	if again.Revision <= del.Revision {
		t.Fatalf("recreate revision %d not after delete %d", again.Revision, del.Revision)
	}
	res := must(s.List(ctx, storage.ListOptions{Resource: testResource, Labels: labels.SelectorFromSet(labels.Set{"app": "web"})}))(t)
	if len(res.Objects) != 0 {
		t.Fatalf("deleted object still indexed: %+v", res.Objects)
	}
}

// RunChanges checks the change log: types, values, previous states, limits.
func RunChanges(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	start := must(s.CurrentRevision(ctx))(t)
	if evs := must(s.Changes(ctx, start, 10))(t); len(evs) != 0 {
		t.Fatalf("changes on empty store = %+v", evs)
	}
	c := create(t, ctx, s, "ns", "a", map[string]string{"x": "1"})
	u := must(s.Update(ctx, c.Key, value("v2"), map[string]string{"x": "2"}, storage.Precondition{Revision: c.Revision}))(t)
	d := must(s.Delete(ctx, c.Key, storage.Precondition{}))(t)

	evs := must(s.Changes(ctx, start, 0))(t)
	if len(evs) != 3 {
		t.Fatalf("got %d events, want 3: %+v", len(evs), evs)
	}
	want := []storage.Event{
		{Type: storage.Added, Object: c},
		{Type: storage.Modified, Object: u, Prev: &c},
		{Type: storage.Deleted, Object: d, Prev: &u},
	}
	for i, w := range want {
		got := evs[i]
		if got.Type != w.Type {
			t.Fatalf("event %d type = %v, want %v", i, got.Type, w.Type)
		}
		sameObject(t, got.Object, w.Object)
		if (got.Prev == nil) != (w.Prev == nil) {
			t.Fatalf("event %d prev = %+v, want %+v", i, got.Prev, w.Prev)
		}
		if w.Prev != nil {
			sameObject(t, *got.Prev, *w.Prev)
		}
		if got.Revision() != w.Object.Revision {
			t.Fatalf("event %d revision = %d", i, got.Revision())
		}
	}

	page := must(s.Changes(ctx, start, 2))(t)
	if len(page) != 2 || page[0].Revision() != c.Revision || page[1].Revision() != u.Revision {
		t.Fatalf("limited changes = %+v", page)
	}
	rest := must(s.Changes(ctx, u.Revision, 2))(t)
	if len(rest) != 1 || rest[0].Revision() != d.Revision {
		t.Fatalf("changes after %d = %+v", u.Revision, rest)
	}
	if evs := must(s.Changes(ctx, d.Revision, 10))(t); len(evs) != 0 {
		t.Fatalf("changes after the last revision = %+v", evs)
	}
}

// RunConcurrentWriters runs 32 writers and checks that every acknowledged
// write appears in Changes exactly once, in order, with no revision gaps and
// correct previous states.
func RunConcurrentWriters(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	start := must(s.CurrentRevision(ctx))(t)
	const writers, perWriter = 32, 20
	type ack struct {
		typ storage.EventType
		obj storage.Object
	}
	var (
		mu   sync.Mutex
		acks = map[int64]ack{}
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	record := func(typ storage.EventType, obj storage.Object) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := acks[obj.Revision]; dup {
			errs <- fmt.Errorf("revision %d acknowledged twice", obj.Revision)
		}
		acks[obj.Revision] = ack{typ, obj}
	}
	for w := range writers {
		wg.Go(func() {
			// Each writer owns its keys and also races on a shared key.
			for i := range perWriter {
				k := key("ns", fmt.Sprintf("w%d-%d", w, i%5))
				obj, err := s.Create(ctx, k, value(fmt.Sprint(w, i)), map[string]string{"w": fmt.Sprint(w)})
				if err == nil {
					record(storage.Added, obj)
				} else {
					obj, err = s.Update(ctx, k, value(fmt.Sprint(w, i)), nil, storage.Precondition{})
					if err != nil {
						errs <- err
						return
					}
					record(storage.Modified, obj)
				}
				if i%7 == 6 {
					obj, err := s.Delete(ctx, k, storage.Precondition{})
					if err != nil {
						errs <- err
						return
					}
					record(storage.Deleted, obj)
				}
				shared := key("ns", "shared")
				if obj, err := s.Create(ctx, shared, value("shared"), nil); err == nil {
					record(storage.Added, obj)
				} else if obj, err := s.Delete(ctx, shared, storage.Precondition{}); err == nil {
					record(storage.Deleted, obj)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var evs []storage.Event
	for after := start; ; {
		page := must(s.Changes(ctx, after, 100))(t)
		if len(page) == 0 {
			break
		}
		evs = append(evs, page...)
		after = page[len(page)-1].Revision()
	}
	if len(evs) != len(acks) {
		t.Fatalf("%d events for %d acknowledged writes", len(evs), len(acks))
	}
	last := map[storage.Key]storage.Object{}
	for i, ev := range evs {
		if ev.Revision() != start+int64(i)+1 {
			t.Fatalf("event %d has revision %d, want %d (gap or disorder)", i, ev.Revision(), start+int64(i)+1)
		}
		a, ok := acks[ev.Revision()]
		if !ok || a.typ != ev.Type {
			t.Fatalf("event %+v does not match acknowledged write %+v", ev, a)
		}
		sameObject(t, ev.Object, a.obj)
		prev, had := last[ev.Object.Key]
		switch {
		case ev.Type == storage.Added && ev.Prev != nil:
			t.Fatalf("added event with prev: %+v", ev)
		case ev.Type != storage.Added && (ev.Prev == nil || !had):
			t.Fatalf("event without prev: %+v", ev)
		case ev.Type != storage.Added:
			sameObject(t, *ev.Prev, prev)
		}
		if ev.Type == storage.Deleted {
			delete(last, ev.Object.Key)
		} else {
			last[ev.Object.Key] = ev.Object
		}
	}
	if cur := must(s.CurrentRevision(ctx))(t); cur != start+int64(len(evs)) {
		t.Fatalf("current revision = %d, want %d", cur, start+int64(len(evs)))
	}
}

// listAll reads every page of a list at one snapshot.
func listAll(t testing.TB, ctx context.Context, s storage.Store, opts storage.ListOptions, between func()) storage.ListResult {
	t.Helper()
	var all storage.ListResult
	for {
		page := must(s.List(ctx, opts))(t)
		if all.Revision == 0 {
			all.Revision = page.Revision
		} else if page.Revision != all.Revision {
			t.Fatalf("page at revision %d, want %d", page.Revision, all.Revision)
		}
		if opts.Limit > 0 && len(page.Objects) > opts.Limit {
			t.Fatalf("page of %d objects exceeds limit %d", len(page.Objects), opts.Limit)
		}
		all.Objects = append(all.Objects, page.Objects...)
		if !page.More {
			return all
		}
		if len(page.Objects) == 0 {
			t.Fatal("empty page with More set")
		}
		lastKey := page.Objects[len(page.Objects)-1].Key
		opts.After = &lastKey
		opts.Revision = page.Revision
		if between != nil {
			between()
		}
	}
}

func keysOf(objs []storage.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Namespace + "/" + o.Name
	}
	return out
}

func checkSameList(t testing.TB, got, want []storage.Object) {
	t.Helper()
	if !slices.Equal(keysOf(got), keysOf(want)) {
		t.Fatalf("list keys = %v, want %v", keysOf(got), keysOf(want))
	}
	for i := range got {
		sameObject(t, got[i], want[i])
	}
}

// expected filters objs (in key order) as a list with opts should.
func expected(objs []storage.Object, opts storage.ListOptions) []storage.Object {
	var out []storage.Object
	for _, o := range objs {
		if opts.Namespace != "" && o.Namespace != opts.Namespace || opts.Name != "" && o.Name != opts.Name {
			continue
		}
		if opts.Labels != nil && !opts.Labels.Matches(labels.Set(o.Labels)) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// labelFixture creates objects in two namespaces with varied labels and
// returns them in key order.
func labelFixture(t testing.TB, ctx context.Context, s storage.Store) []storage.Object {
	t.Helper()
	sets := []map[string]string{
		{"app": "web", "tier": "front"},
		{"app": "web", "tier": "back"},
		{"app": "db", "tier": "back"},
		{"app": "cache"},
		{"tier": "front"},
		nil,
		{"app": "web", "env": "prod", "odd key.io/x": "it's \"quoted\""},
	}
	var objs []storage.Object
	for _, ns := range []string{"ns-a", "ns-b"} {
		for i, lbl := range sets {
			objs = append(objs, create(t, ctx, s, ns, fmt.Sprintf("obj-%02d", i), lbl))
		}
	}
	return objs
}

// RunListLabels checks every label selector operator.
func RunListLabels(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	objs := labelFixture(t, ctx, s)
	selectors := []string{
		"", "app=web", "app==web", "app!=web", "app in (web,db)", "app notin (web)", "app", "!app",
		"app=web,tier=front", "app in (web,db),tier!=front", "tier,!app", "app=nope", "env in (prod),app=web",
		"app notin (web,db),tier", "app in (web),app in (db)",
	}
	for _, text := range selectors {
		sel, err := labels.Parse(text)
		if err != nil {
			t.Fatalf("parse %q: %v", text, err)
		}
		for _, limit := range []int{0, 2} {
			opts := storage.ListOptions{Resource: testResource, Labels: sel, Limit: limit}
			got := listAll(t, ctx, s, opts, nil)
			checkSameList(t, got.Objects, expected(objs, opts))
		}
	}
	for _, sel := range []labels.Selector{labels.Nothing(), labels.Everything(), nil} {
		opts := storage.ListOptions{Resource: testResource, Labels: sel}
		checkSameList(t, must(s.List(ctx, opts))(t).Objects, expected(objs, opts))
	}
	// Requirements built programmatically may carry values the parser rejects.
	req, err := labels.NewRequirement("odd key.io/x", "=", []string{`it's "quoted"`})
	if err == nil {
		opts := storage.ListOptions{Resource: testResource, Labels: labels.NewSelector().Add(*req)}
		checkSameList(t, must(s.List(ctx, opts))(t).Objects, expected(objs, opts))
	}
}

// RunListFilters checks namespace and name filters, Count and resources
// being separate.
func RunListFilters(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	objs := labelFixture(t, ctx, s)
	must(s.Create(ctx, storage.Key{Resource: "other/things", Namespace: "ns-a", Name: "obj-00"}, value("other"), nil))(t)
	for _, opts := range []storage.ListOptions{
		{Resource: testResource},
		{Resource: testResource, Namespace: "ns-a"},
		{Resource: testResource, Namespace: "ns-b", Name: "obj-03"},
		{Resource: testResource, Name: "obj-01"},
		{Resource: testResource, Namespace: "nope"},
		{Resource: testResource, Namespace: "ns-a", Labels: labels.SelectorFromSet(labels.Set{"app": "web"})},
		{Resource: testResource, Name: "obj-00", Labels: labels.SelectorFromSet(labels.Set{"app": "web"})},
	} {
		checkSameList(t, must(s.List(ctx, opts))(t).Objects, expected(objs, opts))
		opts.Limit = 3
		checkSameList(t, listAll(t, ctx, s, opts, nil).Objects, expected(objs, opts))
	}
	for ns, want := range map[string]int64{"": int64(len(objs)), "ns-a": int64(len(objs) / 2), "nope": 0} {
		if n := must(s.Count(ctx, testResource, ns))(t); n != want {
			t.Fatalf("count(%q) = %d, want %d", ns, n, want)
		}
	}
	if n := must(s.Count(ctx, "other/things", ""))(t); n != 1 {
		t.Fatalf("count(other) = %d, want 1", n)
	}
	res := must(s.List(ctx, storage.ListOptions{Resource: testResource}))(t)
	if cur := must(s.CurrentRevision(ctx))(t); res.Revision != cur {
		t.Fatalf("list revision = %d, want current %d", res.Revision, cur)
	}
}

// RunListSnapshotPagination checks that pages read at the first page's
// revision show that snapshot while writes and deletes happen between pages.
func RunListSnapshotPagination(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	var objs []storage.Object
	for i := range 40 {
		lbl := map[string]string{"group": fmt.Sprint(i % 3)}
		objs = append(objs, create(t, ctx, s, fmt.Sprintf("ns-%d", i%2), fmt.Sprintf("obj-%02d", i), lbl))
	}
	slices.SortFunc(objs, func(a, b storage.Object) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for i, text := range []string{"", "group=1", "group!=1", "group in (0,2)"} {
		t.Run(fmt.Sprintf("selector%d", i), func(t *testing.T) {
			sel := must(labels.Parse(text))(t)
			opts := storage.ListOptions{Resource: testResource, Labels: sel, Limit: 4}
			snapshot := must(s.CurrentRevision(ctx))(t)
			want := expected(listAll(t, ctx, s, storage.ListOptions{Resource: testResource}, nil).Objects, opts)
			step := 0
			var wg sync.WaitGroup
			between := func() {
				// Change objects before and after the cursor, concurrently.
				step++
				for i := range 6 {
					o := objs[(step*7+i*5)%len(objs)]
					wg.Go(func() {
						switch i % 3 {
						case 0:
							_, _ = s.Update(ctx, o.Key, value("changed"), map[string]string{"group": "1"}, storage.Precondition{})
						case 1:
							_, _ = s.Delete(ctx, o.Key, storage.Precondition{})
						default:
							_, _ = s.Create(ctx, key(o.Namespace, fmt.Sprintf("new-%d-%d", step, i)), value("new"), map[string]string{"group": "0"})
						}
					})
				}
				wg.Wait()
			}
			got := listAll(t, ctx, s, opts, between)
			if got.Revision != snapshot {
				t.Fatalf("list revision = %d, want %d", got.Revision, snapshot)
			}
			checkSameList(t, got.Objects, want)
			// Restore the fixture for the next selector.
			objs = listAll(t, ctx, s, storage.ListOptions{Resource: testResource}, nil).Objects
		})
	}
	_, err := s.List(ctx, storage.ListOptions{Resource: testResource, Revision: must(s.CurrentRevision(ctx))(t) + 1})
	wantErr(t, err, storage.ErrFutureRevision)
}

// RunCompaction checks that Compact removes the log and that reads below the
// compacted revision fail with ErrCompacted.
func RunCompaction(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	start := must(s.CurrentRevision(ctx))(t)
	a := create(t, ctx, s, "ns", "a", nil)
	b := create(t, ctx, s, "ns", "b", nil)
	must(s.Update(ctx, a.Key, value("a2"), nil, storage.Precondition{}))(t)
	c := create(t, ctx, s, "ns", "c", nil)

	wantErr(t, s.Compact(ctx, c.Revision+1), storage.ErrFutureRevision)
	if err := s.Compact(ctx, b.Revision); err != nil {
		t.Fatal(err)
	}
	if got := must(s.CompactedRevision(ctx))(t); got != b.Revision {
		t.Fatalf("compacted revision = %d, want %d", got, b.Revision)
	}
	_, err := s.Changes(ctx, start, 10)
	wantErr(t, err, storage.ErrCompacted)
	_, err = s.Changes(ctx, a.Revision, 10)
	wantErr(t, err, storage.ErrCompacted)
	evs := must(s.Changes(ctx, b.Revision, 10))(t)
	if len(evs) != 2 || evs[0].Revision() != b.Revision+1 {
		t.Fatalf("changes after the compacted revision = %+v", evs)
	}
	_, err = s.List(ctx, storage.ListOptions{Resource: testResource, Revision: a.Revision})
	wantErr(t, err, storage.ErrCompacted)
	res := must(s.List(ctx, storage.ListOptions{Resource: testResource, Revision: b.Revision}))(t)
	if want := []string{"ns/a", "ns/b"}; !slices.Equal(keysOf(res.Objects), want) || res.Objects[0].Revision != a.Revision {
		t.Fatalf("list at compacted revision = %+v, want %v with a at %d", res.Objects, want, a.Revision)
	}
	// Compacting to an older revision is a no-op.
	if err := s.Compact(ctx, a.Revision); err != nil {
		t.Fatal(err)
	}
	if got := must(s.CompactedRevision(ctx))(t); got != b.Revision {
		t.Fatalf("compacted revision went back to %d", got)
	}
}

// RunRevisionNeverGoesBack deletes everything, compacts the whole log and
// reopens; the next write must still get a higher revision.
func RunRevisionNeverGoesBack(t *testing.T, f Factory) {
	ctx := t.Context()
	s, reopen := open(t, f)
	var last int64
	for i := range 5 {
		last = create(t, ctx, s, "ns", fmt.Sprint(i), nil).Revision
	}
	for i := range 5 {
		last = must(s.Delete(ctx, key("ns", fmt.Sprint(i)), storage.Precondition{}))(t).Revision
	}
	if err := s.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t)
	if cur := must(s.CurrentRevision(ctx))(t); cur != last {
		t.Fatalf("current revision after reopen = %d, want %d", cur, last)
	}
	if got := must(s.CompactedRevision(ctx))(t); got != last {
		t.Fatalf("compacted revision after reopen = %d, want %d", got, last)
	}
	if evs := must(s.Changes(ctx, last, 10))(t); len(evs) != 0 {
		t.Fatalf("changes after reopen = %+v", evs)
	}
	if obj := create(t, ctx, s, "ns", "0", nil); obj.Revision != last+1 {
		t.Fatalf("revision after reopen = %d, want %d", obj.Revision, last+1)
	}
}

// RunDurability checks that acknowledged writes survive close and reopen.
func RunDurability(t *testing.T, f Factory) {
	ctx := t.Context()
	s, reopen := open(t, f)
	objs := labelFixture(t, ctx, s)
	upd := must(s.Update(ctx, objs[0].Key, value("updated"), map[string]string{"app": "x"}, storage.Precondition{}))(t)
	objs[0] = upd
	del := must(s.Delete(ctx, objs[1].Key, storage.Precondition{}))(t)
	objs = slices.Delete(objs, 1, 2)
	events := must(s.Changes(ctx, 0, 0))(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t)
	checkSameList(t, must(s.List(ctx, storage.ListOptions{Resource: testResource}))(t).Objects, objs)
	sel := labels.SelectorFromSet(labels.Set{"app": "x"})
	checkSameList(t, must(s.List(ctx, storage.ListOptions{Resource: testResource, Labels: sel}))(t).Objects, objs[:1])
	if cur := must(s.CurrentRevision(ctx))(t); cur != del.Revision {
		t.Fatalf("current revision after reopen = %d, want %d", cur, del.Revision)
	}
	again := must(s.Changes(ctx, 0, 0))(t)
	if len(again) != len(events) {
		t.Fatalf("%d events after reopen, want %d", len(again), len(events))
	}
}

// RunNotify checks that a commit signals Notify.
func RunNotify(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	// Drain a signal left by earlier writes of the factory, if any.
	select {
	case <-s.Notify():
	default:
	}
	create(t, ctx, s, "ns", "a", nil)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-s.Notify():
	case <-timer.C:
		t.Fatal("no notification after a commit")
	}
}

// RunClosed checks that every method fails with ErrClosed after Close and
// that Notify's channel is closed.
func RunClosed(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	obj := create(t, ctx, s, "ns", "a", nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, ok := <-s.Notify(); !ok {
			break
		}
	}
	_, err := s.Get(ctx, obj.Key)
	wantErr(t, err, storage.ErrClosed)
	_, err = s.Create(ctx, key("ns", "b"), value("b"), nil)
	wantErr(t, err, storage.ErrClosed)
	_, err = s.Update(ctx, obj.Key, value("b"), nil, storage.Precondition{})
	wantErr(t, err, storage.ErrClosed)
	_, err = s.Delete(ctx, obj.Key, storage.Precondition{})
	wantErr(t, err, storage.ErrClosed)
	_, err = s.List(ctx, storage.ListOptions{Resource: testResource})
	wantErr(t, err, storage.ErrClosed)
	_, err = s.Count(ctx, testResource, "")
	wantErr(t, err, storage.ErrClosed)
	_, err = s.Changes(ctx, 0, 10)
	wantErr(t, err, storage.ErrClosed)
	_, err = s.CurrentRevision(ctx)
	wantErr(t, err, storage.ErrClosed)
	_, err = s.CompactedRevision(ctx)
	wantErr(t, err, storage.ErrClosed)
	wantErr(t, s.Compact(ctx, obj.Revision), storage.ErrClosed)
}

// RunCanceledContext checks that a write with a canceled context fails
// with the context's error and changes nothing.
func RunCanceledContext(t *testing.T, f Factory) {
	s, _ := open(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	before := must(s.CurrentRevision(t.Context()))(t)
	_, err := s.Create(ctx, key("ns", "a"), value("a"), nil)
	wantErr(t, err, context.Canceled)
	if cur := must(s.CurrentRevision(t.Context()))(t); cur != before {
		t.Fatalf("canceled create moved the revision to %d", cur)
	}
	_, err = s.Get(t.Context(), key("ns", "a"))
	wantErr(t, err, storage.ErrNotFound)
}

// RunCanceledWhileQueued cancels writes at random moments under load. A
// write that reports success must be stored; one that reports the context's
// error must not be.
func RunCanceledWhileQueued(t *testing.T, f Factory) {
	s, _ := open(t, f)
	const writers, perWriter = 32, 10
	type outcome struct {
		key storage.Key
		obj storage.Object
		err error
	}
	results := make(chan outcome, writers*perWriter)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				ctx, cancel := context.WithCancel(t.Context())
				// Cancel at varying points: before, while queued, while committing.
				stop := time.AfterFunc(time.Duration((w*perWriter+i)%50)*50*time.Microsecond, cancel)
				k := key("ns", fmt.Sprintf("w%d-%d", w, i))
				obj, err := s.Create(ctx, k, value(k.Name), nil)
				stop.Stop()
				cancel()
				results <- outcome{k, obj, err}
			}
		})
	}
	wg.Wait()
	close(results)
	var ok, canceled int
	for r := range results {
		got, err := s.Get(t.Context(), r.key)
		switch {
		case r.err == nil:
			ok++
			if err != nil || got.Revision != r.obj.Revision {
				t.Fatalf("acknowledged create of %s: get = %+v, %v", r.key.Name, got, err)
			}
		case errors.Is(r.err, context.Canceled):
			canceled++
			if !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("create of %s reported %v but the object exists: %+v", r.key.Name, r.err, got)
			}
		default:
			t.Fatalf("create of %s: %v", r.key.Name, r.err)
		}
	}
	t.Logf("%d created, %d canceled", ok, canceled)
}

// RunTailWhileWriting runs 32 writers spread over the given number of
// stores opened on one database (1 for an embedded backend; several for a
// backend whose replicas share a database) while a reader tails Changes of
// the first store the way a change feed does: wake on Notify, read after
// the last revision seen. The reader must see every acknowledged write
// exactly once, with consecutive revisions: a write committing with a
// smaller revision after the reader passed it would be a gap.
func RunTailWhileWriting(t *testing.T, f Factory, stores int) {
	ctx := t.Context()
	first, opener := open(t, f)
	all := []storage.Store{first}
	for range stores - 1 {
		all = append(all, opener(t))
	}
	start := must(first.CurrentRevision(ctx))(t)

	const writers, perWriter = 32, 30
	acked := make(chan int64, writers*perWriter)
	var wg sync.WaitGroup
	for w := range writers {
		s := all[w%len(all)]
		wg.Go(func() {
			for i := range perWriter {
				obj, err := s.Create(ctx, key("ns", fmt.Sprintf("w%d-%d", w, i)), value("x"), nil)
				if err != nil {
					t.Error(err)
					return
				}
				acked <- obj.Revision
			}
		})
	}
	writersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(writersDone)
	}()

	seen := map[int64]bool{}
	last := start
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	finished := false
	for {
		evs := must(first.Changes(ctx, last, 50))(t)
		for _, ev := range evs {
			if ev.Revision() != last+1 {
				t.Fatalf("tail read revision %d after %d", ev.Revision(), last)
			}
			last = ev.Revision()
			seen[last] = true
		}
		if len(evs) > 0 {
			continue
		}
		if finished && len(seen) >= len(acked) {
			break
		}
		select {
		case <-first.Notify():
		case <-poll.C:
		case <-writersDone:
			finished = true
			writersDone = nil
		case <-deadline.C:
			t.Fatalf("tail saw %d of %d writes", len(seen), writers*perWriter)
		}
	}
	close(acked)
	n := 0
	for rev := range acked {
		n++
		if !seen[rev] {
			t.Fatalf("acknowledged revision %d never tailed", rev)
		}
	}
	if n != writers*perWriter || len(seen) != n {
		t.Fatalf("%d acknowledged, %d tailed, want %d", n, len(seen), writers*perWriter)
	}
}

// RunCloseWhileBusy closes the store while writers and readers run: every
// call must either succeed or fail with ErrClosed, and none may hang.
func RunCloseWhileBusy(t *testing.T, f Factory) {
	s, _ := open(t, f)
	ctx := t.Context()
	create(t, ctx, s, "ns", "seed", map[string]string{"app": "x"})
	var (
		wg, busy sync.WaitGroup
		sel      = labels.SelectorFromSet(labels.Set{"app": "x"})
	)
	busy.Add(16)
	for g := range 16 {
		wg.Go(func() {
			signaled := false
			defer func() {
				if !signaled {
					busy.Done()
				}
			}()
			for i := 0; ; i++ {
				var err error
				switch i % 4 {
				case 0:
					_, err = s.Create(ctx, key("ns", fmt.Sprintf("g%d-%d", g, i)), value("x"), map[string]string{"app": "x"})
				case 1:
					_, err = s.Get(ctx, key("ns", "seed"))
				case 2:
					_, err = s.List(ctx, storage.ListOptions{Resource: testResource, Labels: sel, Limit: 10})
				default:
					_, err = s.Changes(ctx, 0, 10)
				}
				if i == 4 {
					signaled = true
					busy.Done()
				}
				if errors.Is(err, storage.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("call %d: %v", i%4, err)
					return
				}
			}
		})
	}
	busy.Wait() // every goroutine made a few calls, or failed
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// RunChangesOwned checks that the caller owns the events Changes returns:
// changing their values and labels changes no later read.
func RunChangesOwned(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	start := must(s.CurrentRevision(ctx))(t)
	a := create(t, ctx, s, "ns", "a", map[string]string{"app": "a"})
	must(s.Update(ctx, a.Key, value("a2"), map[string]string{"app": "b"}, storage.Precondition{}))(t)
	must(s.Delete(ctx, a.Key, storage.Precondition{}))(t)

	first := must(s.Changes(ctx, start, 10))(t)
	if len(first) != 3 {
		t.Fatalf("read %d events, want 3", len(first))
	}
	want := make([]storage.Event, 0, len(first))
	for _, ev := range first {
		want = append(want, cloneEvent(ev))
		scribble(&ev.Object)
		if ev.Prev != nil {
			scribble(ev.Prev)
		}
	}
	if got := must(s.Changes(ctx, start, 10))(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("events after the caller changed the first read = %+v, want %+v", got, want)
	}
}

// cloneEvent returns a deep copy of ev.
func cloneEvent(ev storage.Event) storage.Event {
	ev.Object.Value = bytes.Clone(ev.Object.Value)
	ev.Object.Labels = maps.Clone(ev.Object.Labels)
	if ev.Prev != nil {
		prev := *ev.Prev
		prev.Value = bytes.Clone(prev.Value)
		prev.Labels = maps.Clone(prev.Labels)
		ev.Prev = &prev
	}
	return ev
}

// scribble overwrites the value and labels of o in place.
func scribble(o *storage.Object) {
	for i := range o.Value {
		o.Value[i] = 'X'
	}
	for k := range o.Labels {
		o.Labels[k] = "scribbled"
	}
}

// RunTailWhileCompacting tails Changes while 8 writers create objects and a
// compactor compacts, after each read of the tail, up to the last revision
// the tail read. The tail must read consecutive revisions and never fail
// with ErrCompacted; afterwards a read below the compacted revision must.
func RunTailWhileCompacting(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	start := must(s.CurrentRevision(ctx))(t)

	const writers, perWriter = 8, 40
	var wg sync.WaitGroup
	// Writers end by themselves; a failing tail waits for them.
	defer wg.Wait()
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := s.Create(ctx, key("ns", fmt.Sprintf("w%d-%d", w, i)), value("x"), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// compactTo carries the tail's last revision to the compactor;
	// stopCompactor closes it and waits for the compactor.
	compactTo := make(chan int64, 1)
	compactorDone := make(chan struct{})
	stopCompactor := sync.OnceFunc(func() {
		close(compactTo)
		<-compactorDone
	})
	defer stopCompactor()
	go func() {
		defer close(compactorDone)
		for rev := range compactTo {
			if err := s.Compact(ctx, rev); err != nil {
				t.Error(err)
				return
			}
		}
	}()

	last := start
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for last < start+writers*perWriter {
		evs, err := s.Changes(ctx, last, 7)
		if err != nil {
			t.Fatalf("tail after %d: %v", last, err)
		}
		for _, ev := range evs {
			if ev.Revision() != last+1 {
				t.Fatalf("tail read revision %d after %d", ev.Revision(), last)
			}
			last = ev.Revision()
		}
		if len(evs) > 0 {
			// Replace a revision the compactor has not taken yet.
			select {
			case <-compactTo:
			default:
			}
			compactTo <- last
			continue
		}
		select {
		case <-s.Notify():
		case <-poll.C:
		case <-deadline.C:
			t.Fatalf("tail reached revision %d of %d", last, start+writers*perWriter)
		}
	}
	stopCompactor()
	wg.Wait()
	compacted := must(s.CompactedRevision(ctx))(t)
	if compacted <= start || compacted > last {
		t.Fatalf("compacted revision %d, want in (%d, %d]", compacted, start, last)
	}
	_, err := s.Changes(ctx, compacted-1, 7)
	wantErr(t, err, storage.ErrCompacted)
	if evs := must(s.Changes(ctx, compacted, 0))(t); len(evs) != int(last-compacted) {
		t.Fatalf("read %d events after the compacted revision %d, want %d", len(evs), compacted, last-compacted)
	}
}

// RunListRandom compares lists of random objects under random selectors,
// with and without OmitLabels, at the latest revision and at an older one,
// with what the objects say the list must hold. Values vary in size, up
// to larger than a store's buffers; whole lists are released after the
// check, so later ones may reuse their memory.
func RunListRandom(t *testing.T, f Factory) {
	ctx := t.Context()
	s, _ := open(t, f)
	rng := rand.New(rand.NewPCG(1, 2))
	keys, vals := []string{"app", "tier", "n", "example.com/x"}, []string{"a", "b", "c", "1", "2", "10"}
	randLabels := func() map[string]string {
		m := map[string]string{}
		for _, k := range keys {
			if rng.IntN(3) > 0 {
				m[k] = vals[rng.IntN(len(vals))]
			}
		}
		if len(m) == 0 {
			return nil
		}
		return m
	}
	randValue := func(i int) []byte {
		size := rng.IntN(2000)
		if i%40 == 0 {
			size = 70_000 + rng.IntN(200_000)
		}
		return fmt.Appendf(nil, `{"i":%d,"pad":%q}`, i, bytes.Repeat([]byte("x"), size))
	}
	const n = 300
	for i := range n {
		ns := fmt.Sprintf("ns-%d", i%3)
		must(s.Create(ctx, key(ns, fmt.Sprintf("obj-%03d", rng.IntN(1000)*1000+i)), randValue(i), randLabels()))(t)
	}
	ops := []selection.Operator{selection.Equals, selection.DoubleEquals, selection.NotEquals, selection.In,
		selection.NotIn, selection.Exists, selection.DoesNotExist, selection.GreaterThan, selection.LessThan}
	randSelector := func() labels.Selector {
		sel := labels.NewSelector()
		for range 1 + rng.IntN(2) {
			op := ops[rng.IntN(len(ops))]
			var values []string
			switch op {
			case selection.Exists, selection.DoesNotExist:
			case selection.GreaterThan, selection.LessThan:
				values = []string{fmt.Sprint(rng.IntN(12))}
			case selection.In, selection.NotIn:
				values = []string{vals[rng.IntN(len(vals))], vals[rng.IntN(len(vals))]}
			default:
				values = []string{vals[rng.IntN(len(vals))]}
			}
			req, err := labels.NewRequirement(keys[rng.IntN(len(keys))], op, values)
			if err != nil {
				t.Fatal(err)
			}
			sel = sel.Add(*req)
		}
		return sel
	}
	check := func(objs []storage.Object, rev int64) {
		t.Helper()
		for range 40 {
			sel := randSelector()
			for _, limit := range []int{0, 7} {
				for _, omit := range []bool{false, true} {
					opts := storage.ListOptions{Resource: testResource, Labels: sel, Limit: limit, Revision: rev, OmitLabels: omit}
					if rng.IntN(2) == 0 {
						opts.Namespace = "ns-1"
					}
					want := expected(objs, opts)
					if limit > 0 {
						got := listAll(t, ctx, s, opts, nil).Objects
						if omit {
							got, want = withoutLabels(got), withoutLabels(want)
						}
						checkSameList(t, got, want)
						continue
					}
					// One page, released once checked (twice: the second
					// call must do nothing), so that later lists reuse its
					// memory.
					res := must(s.List(ctx, opts))(t)
					got := res.Objects
					if omit {
						got, want = withoutLabels(got), withoutLabels(want)
					}
					checkSameList(t, got, want)
					if res.Release != nil {
						res.Release()
						res.Release()
					}
				}
			}
		}
	}
	all := func() []storage.Object {
		return listAll(t, ctx, s, storage.ListOptions{Resource: testResource}, nil).Objects
	}
	before := all()
	rev := must(s.CurrentRevision(ctx))(t)
	check(before, 0)
	for i, o := range before {
		switch i % 4 {
		case 0:
			must(s.Update(ctx, o.Key, randValue(i), randLabels(), storage.Precondition{}))(t)
		case 1:
			must(s.Delete(ctx, o.Key, storage.Precondition{}))(t)
		}
	}
	check(all(), 0)
	check(before, rev)
}

// withoutLabels returns objs with their labels dropped, as a list with
// OmitLabels may return them.
func withoutLabels(objs []storage.Object) []storage.Object {
	out := slices.Clone(objs)
	for i := range out {
		out[i].Labels = nil
	}
	return out
}
