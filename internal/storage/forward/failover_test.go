package forward_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/forward"
	"github.com/setpoint/setpoint/internal/storage/postgres"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

var testResource = "example.com/widgets"

func key(name string) storage.Key {
	return storage.Key{Resource: testResource, Namespace: "ns", Name: name}
}

// observer is a plain store on a schema, which reads the writer's record.
type observer struct {
	*postgres.Store
	el *postgres.Election
}

// newObserver opens an observer on the schema at url.
func newObserver(t *testing.T, url string) observer {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	el := s.NewElection()
	t.Cleanup(func() { _ = el.Resign(context.Background()) })
	return observer{s, el}
}

// ElectedWriter reads the writer's record.
func (o observer) ElectedWriter(ctx context.Context) (postgres.WriterRecord, bool, error) {
	return o.el.Elected(ctx)
}

// admin connects to the schema at url as the tests' database user.
func admin(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// waitWriter waits until the published writer is at one of addrs and
// returns its address.
func waitWriter(t *testing.T, obs observer, addrs ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, ok, err := obs.ElectedWriter(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if ok && rec.Address == a {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("writer %+v, want one of %v", rec.Address, addrs)
		}
		time.Sleep(testRetry / 4)
	}
}

// TestForwardsToWriter checks that the first replica leads, that the
// others send it their writes and that it commits them.
func TestForwardsToWriter(t *testing.T) {
	url := pgtest.URL(t)
	w := openReplica(t, url, forward.Options{})
	a, b := openReplica(t, url, forward.Options{}), openReplica(t, url, forward.Options{})
	waitWriter(t, newObserver(t, url), w.addr)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 40 {
		s := []replica{a, b}[i%2]
		wg.Go(func() {
			if _, err := s.Create(ctx, key(fmt.Sprint(i)), []byte(`{}`), map[string]string{"i": fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n, err := w.Count(ctx, testResource, "ns"); err != nil || n != 40 {
		t.Fatalf("count = %d, %v; want 40", n, err)
	}
	sa, sb, sw := a.Stats(), b.Stats(), w.Stats()
	if sa.Forwarded != 20 || sb.Forwarded != 20 || sa.Fallbacks+sb.Fallbacks != 0 || sw.Served != 40 {
		t.Fatalf("stats: %+v, %+v, writer %+v; want 20 forwarded by each and 40 served", sa, sb, sw)
	}
}

// TestErrorsKeepSentinels checks that errors of forwarded writes match the
// same sentinels, with the same messages, as the writer's own.
func TestErrorsKeepSentinels(t *testing.T) {
	url := pgtest.URL(t)
	w := openReplica(t, url, forward.Options{})
	f := openReplica(t, url, forward.Options{})
	ctx := t.Context()
	obj, err := w.Create(ctx, key("a"), []byte(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		do   func(s storage.Store) error
		want error
	}{
		{"exists", func(s storage.Store) error {
			_, err := s.Create(ctx, key("a"), []byte(`{}`), nil)
			return err
		}, storage.ErrExists},
		{"not found", func(s storage.Store) error {
			_, err := s.Update(ctx, key("missing"), []byte(`{}`), nil, storage.Precondition{})
			return err
		}, storage.ErrNotFound},
		{"conflict", func(s storage.Store) error {
			_, err := s.Delete(ctx, key("a"), storage.Precondition{Revision: obj.Revision + 100})
			return err
		}, storage.ErrConflict},
		{"invalid", func(s storage.Store) error {
			_, err := s.Create(ctx, key("a\x00b"), []byte(`{}`), nil)
			return err
		}, storage.ErrInvalid},
		{"invalid label", func(s storage.Store) error {
			_, err := s.Create(ctx, key("b"), []byte(`{}`), map[string]string{"k": "\xff"})
			return err
		}, storage.ErrInvalid},
	}
	for _, c := range cases {
		want, got := c.do(w), c.do(f)
		if !errors.Is(got, c.want) || !errors.Is(want, c.want) || got.Error() != want.Error() {
			t.Errorf("%s: forwarded %v, local %v; want both %v with one message", c.name, got, want, c.want)
		}
	}
	if st := f.Stats(); st.Forwarded != int64(len(cases)) {
		t.Errorf("forwarded %d writes, want %d", st.Forwarded, len(cases))
	}
	// A deadline already passed fails without a send.
	dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := f.Create(dctx, key("late"), []byte(`{}`), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("create after the deadline: %v", err)
	}
	// Deleting through the forwarder returns the last state.
	got, err := f.Delete(ctx, key("a"), storage.Precondition{Revision: obj.Revision})
	if err != nil || string(got.Value) != `{}` || got.Key != key("a") || got.Revision <= obj.Revision {
		t.Fatalf("delete = %+v, %v", got, err)
	}
}

// writeLoad runs creates through the given replicas until stop is closed,
// and returns the names acknowledged and the number of writes that failed
// with an unknown outcome. Any other error fails t.
func writeLoad(t *testing.T, stop <-chan struct{}, replicas ...replica) (acked func() []string, unknown *atomic.Int64) {
	var (
		mu   sync.Mutex
		done []string
		wg   sync.WaitGroup
	)
	unknown = &atomic.Int64{}
	for i := range 8 {
		s := replicas[i%len(replicas)]
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", i, j)
				_, err := s.Create(t.Context(), key(name), []byte(`{}`), nil)
				switch {
				case err == nil:
					mu.Lock()
					done = append(done, name)
					mu.Unlock()
				case errors.Is(err, storage.ErrUnavailable) && strings.Contains(err.Error(), "may or may not"):
					unknown.Add(1)
				default:
					t.Errorf("create %s: %v", name, err)
					return
				}
			}
		})
	}
	return func() []string {
		wg.Wait()
		return done
	}, unknown
}

// checkStored fails t unless every name is stored.
func checkStored(t *testing.T, s storage.Reader, names []string) {
	t.Helper()
	for _, name := range names {
		if _, err := s.Get(t.Context(), key(name)); err != nil {
			t.Fatalf("acknowledged %s: %v", name, err)
		}
	}
}

// TestWriterClosedStandbyTakesOver closes the writer while two replicas
// write through it: a standby must take over, and every acknowledged
// write must be stored.
func TestWriterClosedStandbyTakesOver(t *testing.T) {
	url := pgtest.URL(t)
	obs := newObserver(t, url)
	w := openReplica(t, url, forward.Options{})
	a, b := openReplica(t, url, forward.Options{}), openReplica(t, url, forward.Options{})
	waitWriter(t, obs, w.addr)
	stop := make(chan struct{})
	acked, unknown := writeLoad(t, stop, a, b)
	waitServed(t, w, 50)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := waitWriter(t, obs, a.addr, b.addr)
	leader := map[string]replica{a.addr: a, b.addr: b}[next]
	waitServed(t, leader, 50)
	close(stop)
	names := acked()
	checkStored(t, obs, names)
	t.Logf("%d writes acknowledged, %d unknown; %s took over", len(names), unknown.Load(), next)
}

// waitServed waits until r served n writes for peers.
func waitServed(t *testing.T, r replica, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.Stats().Served < n {
		if time.Now().After(deadline) {
			t.Fatalf("served %d writes, want %d", r.Stats().Served, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWriterSessionTerminated ends the writer's election session, as a
// writer killed or cut off from the database would: the lock frees, a
// replica takes the lead again (possibly the same one, in a new term),
// and every acknowledged write is stored.
func TestWriterSessionTerminated(t *testing.T) {
	url := pgtest.URL(t)
	obs := newObserver(t, url)
	w := openReplica(t, url, forward.Options{})
	a, b := openReplica(t, url, forward.Options{}), openReplica(t, url, forward.Options{})
	waitWriter(t, obs, w.addr)
	old, _, err := obs.ElectedWriter(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	acked, unknown := writeLoad(t, stop, a, b)
	waitServed(t, w, 50)
	var terminated bool
	if err := admin(t, url).QueryRow(t.Context(), `SELECT pg_terminate_backend(pid) FROM writer`).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("terminate the writer's session: %v, %v", terminated, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, ok, err := obs.ElectedWriter(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if ok && string(rec.Token) != string(old.Token) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new term")
		}
		time.Sleep(testRetry / 4)
	}
	before := w.Stats().Served + a.Stats().Served + b.Stats().Served
	for w.Stats().Served+a.Stats().Served+b.Stats().Served < before+50 {
		if time.Now().After(deadline) {
			t.Fatal("no writes served in the new term")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	names := acked()
	checkStored(t, obs, names)
	t.Logf("%d writes acknowledged, %d unknown", len(names), unknown.Load())
}

// TestWrongCertificateNotSent publishes another certificate than the one
// the writer serves: a replica must not send to it, and commits locally.
func TestWrongCertificateNotSent(t *testing.T) {
	url, otherURL := pgtest.URL(t), pgtest.URL(t)
	w := openReplica(t, url, forward.Options{})
	openReplica(t, otherURL, forward.Options{}) // the writer of another schema
	var otherCert []byte
	if err := admin(t, otherURL).QueryRow(t.Context(), `SELECT cert FROM writer`).Scan(&otherCert); err != nil {
		t.Fatal(err)
	}
	if _, err := admin(t, url).Exec(t.Context(), `UPDATE writer SET cert = $1`, otherCert); err != nil {
		t.Fatal(err)
	}
	f := openReplica(t, url, forward.Options{})
	if _, err := f.Create(t.Context(), key("a"), []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	if st, ws := f.Stats(), w.Stats(); st.Forwarded != 0 || st.Fallbacks != 1 || ws.Served != 0 {
		t.Fatalf("replica %+v, writer %+v; want one local fallback and nothing served", st, ws)
	}
	checkStored(t, w, []string{"a"})
}
