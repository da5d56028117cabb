package postgres_test

import (
	"testing"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/postgres"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
	"github.com/setpoint/setpoint/internal/storage/storagetest"
)

// testOptions keeps the pools small: many tests and replicas share one server.
var testOptions = postgres.Options{MaxConns: 4}

// factory makes a fresh schema; each Opener call opens another store on it,
// as another replica would.
func factory(t testing.TB) storagetest.Opener {
	url := pgtest.URL(t)
	return func(t testing.TB) storage.Store {
		t.Helper()
		s, err := postgres.Open(t.Context(), url, testOptions)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

func TestCreateGet(t *testing.T)                { storagetest.RunCreateGet(t, factory) }
func TestUpdate(t *testing.T)                   { storagetest.RunUpdate(t, factory) }
func TestDelete(t *testing.T)                   { storagetest.RunDelete(t, factory) }
func TestChanges(t *testing.T)                  { storagetest.RunChanges(t, factory) }
func TestConcurrentWriters(t *testing.T)        { storagetest.RunConcurrentWriters(t, factory) }
func TestListLabels(t *testing.T)               { storagetest.RunListLabels(t, factory) }
func TestListFilters(t *testing.T)              { storagetest.RunListFilters(t, factory) }
func TestListSnapshotPagination(t *testing.T)   { storagetest.RunListSnapshotPagination(t, factory) }
func TestListRandom(t *testing.T)               { storagetest.RunListRandom(t, factory) }
func TestCompaction(t *testing.T)               { storagetest.RunCompaction(t, factory) }
func TestChangesOwned(t *testing.T)             { storagetest.RunChangesOwned(t, factory) }
func TestTailWhileCompacting(t *testing.T)      { storagetest.RunTailWhileCompacting(t, factory) }
func TestRevisionNeverGoesBack(t *testing.T)    { storagetest.RunRevisionNeverGoesBack(t, factory) }
func TestDurability(t *testing.T)               { storagetest.RunDurability(t, factory) }
func TestNotify(t *testing.T)                   { storagetest.RunNotify(t, factory) }
func TestClosed(t *testing.T)                   { storagetest.RunClosed(t, factory) }
func TestCanceledContext(t *testing.T)          { storagetest.RunCanceledContext(t, factory) }
func TestCanceledWhileQueued(t *testing.T)      { storagetest.RunCanceledWhileQueued(t, factory) }
func TestTailWhileWriting(t *testing.T)         { storagetest.RunTailWhileWriting(t, factory, 1) }
func TestTailWhileWritingReplicas(t *testing.T) { storagetest.RunTailWhileWriting(t, factory, 3) }
func TestCloseWhileBusy(t *testing.T)           { storagetest.RunCloseWhileBusy(t, factory) }
