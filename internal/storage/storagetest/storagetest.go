// Package storagetest is the conformance suite every storage.Store backend
// runs, and the benchmarks they share. A backend's test file is a list of
// one-line tests, each calling one Run* function with the backend's Factory
// (see internal/storage/sqlite/sqlite_test.go); its benchmarks call the
// Bench* functions the same way.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/setpoint/setpoint/internal/storage"
)

// Opener opens the database the Factory made. Each call opens it again, so
// a test can close a store and reopen the same data; the returned store must
// be closed by the test or by a t.Cleanup the opener registers.
type Opener func(t testing.TB) storage.Store

// Factory makes a new, empty database for one test and returns its Opener.
type Factory func(t testing.TB) Opener

// open makes a fresh database and opens it once.
func open(t testing.TB, f Factory) (storage.Store, Opener) {
	t.Helper()
	o := f(t)
	return o(t), o
}

// testResource is the resource the suite writes.
const testResource = "example.com/widgets"

func key(ns, name string) storage.Key {
	return storage.Key{Resource: testResource, Namespace: ns, Name: name}
}

func value(s string) []byte { return []byte(fmt.Sprintf(`{"v":%q}`, s)) }

// must returns a function that fails t if err is set and returns v:
// must(s.Get(ctx, k))(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// write creates a test object and returns it.
func create(t testing.TB, ctx context.Context, s storage.Store, ns, name string, lbl map[string]string) storage.Object {
	t.Helper()
	return must(s.Create(ctx, key(ns, name), value(ns+"/"+name), lbl))(t)
}
