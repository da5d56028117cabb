package sqlite_test

import (
	"errors"
	"maps"
	"path/filepath"
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
