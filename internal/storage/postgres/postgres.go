package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/setpoint/setpoint/internal/storage"
)

var _ storage.Store = (*Store)(nil)

// Options tune a Store. The zero value is usable.
type Options struct {
	// MaxConns is the size of the pool of reading connections; default 8.
	// The store opens two more: the writer's and the listener's.
	MaxConns int
	// MaxBatch caps how many writes share one transaction; default 512.
	MaxBatch int
	// ApplicationName is the application_name of every connection (see
	// pg_stat_activity); default "setpoint".
	ApplicationName string
	// ConnectTimeout bounds each connection attempt; default 5s.
	ConnectTimeout time.Duration
	// StatementTimeout is the server's statement_timeout on every
	// connection, so a slow database fails a request instead of hanging
	// it; default 30s. It also bounds a whole write transaction.
	StatementTimeout time.Duration
	// LockTimeout is the server's lock_timeout on every connection; default
	// 10s.
	LockTimeout time.Duration
	// MaxRetries is how many times the writer retries a batch after a
	// deadlock, a serialization failure, a create that raced with another
	// replica, or a connection lost before COMMIT was sent (all leave
	// nothing committed); default 5.
	MaxRetries int
	// ReconnectBackoff is the longest wait between two attempts of the
	// listener to reconnect; default 2s. Attempts start 50ms apart and
	// double.
	ReconnectBackoff time.Duration
	// ListWorkMem is the work_mem, in bytes, of list transactions, so that
	// the bitmap and the sorts of a large selector list stay in memory;
	// default 64 MiB.
	ListWorkMem int
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = 8
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.ApplicationName == "" {
		o.ApplicationName = "setpoint"
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 30 * time.Second
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 10 * time.Second
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 5
	}
	if o.ReconnectBackoff <= 0 {
		o.ReconnectBackoff = 2 * time.Second
	}
	if o.ListWorkMem <= 0 {
		o.ListWorkMem = 64 << 20
	}
	return o
}

// Store is a storage.Store in one schema of a PostgreSQL database. Several
// Stores, in one process or many, may share the schema. Create it with Open.
type Store struct {
	opts Options
	// schema is the schema the store works in; channel is its LISTEN/NOTIFY
	// channel.
	schema, channel string
	// connConfig configures the writer's and the listener's connections.
	connConfig *pgx.ConnConfig
	// pool holds the reading connections.
	pool *pgxpool.Pool
	// password is left out of every error message.
	password string

	notify chan struct{}
	// ops carries writes to the writer goroutine.
	ops chan *op
	// stop is closed by Close to ask the writer and the listener to finish;
	// stopCtx is canceled at the same time.
	stop    chan struct{}
	stopCtx context.Context
	cancel  context.CancelFunc
	// writerDone and listenerDone are closed when the goroutines return.
	writerDone, listenerDone chan struct{}
	closed                   atomic.Bool
	closeOnce                sync.Once
	// maint runs the background ANALYZE and VACUUM (maintenance.go).
	maint    maintenance
	closeErr error
}

// Open connects to the database at url, creates the schema named by its
// search_path (default public) if missing, applies migrations, starts
// listening for other stores' commits and starts the writer. ctx bounds
// only Open. Close releases the store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn redacts the password in its parse errors.
		return nil, fmt.Errorf("postgres: parse URL: %w", err)
	}
	cc := pc.ConnConfig
	cc.ConnectTimeout = opts.ConnectTimeout
	params := cc.RuntimeParams
	if params["application_name"] == "" {
		params["application_name"] = opts.ApplicationName
	}
	params["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	params["lock_timeout"] = fmt.Sprint(opts.LockTimeout.Milliseconds())
	// A transaction left open by a lost client must not hold the revision
	// lock for long.
	params["idle_in_transaction_session_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	schema := firstSchema(params["search_path"])
	if params["search_path"] == "" {
		params["search_path"] = schema
	}
	pc.MaxConns = int32(opts.MaxConns)
	pc.MinConns = 0

	stopCtx, cancel := context.WithCancel(context.Background())
	s := &Store{
		opts:         opts,
		schema:       schema,
		channel:      channelName(schema),
		connConfig:   cc,
		password:     cc.Password,
		notify:       make(chan struct{}, 1),
		ops:          make(chan *op, opts.MaxBatch),
		stop:         make(chan struct{}),
		stopCtx:      stopCtx,
		cancel:       cancel,
		writerDone:   make(chan struct{}),
		listenerDone: make(chan struct{}),
	}
	fail := func(what string, err error) (*Store, error) {
		cancel()
		if s.pool != nil {
			s.pool.Close()
		}
		return nil, s.dbErr("open: "+what, err)
	}
	wconn, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err != nil {
		return fail("connect", err)
	}
	if err := migrate(ctx, wconn, schema); err != nil {
		_ = wconn.Close(context.Background())
		return fail("migrate schema "+schema, err)
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		_ = wconn.Close(context.Background())
		return fail("pool", err)
	}
	lconn, err := s.connectListener(ctx)
	if err != nil {
		_ = wconn.Close(context.Background())
		return fail("listen", err)
	}
	w := &writer{s: s, conn: wconn}
	go w.run()
	go s.listen(lconn)
	s.maintainLater()
	return s, nil
}

// Close stops the writer (queued writes fail with storage.ErrClosed) and the
// listener, waits for them, closes the connections and the Notify channel.
// Later calls return the first call's result; every other method then fails
// with storage.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		s.cancel()
		s.maint.stop()
		<-s.writerDone
		<-s.listenerDone
		close(s.notify)
		s.pool.Close()
	})
	return s.closeErr
}

// Notify implements storage.Store: it fires after this store's commits and
// after every notification of a commit on the schema by any store, and once
// after the listener reconnects, as notifications may have been missed.
func (s *Store) Notify() <-chan struct{} { return s.notify }

// signal wakes a Notify reader without blocking.
func (s *Store) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// errClosed is returned by every method after Close.
var errClosed = fmt.Errorf("postgres: %w", storage.ErrClosed)

// Get implements storage.Store.
func (s *Store) Get(ctx context.Context, key storage.Key) (storage.Object, error) {
	if s.closed.Load() {
		return storage.Object{}, errClosed
	}
	obj := storage.Object{Key: key}
	var lbl []byte
	err := s.retryRead(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT revision, labels, value FROM objects WHERE resource = $1 AND namespace = $2 AND name = $3`,
			key.Resource, key.Namespace, key.Name).Scan(&obj.Revision, &lbl, &obj.Value)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Object{}, fmt.Errorf("postgres: get %s: %w", keyString(key), storage.ErrNotFound)
	}
	if err != nil {
		return storage.Object{}, s.readErr("get "+keyString(key), err)
	}
	if obj.Labels, err = decodeLabels(lbl); err != nil {
		return storage.Object{}, fmt.Errorf("postgres: get %s: %w", keyString(key), err)
	}
	return obj, nil
}

// Count implements storage.Store.
func (s *Store) Count(ctx context.Context, resource, namespace string) (int64, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	q := `SELECT count(*) FROM objects WHERE resource = $1`
	args := []any{resource}
	if namespace != "" {
		q += ` AND namespace = $2`
		args = append(args, namespace)
	}
	var n int64
	if err := s.retryRead(ctx, func() error { return s.pool.QueryRow(ctx, q, args...).Scan(&n) }); err != nil {
		return 0, s.readErr("count "+resource, err)
	}
	return n, nil
}

// meta reads the current and the compacted revision.
func (s *Store) meta(ctx context.Context) (current, compacted int64, err error) {
	if s.closed.Load() {
		return 0, 0, errClosed
	}
	if err := s.retryRead(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT revision, compacted FROM meta`).Scan(&current, &compacted)
	}); err != nil {
		return 0, 0, s.readErr("read revisions", err)
	}
	return current, compacted, nil
}

// CurrentRevision implements storage.Store: the latest revision committed
// by any store on the schema.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	cur, _, err := s.meta(ctx)
	return cur, err
}

// CompactedRevision implements storage.Store.
func (s *Store) CompactedRevision(ctx context.Context) (int64, error) {
	_, compacted, err := s.meta(ctx)
	return compacted, err
}

// changesQuery reads the log after a revision and, in the same snapshot,
// the compacted revision. LIMIT NULL is no limit.
const changesQuery = `SELECT (SELECT compacted FROM meta), revision, type, resource, namespace, name, labels, value,
		prev_revision, prev_labels, prev_value
	FROM log WHERE revision > $1 ORDER BY revision LIMIT $2`

// Changes implements storage.Store. A limit <= 0 means no limit. The
// caller owns the returned events.
//
// When the log has nothing after the revision, the compacted revision is
// read again: if it is now above after, the caller fell behind compaction
// whatever the log held before.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]storage.Event, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	var lim *int64
	if limit > 0 {
		l := int64(limit)
		lim = &l
	}
	var (
		events    []storage.Event
		compacted int64
	)
	err := s.retryRead(ctx, func() (err error) {
		events, compacted, err = s.readChanges(ctx, after, lim)
		return err
	})
	if err != nil {
		return nil, err
	}
	if compacted < 0 {
		if _, compacted, err = s.meta(ctx); err != nil {
			return nil, err
		}
	}
	if after < compacted {
		return nil, fmt.Errorf("postgres: changes after %d (compacted %d): %w", after, compacted, storage.ErrCompacted)
	}
	return events, nil
}

// readChanges reads the log after a revision, up to lim events (nil: no
// limit), and the compacted revision in the same snapshot, or -1 for it
// when the log had nothing newer.
func (s *Store) readChanges(ctx context.Context, after int64, lim *int64) (events []storage.Event, compacted int64, err error) {
	rows, err := s.pool.Query(ctx, changesQuery, after, lim)
	if err != nil {
		return nil, 0, s.readErr("changes", err)
	}
	defer rows.Close()
	events = []storage.Event{}
	compacted = -1
	for rows.Next() {
		var (
			r       logRow
			typ     int16
			prevRev *int64
		)
		if err := rows.Scan(&compacted, &r.rev, &typ, &r.key.Resource, &r.key.Namespace, &r.key.Name,
			&r.labels, &r.value, &prevRev, &r.prevLabels, &r.prevValue); err != nil {
			return nil, 0, s.readErr("changes: scan log", err)
		}
		if after < compacted {
			break
		}
		r.typ = storage.EventType(typ)
		if prevRev != nil {
			r.prevRev = *prevRev
		}
		ev, err := r.event()
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: changes: %w", err)
		}
		events = append(events, ev)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, s.readErr("changes", err)
	}
	return events, compacted, nil
}

// compactChunk bounds how many log rows one compaction transaction
// removes, so that a large compaction holds no lock for long.
const compactChunk = 10000

// Compact implements storage.Store. It removes the log in transactions of
// at most compactChunk revisions. Each deletes the rows first and updates
// meta last, so the revision lock that writers take is held only briefly,
// and a reader sees the rows gone and the compacted revision moved at once.
// Then a background check vacuums the log if enough rows died (see
// maintainLater).
func (s *Store) Compact(ctx context.Context, rev int64) error {
	current, compacted, err := s.meta(ctx)
	if err != nil {
		return err
	}
	if rev > current {
		return fmt.Errorf("postgres: compact to %d (current %d): %w", rev, current, storage.ErrFutureRevision)
	}
	for compacted < rev {
		step := min(rev, compacted+compactChunk)
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM log WHERE revision > $1 AND revision <= $2`, compacted, step); err != nil {
				return fmt.Errorf("delete log: %w", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE meta SET compacted = greatest(compacted, $1)`, step); err != nil {
				return fmt.Errorf("record compacted revision: %w", err)
			}
			return nil
		})
		if err != nil {
			return s.readErr(fmt.Sprintf("compact to %d", step), err)
		}
		compacted = step
	}
	s.maintainLater()
	return nil
}

func keyString(k storage.Key) string {
	if k.Namespace == "" {
		return k.Resource + "/" + k.Name
	}
	return k.Resource + "/" + k.Namespace + "/" + k.Name
}
