package e2e

import (
	"testing"

	"errors"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/watch"
)

// change is one change of one object: as a watch delivered it, or as a
// write had it acknowledged (rv is then the resourceVersion the write
// answered), or as a write whose outcome is unknown (rv 0).
type change struct {
	typ  watch.EventType
	name string
	rv   uint64
}

// String prints c for failure messages.
func (c change) String() string { return fmt.Sprintf("%s %s@%d", c.typ, c.name, c.rv) }

// The watch validators below check a watch history, the changes one
// watcher saw in order (across resumptions), against the writes made. Each
// returns nil or an error that names the first few offending changes.

// maxReported bounds how many offending changes a validator names.
const maxReported = 5

// validateOrdered checks that resourceVersions strictly increase along the
// history: a watch delivers changes in revision order.
func validateOrdered(history []change) error {
	var errs []error
	for i := 1; i < len(history) && len(errs) < maxReported; i++ {
		if history[i].rv <= history[i-1].rv {
			errs = append(errs, fmt.Errorf("event %d (%v) does not come after event %d (%v)", i, history[i], i-1, history[i-1]))
		}
	}
	return errors.Join(errs...)
}

// validateUnique checks that no change is delivered twice.
func validateUnique(history []change) error {
	var errs []error
	seen := make(map[change]int, len(history))
	for i, c := range history {
		if first, dup := seen[c]; dup && len(errs) < maxReported {
			errs = append(errs, fmt.Errorf("event %d (%v) repeats event %d", i, c, first))
		}
		seen[c] = i
	}
	return errors.Join(errs...)
}

// validateComplete checks that the history holds every acknowledged write
// with the type, name and resourceVersion the write answered, and nothing
// else but at most one change for each write whose outcome is unknown
// (inDoubt: same type and name, any resourceVersion).
func validateComplete(history, acked, inDoubt []change) error {
	var errs []error
	report := func(err error) {
		if len(errs) < maxReported {
			errs = append(errs, err)
		}
	}
	byRV := make(map[uint64]change, len(history))
	for _, c := range history {
		byRV[c.rv] = c
	}
	ackedRVs := make(map[uint64]change, len(acked))
	missing := 0
	for _, w := range acked {
		if other, dup := ackedRVs[w.rv]; dup {
			report(fmt.Errorf("writes %v and %v were acknowledged with one resourceVersion", other, w))
		}
		ackedRVs[w.rv] = w
		got, ok := byRV[w.rv]
		switch {
		case !ok:
			missing++
			report(fmt.Errorf("acknowledged write %v is missing", w))
		case got != w:
			report(fmt.Errorf("acknowledged write %v was delivered as %v", w, got))
		}
	}
	doubt := map[change]int{}
	for _, w := range inDoubt {
		doubt[change{typ: w.typ, name: w.name}]++
	}
	invented := 0
	for _, c := range history {
		if _, ok := ackedRVs[c.rv]; ok {
			continue
		}
		k := change{typ: c.typ, name: c.name}
		if doubt[k] > 0 {
			doubt[k]--
			continue
		}
		invented++
		report(fmt.Errorf("%v matches no write", c))
	}
	if missing+invented > 0 {
		errs = append(errs, fmt.Errorf("%d acknowledged writes missing, %d changes that no write made, out of %d events for %d acknowledged and %d unknown writes",
			missing, invented, len(history), len(acked), len(inDoubt)))
	}
	return errors.Join(errs...)
}

// validateAgree checks that every watcher saw the same history.
func validateAgree(histories map[string][]change) error {
	names := slices.Sorted(maps.Keys(histories))
	if len(names) < 2 {
		return nil
	}
	ref := histories[names[0]]
	var errs []error
	for _, name := range names[1:] {
		h := histories[name]
		if slices.Equal(h, ref) {
			continue
		}
		i := 0
		for i < min(len(h), len(ref)) && h[i] == ref[i] {
			i++
		}
		errs = append(errs, fmt.Errorf("watcher %s saw %d events, %s saw %d; they differ first at event %d: %v vs %v",
			name, len(h), names[0], len(ref), i, eventAt(h, i), eventAt(ref, i)))
	}
	return errors.Join(errs...)
}

// eventAt prints history[i], or "the end" past it.
func eventAt(history []change, i int) string {
	if i < len(history) {
		return history[i].String()
	}
	return "the end"
}

// validateHistories runs every validator on the histories of named
// watchers and returns what failed, each prefixed with the validator's
// name (and the watcher's).
func validateHistories(histories map[string][]change, acked, inDoubt []change) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(histories)) {
		h := histories[name]
		for _, v := range []struct {
			name string
			err  error
		}{
			{"ordered", validateOrdered(h)},
			{"unique", validateUnique(h)},
			{"complete", validateComplete(h, acked, inDoubt)},
		} {
			if v.err != nil {
				errs = append(errs, fmt.Errorf("%s: watcher %s: %w", v.name, name, v.err))
			}
		}
	}
	if err := validateAgree(histories); err != nil {
		errs = append(errs, fmt.Errorf("agree: %w", err))
	}
	return errors.Join(errs...)
}

// TestWatchValidators checks that each validator catches what it is for
// and accepts a correct history.
func TestWatchValidators(t *testing.T) {
	t.Parallel()
	a1 := change{watch.Added, "a", 1}
	b2 := change{watch.Added, "b", 2}
	a3 := change{watch.Modified, "a", 3}
	b4 := change{watch.Deleted, "b", 4}
	acked := []change{a1, b2, a3, b4}
	good := []change{a1, b2, a3, b4}
	if err := validateHistories(map[string][]change{"x": good, "y": good}, acked, nil); err != nil {
		t.Errorf("a correct history fails: %v", err)
	}
	inDoubt := []change{{typ: watch.Added, name: "c"}}
	withDoubt := []change{a1, b2, a3, b4, {watch.Added, "c", 5}}
	if err := validateComplete(withDoubt, acked, inDoubt); err != nil {
		t.Errorf("a write in doubt that happened fails: %v", err)
	}
	if err := validateComplete(good, acked, inDoubt); err != nil {
		t.Errorf("a write in doubt that did not happen fails: %v", err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"ordered", validateOrdered([]change{a1, a3, b2, b4})},
		{"unique", validateUnique([]change{a1, b2, b2, a3, b4})},
		{"complete: gap", validateComplete([]change{a1, a3, b4}, acked, nil)},
		{"complete: invented", validateComplete(withDoubt, acked, nil)},
		{"complete: doubt used twice", validateComplete(append(withDoubt, change{watch.Added, "c", 6}), acked, inDoubt)},
		{"complete: one version for two writes", validateComplete(good, append(acked, change{watch.Modified, "a", 1}), nil)},
		{"complete: wrong type", validateComplete([]change{a1, b2, {watch.Added, "a", 3}, b4}, acked, nil)},
		{"agree", validateAgree(map[string][]change{"x": good, "y": good[:3]})},
	} {
		if tc.err == nil {
			t.Errorf("%s: a bad history passes", tc.name)
		}
	}
}
