package postgres

import (
	"context"
	"errors"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
)

// Writer election. Replicas on one schema may elect one of them to commit
// the writes of all (see package forward): the holder of a session-level
// advisory lock, taken with try-lock on a connection of its own, is the
// writer, and publishes in the writer table how its peers reach it. The
// lock ends with the session, so a writer killed or cut off from the
// database frees it at once, and a row whose session no longer holds the
// lock is never reported. Nothing in this package depends on who is the
// writer: every store commits correctly, in revision order, on its own.

// WriterRecord is what the elected writer publishes for its peers.
type WriterRecord struct {
	// Address is the host:port of its peer listener.
	Address string
	// Token is the bearer token peers present; it changes every term.
	Token []byte
	// Cert is the DER certificate its peer listener serves, which peers
	// pin; it changes every term.
	Cert []byte
}

// writerLockKey is the advisory lock whose holder is the schema's writer.
func writerLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("setpoint/writer/" + schema))
	return int64(h.Sum64())
}

// Election is one replica's candidacy for writer of the store's schema, on
// a connection of its own. It is not safe for concurrent use; one
// goroutine campaigns.
type Election struct {
	s    *Store
	conn *pgx.Conn
	// leading is set while conn's session holds the writer lock.
	leading bool
}

// NewElection returns a candidacy that connects when first used. Resign
// it before closing the store.
func (s *Store) NewElection() *Election { return &Election{s: s} }

// TryLead keeps or takes the lead. While leading it checks that the
// election session still lives and reports true. Otherwise it takes the
// writer lock if it is free, then publishes rec and reports true; it
// reports false if another session holds the lock. An error means the
// session failed: the lead, if held, is lost (the server frees the lock
// when the session ends), and the next call connects again.
func (e *Election) TryLead(ctx context.Context, rec WriterRecord) (bool, error) {
	if err := e.connect(ctx); err != nil {
		return false, err
	}
	if e.leading {
		if _, err := e.conn.Exec(ctx, `SELECT 1`); err != nil {
			e.drop()
			return false, e.s.dbErr("writer election: check session", err)
		}
		return true, nil
	}
	var got bool
	if err := e.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, writerLockKey(e.s.schema)).Scan(&got); err != nil {
		e.drop()
		return false, e.s.dbErr("writer election: try lock", err)
	}
	if !got {
		return false, nil
	}
	_, err := e.conn.Exec(ctx, `INSERT INTO writer (id, pid, address, token, cert) VALUES (1, pg_backend_pid(), $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, address = excluded.address, token = excluded.token, cert = excluded.cert`,
		rec.Address, rec.Token, rec.Cert)
	if err != nil {
		// Ending the session frees the lock.
		e.drop()
		return false, e.s.dbErr("writer election: publish", err)
	}
	e.leading = true
	return true, nil
}

// Resign gives the lead up, if held: it removes the published record and
// frees the lock, so a standby can take over at its next attempt. It then
// closes the election's connection; the next TryLead connects again.
func (e *Election) Resign(ctx context.Context) error {
	if e.conn == nil {
		return nil
	}
	var err error
	if e.leading {
		_, err = e.conn.Exec(ctx, `DELETE FROM writer WHERE pid = pg_backend_pid()`)
		if err == nil {
			_, err = e.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, writerLockKey(e.s.schema))
		}
	}
	// Closing the session frees the lock whatever happened above.
	e.drop()
	if err != nil {
		return e.s.dbErr("writer election: resign", err)
	}
	return nil
}

func (e *Election) connect(ctx context.Context) error {
	if e.conn != nil && !e.conn.IsClosed() {
		return nil
	}
	e.drop()
	if e.s.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, e.s.opts.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, e.s.connConfig.Copy())
	if err != nil {
		return e.s.dbErr("writer election: connect", err)
	}
	e.conn = conn
	return nil
}

// drop closes the election's connection, which ends any lead.
func (e *Election) drop() {
	if e.conn != nil {
		_ = e.conn.Close(context.Background())
		e.conn = nil
	}
	e.leading = false
}

// electedQuery reads the writer's record if its session still holds the
// writer lock (a bigint advisory lock shows in pg_locks as its high and
// low 32 bits in classid and objid, with objsubid 1).
const electedQuery = `SELECT w.address, w.token, w.cert FROM writer w
	WHERE EXISTS (SELECT FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.granted AND l.pid = w.pid AND l.objsubid = 1
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND l.classid::int8 = $1 AND l.objid::int8 = $2)`

// Elected returns the record of the schema's writer, and false if there
// is none: no replica leads, or the last one's session ended. It reads on
// the election's connection, not the pool, so that a standby's periodic
// look leaves the pool's connections idle.
func (e *Election) Elected(ctx context.Context) (WriterRecord, bool, error) {
	if err := e.connect(ctx); err != nil {
		return WriterRecord{}, false, err
	}
	key := uint64(writerLockKey(e.s.schema))
	var rec WriterRecord
	err := e.conn.QueryRow(ctx, electedQuery, int64(key>>32), int64(key&0xffffffff)).Scan(&rec.Address, &rec.Token, &rec.Cert)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return WriterRecord{}, false, nil
	case err != nil:
		if e.conn.IsClosed() {
			e.drop()
		}
		return WriterRecord{}, false, e.s.dbErr("read elected writer", err)
	}
	return rec, true, nil
}
