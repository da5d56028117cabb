package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
	"github.com/setpoint/setpoint/internal/storage/storagetest"
)

// factory makes a database file in a temporary directory.
func factory(t testing.TB) storagetest.Opener {
	path := filepath.Join(t.TempDir(), "setpoint.db")
	return func(t testing.TB) storage.Store {
		t.Helper()
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

func TestCreateGet(t *testing.T)              { storagetest.RunCreateGet(t, factory) }
func TestUpdate(t *testing.T)                 { storagetest.RunUpdate(t, factory) }
func TestDelete(t *testing.T)                 { storagetest.RunDelete(t, factory) }
func TestChanges(t *testing.T)                { storagetest.RunChanges(t, factory) }
func TestConcurrentWriters(t *testing.T)      { storagetest.RunConcurrentWriters(t, factory) }
func TestListLabels(t *testing.T)             { storagetest.RunListLabels(t, factory) }
func TestListFilters(t *testing.T)            { storagetest.RunListFilters(t, factory) }
func TestListSnapshotPagination(t *testing.T) { storagetest.RunListSnapshotPagination(t, factory) }
func TestListRandom(t *testing.T)             { storagetest.RunListRandom(t, factory) }
func TestCompaction(t *testing.T)             { storagetest.RunCompaction(t, factory) }
func TestChangesOwned(t *testing.T)           { storagetest.RunChangesOwned(t, factory) }
func TestTailWhileCompacting(t *testing.T)    { storagetest.RunTailWhileCompacting(t, factory) }
func TestRevisionNeverGoesBack(t *testing.T)  { storagetest.RunRevisionNeverGoesBack(t, factory) }
func TestDurability(t *testing.T)             { storagetest.RunDurability(t, factory) }
func TestNotify(t *testing.T)                 { storagetest.RunNotify(t, factory) }
func TestClosed(t *testing.T)                 { storagetest.RunClosed(t, factory) }
func TestCanceledContext(t *testing.T)        { storagetest.RunCanceledContext(t, factory) }
func TestCanceledWhileQueued(t *testing.T)    { storagetest.RunCanceledWhileQueued(t, factory) }
func TestTailWhileWriting(t *testing.T)       { storagetest.RunTailWhileWriting(t, factory, 1) }
func TestCloseWhileBusy(t *testing.T)         { storagetest.RunCloseWhileBusy(t, factory) }

// TestNewerSchemaRefused checks that a database written by a newer binary
// is not opened.
func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "setpoint.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), path, sqlite.Options{}); err == nil {
		_ = s.Close()
		t.Fatal("opened a database with a newer schema")
	}
}

// TestOddPath opens a database whose path has characters that mean
// something in a URI.
func TestOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20")
	path := filepath.Join(dir, "set point.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
	t.Chdir(dir)
	s, err = sqlite.Open(t.Context(), filepath.Join("rel", "x.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rel", "x.db")); err != nil {
		t.Fatalf("relative database not created: %v", err)
	}
}

// TestSecondOpenRefused checks that one database is never written by two
// stores at once, and that Close releases it.
func TestSecondOpenRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "setpoint.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if other, err := sqlite.Open(t.Context(), path, sqlite.Options{}); err == nil {
		_ = other.Close()
		t.Fatal("opened a database that is already open")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenContextEndsAfterOpen checks that Open's context bounds only Open.
func TestOpenContextEndsAfterOpen(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	cancel()
	key := storage.Key{Resource: "r", Name: "a"}
	if _, err := s.Create(t.Context(), key, []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), key); err != nil {
		t.Fatal(err)
	}
}
