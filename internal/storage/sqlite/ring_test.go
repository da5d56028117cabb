package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/setpoint/setpoint/internal/storage"
)

// TestChangesRing checks that Changes answered from the ring equals the
// log table's answer for every start revision and limit: while the ring
// covers the whole log, after it wrapped (older starts read the table) and
// after a compaction inside the ring's range.
func TestChangesRing(t *testing.T) {
	const ringSize = 16
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"), Options{ChangeCache: ringSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	// write does n writes of every kind: creates, updates (with and without
	// labels) and deletes.
	next := 0
	write := func(n int) {
		t.Helper()
		for range n {
			k := storage.Key{Resource: "/configmaps", Namespace: "ns", Name: fmt.Sprintf("o%d", next/3)}
			var err error
			switch next % 3 {
			case 0:
				_, err = s.Create(ctx, k, fmt.Appendf(nil, `{"v":%d}`, next), map[string]string{"app": "a", "n": fmt.Sprint(next)})
			case 1:
				_, err = s.Update(ctx, k, fmt.Appendf(nil, `{"v":%d}`, next), nil, storage.Precondition{})
			case 2:
				if next%2 == 0 {
					_, err = s.Delete(ctx, k, storage.Precondition{})
				} else {
					_, err = s.Update(ctx, k, fmt.Appendf(nil, `{"v":%d}`, next), map[string]string{"app": "b"}, storage.Precondition{})
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	// check compares both paths for every start; ringFrom is the lowest
	// start the ring must answer itself.
	check := func(ringFrom int64) {
		t.Helper()
		cur, err := s.CurrentRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for after := int64(0); after <= cur+1; after++ {
			for _, limit := range []int{0, 1, 5, 100} {
				want, wantErr := s.sqlChanges(ctx, after, limit)
				got, hit, gotErr := s.ringChanges(after, limit)
				if hit != (after >= ringFrom) {
					t.Fatalf("after %d: ring hit %v, want %v", after, hit, after >= ringFrom)
				}
				if !hit {
					got, gotErr = s.Changes(ctx, after, limit)
				}
				if !errors.Is(gotErr, storage.ErrCompacted) || !errors.Is(wantErr, storage.ErrCompacted) {
					if gotErr != nil || wantErr != nil {
						t.Fatalf("after %d limit %d: errors %v, SQL %v", after, limit, gotErr, wantErr)
					}
				}
				if len(got) == 0 && len(want) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("after %d limit %d: ring %+v\nSQL %+v", after, limit, got, want)
				}
			}
		}
	}

	write(10)
	check(0)
	write(3 * ringSize)
	cur, err := s.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(cur - ringSize)

	// A compaction inside the ring's range: starts below it fail on both
	// paths, the rest is answered from the ring.
	compactTo := cur - ringSize/2
	if err := s.Compact(ctx, compactTo); err != nil {
		t.Fatal(err)
	}
	if _, hit, err := s.ringChanges(compactTo-1, 0); !hit || !errors.Is(err, storage.ErrCompacted) {
		t.Fatalf("ring below compacted: hit %v, err %v", hit, err)
	}
	if _, hit, err := s.ringChanges(cur-ringSize, 0); !hit || !errors.Is(err, storage.ErrCompacted) {
		t.Fatalf("ring below compacted, inside its range before: hit %v, err %v", hit, err)
	}
	check(0)
	write(5)
	check(0)
}

// TestChangesRingOwnership checks that events from the ring own their
// slices: changing an event or the value passed to Create changes no later
// answer.
func TestChangesRingOwnership(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	k := storage.Key{Resource: "/configmaps", Namespace: "ns", Name: "a"}
	value := []byte(`{"v":1}`)
	if _, err := s.Create(ctx, k, value, map[string]string{"app": "a"}); err != nil {
		t.Fatal(err)
	}
	value[2] = 'X'
	del, err := s.Delete(ctx, k, storage.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	del.Value[2] = 'Y'
	read := func() []storage.Event {
		t.Helper()
		evs, hit, err := s.ringChanges(0, 0)
		if err != nil || !hit || len(evs) != 2 {
			t.Fatalf("ring: %d events, hit %v, err %v", len(evs), hit, err)
		}
		return evs
	}
	first := read()
	for _, ev := range first {
		ev.Object.Value[2] = 'Z'
		ev.Object.Labels["app"] = "z"
		if ev.Prev != nil {
			ev.Prev.Value[2] = 'Z'
		}
	}
	want, err := s.sqlChanges(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(); !reflect.DeepEqual(got, want) {
		t.Fatalf("ring %+v\nSQL %+v", got, want)
	}
	if string(want[0].Object.Value) != `{"v":1}` {
		t.Fatalf("logged value %s, want the value as created", want[0].Object.Value)
	}
}
