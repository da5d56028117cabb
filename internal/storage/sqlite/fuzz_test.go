package sqlite_test

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

func openFuzzStore(f *testing.F) *sqlite.Store {
	s, err := sqlite.Open(f.Context(), filepath.Join(f.TempDir(), "fuzz.db"), sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	return s
}

// FuzzSelector lists with any selector the parser accepts and checks the
// result against the selector applied in Go to every object.
func FuzzSelector(f *testing.F) {
	for _, seed := range []string{
		"", "app=web", "app==web", "app!=web", "app in (web,db)", "app notin (web)", "app", "!app",
		"app=web,tier=front", "tier,!app", "app in (),x", "a.b/c=d", "app=web,app!=web", "x>1",
	} {
		f.Add(seed)
	}
	s := openFuzzStore(f)
	const resource = "example.com/widgets"
	sets := []map[string]string{
		{"app": "web", "tier": "front"}, {"app": "db"}, {"tier": "back", "a.b/c": "d"}, nil, {"x": "2"},
	}
	var all []storage.Object
	for i, lbl := range sets {
		obj, err := s.Create(f.Context(), storage.Key{Resource: resource, Namespace: "ns", Name: string(rune('a' + i))}, []byte("{}"), lbl)
		if err != nil {
			f.Fatal(err)
		}
		all = append(all, obj)
	}
	f.Fuzz(func(t *testing.T, text string) {
		sel, err := labels.Parse(text)
		if err != nil {
			return
		}
		res, err := s.List(t.Context(), storage.ListOptions{Resource: resource, Labels: sel})
		if err != nil {
			t.Fatalf("list %q: %v", text, err)
		}
		var want []string
		for _, o := range all {
			if sel.Matches(labels.Set(o.Labels)) {
				want = append(want, o.Name)
			}
		}
		if len(res.Objects) != len(want) {
			t.Fatalf("list %q returned %d objects, want %v", text, len(res.Objects), want)
		}
		for i, o := range res.Objects {
			if o.Name != want[i] {
				t.Fatalf("list %q object %d = %s, want %s", text, i, o.Name, want[i])
			}
		}
	})
}

// FuzzKeysAndLabels stores objects under arbitrary keys and labels and
// finds them again by key and through the label index.
func FuzzKeysAndLabels(f *testing.F) {
	f.Add("ns", "name", "app", "web")
	f.Add("", "x'); DROP TABLE objects; --", "k\x00ey", "v\"al")
	f.Add("ns", "ünïcode", "a.b/c", "")
	s := openFuzzStore(f)
	const resource = "example.com/fuzz"
	f.Fuzz(func(t *testing.T, ns, name, lk, lv string) {
		ctx := t.Context()
		key := storage.Key{Resource: resource, Namespace: ns, Name: name}
		lbl := map[string]string{lk: lv}
		if _, err := s.Delete(ctx, key, storage.Precondition{}); err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		created, err := s.Create(ctx, key, []byte(name), lbl)
		if !utf8.ValidString(lk) || !utf8.ValidString(lv) {
			if !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("create with labels %q=%q: %v, want ErrInvalid", lk, lv, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if got.Revision != created.Revision || string(got.Value) != name || !maps.Equal(got.Labels, lbl) {
			t.Fatalf("get = %+v, want %+v", got, created)
		}
		res, err := s.List(ctx, storage.ListOptions{Resource: resource, Namespace: ns, Name: name,
			Labels: labels.SelectorFromValidatedSet(labels.Set(lbl))})
		if err != nil {
			t.Fatal(err)
		}
		// An empty namespace or name lists all, so other keys may match too.
		found := 0
		for _, o := range res.Objects {
			if o.Key == key {
				found++
			}
		}
		if found != 1 {
			t.Fatalf("list by label %q=%q found %s %d times in %+v", lk, lv, name, found, res.Objects)
		}
	})
}

// FuzzSnapshotList runs a program of writes read from the input against the
// store and a model, then lists at every revision the program passed
// through, in pages of every size, and compares with the model's state at
// that revision. Each input byte is one write: bits 0-2 pick one of eight
// keys, bits 3-4 the kind (create, update, delete, update labels), bits 5-7
// a label value.
func FuzzSnapshotList(f *testing.F) {
	f.Add([]byte{0, 1, 2, 8, 17, 3, 11, 40, 64, 9, 130, 16})
	f.Add([]byte{0, 16, 0, 16, 0, 8, 24, 1, 9, 17, 1})
	f.Add([]byte("create update delete and more writes on eight keys"))
	f.Fuzz(func(t *testing.T, program []byte) {
		if len(program) > 64 {
			program = program[:64]
		}
		ctx := t.Context()
		s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		const resource = "example.com/snap"
		state := map[storage.Key]storage.Object{}
		history := map[int64]map[storage.Key]storage.Object{0: {}}
		for _, b := range program {
			k := storage.Key{Resource: resource, Namespace: fmt.Sprint("ns", b&1), Name: fmt.Sprint("obj", b>>1&3)}
			lbl := map[string]string{"v": fmt.Sprint(b >> 5)}
			var obj storage.Object
			switch b >> 3 & 3 {
			case 0:
				obj, err = s.Create(ctx, k, []byte{b}, lbl)
			case 1:
				obj, err = s.Update(ctx, k, []byte{b}, state[k].Labels, storage.Precondition{})
			case 2:
				obj, err = s.Delete(ctx, k, storage.Precondition{})
			default:
				obj, err = s.Update(ctx, k, []byte{b}, lbl, storage.Precondition{Revision: state[k].Revision})
			}
			if err != nil {
				if errors.Is(err, storage.ErrExists) || errors.Is(err, storage.ErrNotFound) {
					continue
				}
				t.Fatal(err)
			}
			if b>>3&3 == 2 {
				delete(state, k)
			} else {
				state[k] = obj
			}
			history[obj.Revision] = maps.Clone(state)
		}
		sel := labels.SelectorFromSet(labels.Set{"v": "1"})
		for rev, want := range history {
			if rev == 0 {
				continue
			}
			for _, opts := range []storage.ListOptions{{}, {Labels: sel}, {Namespace: "ns1"}} {
				opts.Resource, opts.Revision = resource, rev
				for limit := range 4 {
					opts.Limit, opts.After = limit, nil
					var got []storage.Object
					for {
						res, err := s.List(ctx, opts)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, res.Objects...)
						if !res.More {
							break
						}
						opts.After = &res.Objects[len(res.Objects)-1].Key
					}
					checkState(t, rev, opts, got, want)
				}
			}
		}
	})
}

// checkState compares a list at rev with the model's state then.
func checkState(t *testing.T, rev int64, opts storage.ListOptions, got []storage.Object, state map[storage.Key]storage.Object) {
	t.Helper()
	var want []storage.Object
	for _, o := range state {
		if opts.Namespace != "" && o.Namespace != opts.Namespace {
			continue
		}
		if opts.Labels != nil && !opts.Labels.Matches(labels.Set(o.Labels)) {
			continue
		}
		want = append(want, o)
	}
	slices.SortFunc(want, func(a, b storage.Object) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	if len(got) != len(want) {
		t.Fatalf("list %+v at %d: %d objects, want %d: %+v", opts, rev, len(got), len(want), want)
	}
	for i := range got {
		if got[i].Key != want[i].Key || got[i].Revision != want[i].Revision || string(got[i].Value) != string(want[i].Value) ||
			!maps.Equal(got[i].Labels, want[i].Labels) {
			t.Fatalf("list %+v at %d: object %d = %+v, want %+v", opts, rev, i, got[i], want[i])
		}
	}
}
