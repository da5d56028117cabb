package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/postgres"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

// uniqueName returns prefix with a random suffix.
func uniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// admin connects to the schema of url for the test's own statements.
func admin(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTerminateConnections terminates the store's connections (only
// those, found by their application_name) again and again while writers
// run. Each write must succeed or fail with storage.ErrUnavailable; every
// acknowledged write must be stored; the store must recover by itself and
// its listener must reconnect and deliver notifications again.
func TestTerminateConnections(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	app := uniqueName("setpoint-fault-")
	s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 4, ApplicationName: app})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := admin(t, url)
	terminate := func() int {
		var n int
		err := db.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	var (
		mu        sync.Mutex
		acked     = map[storage.Key]int64{}
		failed    atomic.Int64
		stop      = make(chan struct{})
		writers   sync.WaitGroup
		successes atomic.Int64
	)
	for w := range 8 {
		writers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := storage.Key{Resource: "example.com/widgets", Namespace: "ns", Name: fmt.Sprintf("w%d-%d", w, i)}
				obj, err := s.Create(ctx, k, []byte(`{}`), map[string]string{"w": fmt.Sprint(w)})
				switch {
				case err == nil:
					successes.Add(1)
					mu.Lock()
					acked[k] = obj.Revision
					mu.Unlock()
				case errors.Is(err, storage.ErrUnavailable):
					failed.Add(1)
				default:
					t.Errorf("create %s: %v", k.Name, err)
					return
				}
				if _, err := s.Get(ctx, k); err != nil && !errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("get %s: %v", k.Name, err)
					return
				}
			}
		})
	}
	terminated := 0
	for range 5 {
		before := successes.Load()
		waitFor(t, "writes between terminations", func() bool { return successes.Load() >= before+20 })
		terminated += terminate()
	}
	close(stop)
	writers.Wait()
	if terminated == 0 {
		t.Fatal("terminated no connection")
	}
	t.Logf("terminated %d connections; %d writes acknowledged, %d failed as unavailable", terminated, len(acked), failed.Load())

	// Writes work again without help.
	var obj storage.Object
	waitFor(t, "a write to succeed", func() bool {
		obj, err = s.Create(ctx, storage.Key{Resource: "example.com/widgets", Namespace: "ns", Name: uniqueName("after-")}, []byte(`{}`), nil)
		return err == nil
	})
	// Nothing acknowledged was lost.
	for k, rev := range acked {
		got, err := s.Get(ctx, k)
		if err != nil || got.Revision != rev {
			t.Fatalf("acknowledged create of %s at %d: get = %+v, %v", k.Name, rev, got, err)
		}
	}
	evs, err := s.Changes(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Revision() != int64(i)+1 {
			t.Fatalf("event %d has revision %d", i, ev.Revision())
		}
	}
	if last := evs[len(evs)-1].Revision(); last != obj.Revision {
		t.Fatalf("log ends at %d, last write at %d", last, obj.Revision)
	}

	// The listener reconnects: once its LISTEN is back, another store's
	// commit must wake Notify.
	waitFor(t, "the listener to reconnect", func() bool {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&n)
		return err == nil && n == 1
	})
	other, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	select {
	case <-s.Notify():
	default:
	}
	if _, err := other.Create(ctx, storage.Key{Resource: "example.com/widgets", Name: "from-other"}, []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Notify():
	case <-time.After(10 * time.Second):
		t.Fatal("no notification of another store's commit after the listener reconnected")
	}
}

// TestDatabaseDown opens a store on a port nothing listens on: Open fails
// with storage.ErrUnavailable and without the password in the message.
func TestDatabaseDown(t *testing.T) {
	const password = "s3cret-Pa55word"
	_, err := postgres.Open(t.Context(), "postgres://setpoint:"+password+"@127.0.0.1:1/setpoint?sslmode=disable",
		postgres.Options{ConnectTimeout: 2 * time.Second})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("open of an unreachable database: %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error shows the password: %v", err)
	}
	_, err = postgres.Open(t.Context(), "postgres://setpoint:"+password+"@127.0.0.1:1/setpoint?sslmode=bogus", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), password) {
		t.Fatalf("bad URL: %v", err)
	}
}

// TestSlowDatabase holds the locks a write and a read need from another
// connection: both must end with an error matching
// context.DeadlineExceeded after the lock timeout, not hang, and work
// again once the locks are gone.
func TestSlowDatabase(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 2, LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := storage.Key{Resource: "example.com/widgets", Name: "a"}
	if _, err := s.Create(ctx, key, []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	db := admin(t, url)
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT FROM meta FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(ctx, storage.Key{Resource: "example.com/widgets", Name: "b"}, []byte(`{}`), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("create while the revision is locked: %v, want DeadlineExceeded", err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE objects IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, key); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get while objects is locked: %v, want DeadlineExceeded", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, storage.Key{Resource: "example.com/widgets", Name: "b"}, []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, key); err != nil {
		t.Fatal(err)
	}
}

// TestTerminatedMidCommit terminates the writer's session while the
// server runs the batch's statements, after the whole pipeline, COMMIT
// included, was sent: the writer cannot tell from the error whether the
// batch committed, asks the server about its transaction, learns it was
// aborted and reruns it. The write must succeed exactly once.
func TestTerminatedMidCommit(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	app := uniqueName("setpoint-midcommit-")
	s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 2, ApplicationName: app})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := admin(t, url)
	// Inserting log rows takes a while, the first time: long enough to
	// terminate the session in the middle. A sequence counts the times,
	// as the rollback does not undo it.
	for _, q := range []string{
		`CREATE SEQUENCE slow_once`,
		`CREATE FUNCTION slow_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('slow_once') = 1 THEN
				PERFORM pg_sleep(30);
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER slow_once BEFORE INSERT ON log FOR EACH STATEMENT EXECUTE FUNCTION slow_once()`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	type outcome struct {
		obj storage.Object
		err error
	}
	done := make(chan outcome, 1)
	key := storage.Key{Resource: "example.com/widgets", Namespace: "ns", Name: "a"}
	go func() {
		obj, err := s.Create(ctx, key, []byte(`{"a":1}`), nil)
		done <- outcome{obj, err}
	}()
	waitFor(t, "the writer to sleep in the trigger", func() bool {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'PgSleep'`, app).Scan(&n)
		return err == nil && n == 1
	})
	if _, err := db.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'PgSleep'`, app); err != nil {
		t.Fatal(err)
	}
	var o outcome
	select {
	case o = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("create did not return")
	}
	if o.err != nil {
		t.Fatalf("create: %v", o.err)
	}
	evs, err := s.Changes(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Revision() != o.obj.Revision || evs[0].Object.Key != key {
		t.Fatalf("log after the rerun = %+v, want one create at %d", evs, o.obj.Revision)
	}
}

// TestReadsAfterSessionsEnded terminates the sessions of the store's
// read pool right after they were used, so pgxpool does not ping them
// before reuse: every kind of read must still succeed, on new
// connections, as reads are safe to run again.
func TestReadsAfterSessionsEnded(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	app := uniqueName("setpoint-reads-")
	s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 2, ApplicationName: app})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := admin(t, url)
	key := storage.Key{Resource: "example.com/widgets", Namespace: "ns", Name: "a"}
	if _, err := s.Create(ctx, key, []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	reads := map[string]func() error{
		"get": func() error { _, err := s.Get(ctx, key); return err },
		"list": func() error {
			_, err := s.List(ctx, storage.ListOptions{Resource: key.Resource})
			return err
		},
		"count":    func() error { _, err := s.Count(ctx, key.Resource, ""); return err },
		"revision": func() error { _, err := s.CurrentRevision(ctx); return err },
		"changes":  func() error { _, err := s.Changes(ctx, 0, 10); return err },
	}
	for name, read := range reads {
		if err := read(); err != nil {
			t.Fatalf("%s before: %v", name, err)
		}
		// Only the pool's sessions: the pool's connections are idle now.
		if _, err := db.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = $1 AND query NOT LIKE 'LISTEN%' AND state = 'idle'`, app); err != nil {
			t.Fatal(err)
		}
		if err := read(); err != nil {
			t.Errorf("%s after its session ended: %v", name, err)
		}
	}
}
