package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	// Registers the pure-Go "sqlite" database/sql driver.
	_ "modernc.org/sqlite"

	"github.com/setpoint/setpoint/internal/storage"
)

var _ storage.Store = (*Store)(nil)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Readers is the number of reader connections; default 4.
	Readers int
	// MaxBatch caps how many writes share one transaction; default 512.
	MaxBatch int
	// BusyTimeout is how long a connection waits for a lock held by another
	// process before failing; default 5s.
	BusyTimeout time.Duration
	// MmapSize lets each reader connection read up to this many bytes of
	// the database through a memory map instead of read calls; default
	// DefaultMmapSize, negative: none. The writer never maps the file.
	//
	// A memory map makes reads of a large database faster: with 100,000
	// objects a 1% selector list took 4.9 instead of 7.2 ms, a full list
	// 320 instead of 430 ms. The mapped pages a read touches count in the
	// process's resident size (RssFile), about 70 MiB after a 1% selector
	// list of 100,000 objects (the kernel maps neighbouring pages along)
	// and up to the database's size after a full list; they are page cache,
	// which the kernel can reclaim. The writer does not map: with it, RSS
	// after creating 100,000 objects grew from 25 to 220 MiB for no gain.
	MmapSize int64
	// PageSize is the SQLite page size of a new database; default 4096.
	// Larger pages mean fewer WAL frames (system calls) per commit.
	PageSize int
	// ChangeCache is how many of the most recent log events Changes answers
	// from memory instead of the database; default DefaultChangeCache,
	// negative: none. The change feed reads the events of each commit right
	// after it; from memory that read costs a copy instead of a query.
	ChangeCache int
	// ChangeCacheBytes bounds the memory of those events (their values and
	// labels, previous states included); default DefaultChangeCacheBytes.
	ChangeCacheBytes int
}

// DefaultMmapSize is the default of Options.MmapSize: 1 GiB.
const DefaultMmapSize = 1 << 30

func (o Options) withDefaults() Options {
	if o.Readers <= 0 {
		o.Readers = 4
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.MmapSize == 0 {
		o.MmapSize = DefaultMmapSize
	}
	if o.PageSize <= 0 {
		o.PageSize = 4096
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.ChangeCache == 0 {
		o.ChangeCache = DefaultChangeCache
	}
	if o.ChangeCacheBytes <= 0 {
		o.ChangeCacheBytes = DefaultChangeCacheBytes
	}
	return o
}

// Store is a storage.Store on one SQLite database file. Create it with Open.
type Store struct {
	opts Options
	// readDB is the pool of reader connections (query_only).
	readDB *sql.DB
	// getStmt, metaStmt and changesStmt are the frequent reads; database/sql
	// prepares each once per reader connection.
	getStmt, metaStmt, changesStmt *sql.Stmt
	// writeDB holds the single writer connection, used only by the writer
	// goroutine after Open.
	writeDB *sql.DB
	// lock holds the exclusive lock on the database's lock file.
	lock *os.File

	// ring holds the log rows of the last commits for Changes; nil if
	// Options.ChangeCache is negative. Its lock is a leaf (see eventRing).
	ring *eventRing
	// revision is the latest committed revision; the writer stores it after
	// each commit (after appending to ring), before answering callers.
	revision atomic.Int64
	notify   chan struct{}
	// ops carries writes to the writer goroutine.
	ops chan *op
	// stop is closed by Close to ask the writer to finish.
	stop chan struct{}
	// done is closed when the writer goroutine has returned.
	done      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database at path, applies schema
// migrations and starts the writer goroutine. Close releases it.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	// The driver takes a file: URI, which needs an absolute path.
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create directory for %s: %w", path, err)
	}
	// Revisions are assigned in memory by one writer, so only one Store
	// may have the database open.
	lock, err := lockFile(abs + ".lock")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	writeDB, err := sql.Open("sqlite", dsn(abs, opts, false))
	if err != nil {
		closeLock(lock)
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	writeDB.SetMaxOpenConns(1)
	writeDB.SetMaxIdleConns(1)
	writeDB.SetConnMaxLifetime(0)
	writeDB.SetConnMaxIdleTime(0)
	s := &Store{
		opts:    opts,
		writeDB: writeDB,
		lock:    lock,
		notify:  make(chan struct{}, 1),
		ops:     make(chan *op, opts.MaxBatch),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	conn, err := writeDB.Conn(ctx)
	if err != nil {
		_ = writeDB.Close()
		closeLock(lock)
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	fail := func(err error) (*Store, error) {
		_ = conn.Close()
		_ = writeDB.Close()
		if s.readDB != nil {
			_ = s.readDB.Close()
		}
		closeLock(lock)
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// page_size only takes effect on a new database, before WAL mode;
	// journal_mode=WAL is then stored in the file.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA page_size = %d`, opts.PageSize)); err != nil {
		return fail(fmt.Errorf("set page size: %w", err))
	}
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return fail(fmt.Errorf("set WAL mode: %w", err))
	}
	if mode != "wal" {
		return fail(fmt.Errorf("set WAL mode: journal mode is %q", mode))
	}
	if err := migrate(ctx, conn); err != nil {
		return fail(err)
	}
	s.readDB, err = sql.Open("sqlite", dsn(abs, opts, true))
	if err != nil {
		return fail(err)
	}
	s.readDB.SetMaxOpenConns(opts.Readers)
	s.readDB.SetMaxIdleConns(opts.Readers)
	s.readDB.SetConnMaxLifetime(0)
	s.readDB.SetConnMaxIdleTime(0)
	for _, st := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.getStmt, `SELECT revision, labels, value FROM objects WHERE resource = ? AND namespace = ? AND name = ?`},
		{&s.metaStmt, `SELECT revision, compacted FROM meta`},
		// LIMIT -1 means no limit.
		{&s.changesStmt, `SELECT revision, type, resource, namespace, name, labels, value, prev_revision, prev_labels, prev_value
			FROM log WHERE revision > ? ORDER BY revision LIMIT ?`},
	} {
		if *st.dst, err = s.readDB.PrepareContext(ctx, st.sql); err != nil {
			return fail(fmt.Errorf("prepare %q: %w", st.sql, err))
		}
	}
	w, err := newWriter(ctx, s, conn)
	if err != nil {
		return fail(err)
	}
	if opts.ChangeCache > 0 {
		s.ring = newEventRing(opts.ChangeCache, opts.ChangeCacheBytes, w.revision, w.compacted)
	}
	s.revision.Store(w.revision)
	go w.run()
	return s, nil
}

// closeLock releases a lock taken by lockFile.
func closeLock(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}

// dsn builds the driver connection string with the settings every
// connection needs: full fsync on commit, busy timeout, no foreign keys;
// readers are query-only and may map the file.
func dsn(path string, opts Options, reader bool) string {
	q := url.Values{}
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(0)")
	if opts.MmapSize > 0 && reader {
		q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", opts.MmapSize))
	}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	if reader {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	// As a URI, the path is percent-decoded by SQLite, so escape it.
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Close stops the writer (queued writes fail with storage.ErrClosed), waits
// for it, closes the database and the Notify channel. Later calls return
// the first call's result; every other method then fails with
// storage.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
		close(s.notify)
		errW := s.writeDB.Close()
		errR := errors.Join(s.getStmt.Close(), s.metaStmt.Close(), s.changesStmt.Close(), s.readDB.Close())
		var errL error
		if s.lock != nil {
			errL = s.lock.Close()
		}
		if err := errors.Join(errW, errR, errL); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

// Notify implements storage.Store.
func (s *Store) Notify() <-chan struct{} { return s.notify }

// CurrentRevision implements storage.Store.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, storage.ErrClosed
	}
	return s.revision.Load(), nil
}

// readErr wraps an error of a read: storage.ErrClosed once the store is
// closed, the context's error as is, anything else from the database as
// storage.ErrUnavailable.
func (s *Store) readErr(what string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: %s: %w", what, storage.ErrClosed)
	}
	return dbErr("sqlite: "+what, err)
}

// dbErr wraps an error from the database with context; unless it is a
// context's error it also matches storage.ErrUnavailable, as the request may
// succeed when retried.
func dbErr(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, storage.ErrUnavailable, err)
}

// Get implements storage.Store.
func (s *Store) Get(ctx context.Context, key storage.Key) (storage.Object, error) {
	if s.closed.Load() {
		return storage.Object{}, storage.ErrClosed
	}
	obj := storage.Object{Key: key}
	var lbl []byte
	err := s.getStmt.QueryRowContext(ctx, key.Resource, key.Namespace, key.Name).Scan(&obj.Revision, &lbl, &obj.Value)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Object{}, fmt.Errorf("sqlite: get %s: %w", keyString(key), storage.ErrNotFound)
	}
	if err != nil {
		return storage.Object{}, s.readErr("get "+keyString(key), err)
	}
	if obj.Labels, err = decodeLabels(lbl); err != nil {
		return storage.Object{}, fmt.Errorf("sqlite: get %s: %w", keyString(key), err)
	}
	return obj, nil
}

// Count implements storage.Store.
func (s *Store) Count(ctx context.Context, resource, namespace string) (int64, error) {
	if s.closed.Load() {
		return 0, storage.ErrClosed
	}
	q := `SELECT count(*) FROM objects WHERE resource = ?`
	args := []any{resource}
	if namespace != "" {
		q += ` AND namespace = ?`
		args = append(args, namespace)
	}
	var n int64
	if err := s.readDB.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, s.readErr("count "+resource, err)
	}
	return n, nil
}

// CompactedRevision implements storage.Store.
func (s *Store) CompactedRevision(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, storage.ErrClosed
	}
	var rev int64
	var current int64
	if err := s.metaStmt.QueryRowContext(ctx).Scan(&current, &rev); err != nil {
		return 0, s.readErr("read compacted revision", err)
	}
	return rev, nil
}

// readTx runs fn in one read transaction, so every query in it sees the same
// snapshot; it passes the current and compacted revision of that snapshot.
func (s *Store) readTx(ctx context.Context, what string, fn func(tx *sql.Tx, current, compacted int64) error) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	tx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.readErr(what, err)
	}
	defer func() { _ = tx.Rollback() }()
	var current, compacted int64
	if err := tx.StmtContext(ctx, s.metaStmt).QueryRowContext(ctx).Scan(&current, &compacted); err != nil {
		return s.readErr(what, err)
	}
	return fn(tx, current, compacted)
}

// Changes implements storage.Store. A limit <= 0 means no limit. Recent
// revisions are answered from the ring of the last commits' log rows, older
// ones from the log table.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]storage.Event, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	if s.ring != nil {
		if events, ok, err := s.ringChanges(after, limit); ok {
			return events, err
		}
	}
	return s.sqlChanges(ctx, after, limit)
}

// sqlChanges answers Changes from the log table.
func (s *Store) sqlChanges(ctx context.Context, after int64, limit int) ([]storage.Event, error) {
	events := []storage.Event{}
	err := s.readTx(ctx, "changes", func(tx *sql.Tx, current, compacted int64) error {
		if after < compacted {
			return fmt.Errorf("sqlite: changes after %d (compacted %d): %w", after, compacted, storage.ErrCompacted)
		}
		if after >= current {
			return nil
		}
		if limit <= 0 {
			limit = -1
		}
		rows, err := tx.StmtContext(ctx, s.changesStmt).QueryContext(ctx, after, limit)
		if err != nil {
			return s.readErr("changes", err)
		}
		defer rows.Close()
		for rows.Next() {
			ev, err := scanEvent(rows)
			if err != nil {
				return fmt.Errorf("sqlite: changes: %w", err)
			}
			events = append(events, ev)
		}
		if err := rows.Err(); err != nil {
			return s.readErr("changes", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// scanEvent decodes one row of the log as selected by Changes.
func scanEvent(rows *sql.Rows) (storage.Event, error) {
	var (
		row     logRow
		typ     int64
		prevRev sql.NullInt64
	)
	if err := rows.Scan(&row.rev, &typ, &row.key.Resource, &row.key.Namespace, &row.key.Name,
		&row.labels, &row.value, &prevRev, &row.prevLabels, &row.prevValue); err != nil {
		return storage.Event{}, fmt.Errorf("scan log: %w", err)
	}
	row.typ = storage.EventType(typ)
	if prevRev.Valid {
		row.prevRev = prevRev.Int64
	}
	return row.event()
}

func keyString(k storage.Key) string {
	if k.Namespace == "" {
		return k.Resource + "/" + k.Name
	}
	return k.Resource + "/" + k.Namespace + "/" + k.Name
}
