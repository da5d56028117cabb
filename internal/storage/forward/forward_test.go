package forward_test

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/forward"
	"github.com/setpoint/setpoint/internal/storage/postgres"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
	"github.com/setpoint/setpoint/internal/storage/storagetest"
)

// testRetry is the tests' RetryPeriod: short, so takeovers are quick.
const testRetry = 100 * time.Millisecond

// replica is one forwarding store with its peer listener's address.
type replica struct {
	*forward.Store
	addr string
}

// openReplica opens a replica on the schema at url, with a peer listener
// on a free loopback port unless opts.Listener is set.
func openReplica(t testing.TB, url string, opts forward.Options) replica {
	t.Helper()
	local, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Listener == nil {
		if opts.Listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			_ = local.Close()
			t.Fatal(err)
		}
	}
	ln := opts.Listener
	if opts.RetryPeriod == 0 {
		opts.RetryPeriod = testRetry
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := forward.New(local, opts)
	if err != nil {
		_ = ln.Close()
		_ = local.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return replica{s, ln.Addr().String()}
}

// factory makes a fresh schema and opens a first replica on it, which
// becomes the writer; each Opener call opens another replica, which
// forwards its writes to the first.
func factory(t testing.TB) storagetest.Opener {
	url := pgtest.URL(t)
	openReplica(t, url, forward.Options{})
	return func(t testing.TB) storage.Store {
		t.Helper()
		return openReplica(t, url, forward.Options{})
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
func TestTailWhileWritingReplicas(t *testing.T) { storagetest.RunTailWhileWriting(t, factory, 3) }
func TestCloseWhileBusy(t *testing.T)           { storagetest.RunCloseWhileBusy(t, factory) }
