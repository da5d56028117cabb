package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setpoint/setpoint/internal/storage"
)

// opKind says what a queued write does.
type opKind uint8

const (
	opCreate opKind = iota + 1
	opUpdate
	opDelete
)

func (k opKind) String() string {
	switch k {
	case opCreate:
		return "create"
	case opUpdate:
		return "update"
	}
	return "delete"
}

// States of a queued op; the writer and the waiting caller race on them so
// that exactly one of "taken into a batch" and "abandoned by its caller" wins.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// op is one write queued to the writer goroutine.
type op struct {
	kind   opKind
	key    storage.Key
	value  []byte
	labels map[string]string
	// encLabels is labels as stored, encoded by the caller.
	encLabels string
	// pre is the precondition revision (0: none).
	pre   int64
	state atomic.Int32
	// res receives exactly one result once the op was taken.
	res chan result
}

type result struct {
	obj storage.Object
	err error
}

// errUnknownOutcome marks a batch whose COMMIT was sent but whose answer
// never came: it may or may not have committed.
var errUnknownOutcome = errors.New("connection lost while committing; the write may or may not have been committed")

// errConnect marks a failed attempt to connect, which the writer does not
// retry: the database is most likely down, and the callers should hear so.
var errConnect = errors.New("connect")

// writer owns the writing connection. Its run loop takes the queued ops (up
// to MaxBatch) into one transaction; see the package documentation.
type writer struct {
	s *Store
	// conn is nil after a connection failure until the next batch connects.
	conn *pgx.Conn
	// batch is the ops of the transaction being built; carry holds ops
	// taken but left for the next batch (see plan).
	batch, carry []*op
}

// run is the writer goroutine: it commits batches until Close.
func (w *writer) run() {
	defer close(w.s.writerDone)
	defer w.closeConn()
	for {
		w.batch = append(w.batch[:0], w.carry...)
		w.carry = w.carry[:0]
		if len(w.batch) == 0 {
			select {
			case <-w.s.stop:
				w.drain()
				return
			case o := <-w.s.ops:
				// Let writers answered by the last commit queue their next op.
				runtime.Gosched()
				w.take(o)
			}
		}
	collect:
		for len(w.batch) < w.s.opts.MaxBatch {
			select {
			case o := <-w.s.ops:
				w.take(o)
			default:
				break collect
			}
		}
		if len(w.batch) > 0 {
			w.commit()
		}
	}
}

// take adds o to the batch unless its caller gave up waiting.
func (w *writer) take(o *op) {
	if o.state.CompareAndSwap(opQueued, opTaken) {
		w.batch = append(w.batch, o)
	}
}

// drain answers every op still queued at Close with ErrClosed.
func (w *writer) drain() {
	for _, o := range w.batch {
		o.res <- result{err: errClosed}
	}
	for {
		select {
		case o := <-w.s.ops:
			if o.state.CompareAndSwap(opQueued, opTaken) {
				o.res <- result{err: errClosed}
			}
		default:
			return
		}
	}
}

func (w *writer) closeConn() {
	if w.conn != nil {
		_ = w.conn.Close(context.Background())
		w.conn = nil
	}
}

// commit runs the batch, retrying while nothing was committed and the
// error is transient, and answers every op.
func (w *writer) commit() {
	var err error
	for attempt := 0; ; attempt++ {
		var results []result
		results, err = w.attempt()
		if err == nil {
			for i, o := range w.batch {
				o.res <- results[i]
			}
			return
		}
		if errors.Is(err, errUnknownOutcome) || errors.Is(err, errConnect) || !retryable(err) && w.conn != nil ||
			attempt >= w.s.opts.MaxRetries {
			break
		}
		select {
		case <-w.s.stop:
			err = errClosed
		case <-time.After(time.Duration(1<<attempt) * time.Millisecond):
			continue
		}
		break
	}
	err = w.s.dbErr(fmt.Sprintf("commit %d writes", len(w.batch)), err)
	if errors.Is(err, errUnknownOutcome) && !errors.Is(err, storage.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	for _, o := range w.batch {
		o.res <- result{err: err}
	}
}

// ensureConn connects if the last connection was lost.
func (w *writer) ensureConn() error {
	if w.conn != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(w.s.stopCtx, w.s.opts.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, w.s.connConfig.Copy())
	if err != nil {
		if w.s.stopCtx.Err() != nil {
			return errClosed
		}
		return fmt.Errorf("%w: %w", errConnect, err)
	}
	w.conn = conn
	return nil
}

// afterError brings the connection back to no transaction after a failed
// attempt, or drops it if it is broken.
func (w *writer) afterError() {
	if w.conn == nil {
		return
	}
	if w.conn.IsClosed() {
		w.closeConn()
		return
	}
	if w.conn.PgConn().TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.Background(), w.s.opts.ConnectTimeout)
		defer cancel()
		if _, err := w.conn.Exec(ctx, `ROLLBACK`); err != nil {
			w.closeConn()
		}
	}
}

// row is an objects row as locked by a batch.
type row struct {
	rev    int64
	labels []byte
	value  []byte
}

// objectRows are object rows to insert or update, as statement arguments:
// one array per column.
type objectRows struct {
	res, ns, name []string
	ord           []int64
	labels        []string
	value         [][]byte
}

func (r *objectRows) add(k storage.Key, ord int64, labels string, value []byte) {
	r.res, r.ns, r.name = append(r.res, k.Resource), append(r.ns, k.Namespace), append(r.name, k.Name)
	r.ord, r.labels, r.value = append(r.ord, ord), append(r.labels, labels), append(r.value, value)
}

// logRows are log rows to insert, one array per column; "" labels and 0
// revisions stand for NULL.
type logRows struct {
	ord                []int64
	typ                []int16
	res, ns, name      []string
	labels, prevLabels []string
	value, prevValue   [][]byte
	prevRev            []int64
}

func (r *logRows) add(ord int64, typ storage.EventType, k storage.Key, labels string, value []byte, prev *row) {
	r.ord, r.typ = append(r.ord, ord), append(r.typ, int16(typ))
	r.res, r.ns, r.name = append(r.res, k.Resource), append(r.ns, k.Namespace), append(r.name, k.Name)
	r.labels, r.value = append(r.labels, labels), append(r.value, value)
	if prev == nil {
		prev = &row{}
	}
	r.prevRev, r.prevLabels, r.prevValue = append(r.prevRev, prev.rev), append(r.prevLabels, string(prev.labels)), append(r.prevValue, prev.value)
}

// plan is what one batch writes: each op's outcome and the rows to change.
type plan struct {
	results []result
	// ord[i] is the position (from 1) of op i among the batch's successful
	// writes, 0 if it failed a check; its revision is base+ord[i], base
	// being the revision before the batch.
	ord []int64
	// writes counts the successful ops.
	writes   int64
	ins, upd objectRows
	// del holds the keys of the objects to delete (ord and columns unused).
	del objectRows
	log logRows
}

// plan decides each op of the batch against the rows locked for it, in
// order. An op on a key that an earlier op of the batch changed ends the
// batch: it and the ops after it are carried to the next batch, so every
// key is written at most once per batch and each op's previous state is
// the locked row.
func (w *writer) plan(locked map[storage.Key]row) *plan {
	p := &plan{results: make([]result, len(w.batch)), ord: make([]int64, len(w.batch))}
	written := make(map[storage.Key]bool, len(w.batch))
	for i, o := range w.batch {
		if written[o.key] {
			w.carry = append(append([]*op(nil), w.batch[i:]...), w.carry...)
			w.batch = w.batch[:i]
			p.results, p.ord = p.results[:i], p.ord[:i]
			break
		}
		cur, exists := locked[o.key]
		fail := func(err error, format string, args ...any) {
			p.results[i].err = fmt.Errorf("postgres: %s %s: "+format+"%w", append([]any{o.kind, keyString(o.key)}, append(args, err)...)...)
		}
		switch {
		case o.kind == opCreate && exists:
			fail(storage.ErrExists, "")
			continue
		case o.kind != opCreate && !exists:
			fail(storage.ErrNotFound, "")
			continue
		case o.kind != opCreate && o.pre != 0 && o.pre != cur.rev:
			fail(storage.ErrConflict, "precondition revision %d, stored %d: ", o.pre, cur.rev)
			continue
		}
		ord := p.writes + 1
		switch o.kind {
		case opCreate:
			p.ins.add(o.key, ord, o.encLabels, o.value)
			p.log.add(ord, storage.Added, o.key, o.encLabels, o.value, nil)
			p.results[i].obj = storage.Object{Key: o.key, Labels: maps.Clone(o.labels), Value: o.value}
		case opUpdate:
			p.upd.add(o.key, ord, o.encLabels, o.value)
			p.log.add(ord, storage.Modified, o.key, o.encLabels, o.value, &cur)
			p.results[i].obj = storage.Object{Key: o.key, Labels: maps.Clone(o.labels), Value: o.value}
		case opDelete:
			labels, err := decodeLabels(cur.labels)
			if err != nil {
				fail(err, "")
				continue
			}
			p.del.add(o.key, ord, "", nil)
			p.log.add(ord, storage.Deleted, o.key, "", nil, &cur)
			p.results[i].obj = storage.Object{Key: o.key, Labels: labels, Value: cur.value}
		}
		p.writes, p.ord[i] = ord, ord
		written[o.key] = true
	}
	return p
}

// lockQuery locks the objects rows of the given keys, in key order so that
// two batches never wait for each other's rows in a cycle.
const lockQuery = `SELECT resource, namespace, name, revision, labels, value FROM objects
	WHERE (resource, namespace, name) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
	ORDER BY resource, namespace, name FOR UPDATE`

// Statements of a batch after the revision lock; $1 is the number of
// writes of the batch, so that meta.revision - $1 is the revision before
// it, read back within the transaction that just raised it.
const (
	takeRevisions = `UPDATE meta SET revision = revision + $1 RETURNING revision`
	insertObjects = `INSERT INTO objects (resource, namespace, name, revision, labels, value)
		SELECT u.res, u.ns, u.name, m.revision - $1 + u.ord, u.labels::jsonb, coalesce(u.value, '')
		FROM meta m, unnest($2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::bytea[]) AS u(res, ns, name, ord, labels, value)`
	updateObjects = `UPDATE objects o SET revision = m.revision - $1 + u.ord, labels = u.labels::jsonb, value = coalesce(u.value, '')
		FROM meta m, unnest($2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::bytea[]) AS u(res, ns, name, ord, labels, value)
		WHERE o.resource = u.res AND o.namespace = u.ns AND o.name = u.name`
	deleteObjects = `DELETE FROM objects o USING unnest($1::text[], $2::text[], $3::text[]) AS u(res, ns, name)
		WHERE o.resource = u.res AND o.namespace = u.ns AND o.name = u.name`
	insertLog = `INSERT INTO log (revision, type, resource, namespace, name, labels, value, prev_revision, prev_labels, prev_value)
		SELECT m.revision - $1 + u.ord, u.typ, u.res, u.ns, u.name, nullif(u.labels, '')::jsonb, u.value,
			nullif(u.prev_rev, 0), nullif(u.prev_labels, '')::jsonb, u.prev_value
		FROM meta m, unnest($2::int8[], $3::int2[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::int8[], $10::text[], $11::bytea[])
			AS u(ord, typ, res, ns, name, labels, value, prev_rev, prev_labels, prev_value)`
)

// attempt runs the batch in one transaction: lock and read the rows the
// batch touches, decide each op, then take the revisions and write in one
// round trip that ends with COMMIT. It returns the ops' results, or an
// error if nothing was committed, or errUnknownOutcome.
func (w *writer) attempt() ([]result, error) {
	if err := w.ensureConn(); err != nil {
		return nil, err
	}
	// Not canceled by Close: a batch in flight finishes.
	ctx, cancel := context.WithTimeout(context.Background(), w.s.opts.StatementTimeout)
	defer cancel()
	locked, err := w.lock(ctx)
	if err != nil {
		w.afterError()
		return nil, fmt.Errorf("lock rows: %w", err)
	}
	p := w.plan(locked)
	if p.writes == 0 {
		if _, err := w.conn.Exec(ctx, `ROLLBACK`); err != nil {
			w.afterError()
		}
		return p.results, nil
	}
	last, err := w.write(ctx, p)
	if err != nil {
		w.afterError()
		return nil, err
	}
	base := last - p.writes
	for i := range p.results {
		if p.ord[i] != 0 {
			p.results[i].obj.Revision = base + p.ord[i]
		}
	}
	w.s.signal()
	return p.results, nil
}

// lock begins the transaction and locks the rows of the batch's keys.
func (w *writer) lock(ctx context.Context) (map[storage.Key]row, error) {
	var keys objectRows
	seen := make(map[storage.Key]bool, len(w.batch))
	for _, o := range w.batch {
		if !seen[o.key] {
			seen[o.key] = true
			keys.add(o.key, 0, "", nil)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(lockQuery, keys.res, keys.ns, keys.name)
	br := w.conn.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	locked := make(map[storage.Key]row, len(keys.res))
	for rows.Next() {
		var (
			k storage.Key
			r row
		)
		if err := rows.Scan(&k.Resource, &k.Namespace, &k.Name, &r.rev, &r.labels, &r.value); err != nil {
			rows.Close()
			return nil, err
		}
		locked[k] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return locked, br.Close()
}

// write takes p.writes revisions, writes the rows, notifies and commits,
// all in one round trip, and returns the batch's last revision.
func (w *writer) write(ctx context.Context, p *plan) (int64, error) {
	b := &pgx.Batch{}
	b.Queue(takeRevisions, p.writes)
	if len(p.ins.res) > 0 {
		b.Queue(insertObjects, p.writes, p.ins.res, p.ins.ns, p.ins.name, p.ins.ord, p.ins.labels, p.ins.value)
	}
	if len(p.upd.res) > 0 {
		b.Queue(updateObjects, p.writes, p.upd.res, p.upd.ns, p.upd.name, p.upd.ord, p.upd.labels, p.upd.value)
	}
	if len(p.del.res) > 0 {
		b.Queue(deleteObjects, p.del.res, p.del.ns, p.del.name)
	}
	l := &p.log
	b.Queue(insertLog, p.writes, l.ord, l.typ, l.res, l.ns, l.name, l.labels, l.value, l.prevRev, l.prevLabels, l.prevValue)
	b.Queue(`SELECT pg_notify($1, '')`, w.s.channel)
	b.Queue(`COMMIT`)
	br := w.conn.SendBatch(ctx, b)
	var last int64
	err := br.QueryRow().Scan(&last)
	for i := 1; err == nil && i < b.Len(); i++ {
		_, err = br.Exec()
	}
	if err == nil {
		// COMMIT answered: the batch is committed whatever Close reports
		// (a backend terminated right after COMMIT sends its FATAL error
		// in place of ReadyForQuery).
		if br.Close() != nil {
			w.afterError()
		}
		return last, nil
	}
	_ = br.Close()
	// The server answers in order and skips the rest of the pipeline after
	// an error, COMMIT included: an error it reported means nothing was
	// committed, and so does one before anything was sent. Any other
	// failure (the connection lost while waiting) leaves the outcome open.
	var pe *pgconn.PgError
	if errors.As(err, &pe) || pgconn.SafeToRetry(err) {
		return 0, fmt.Errorf("write: %w", err)
	}
	return 0, fmt.Errorf("%w: %w", errUnknownOutcome, err)
}

// submit queues o to the writer and waits for its outcome. A caller whose
// ctx ends while o is still queued gets ctx's error and o is skipped; once
// o is in a batch the caller waits for the real outcome, which the writer's
// own timeouts bound.
func (s *Store) submit(ctx context.Context, o *op) (storage.Object, error) {
	if s.closed.Load() {
		return storage.Object{}, errClosed
	}
	if err := ctx.Err(); err != nil {
		return storage.Object{}, fmt.Errorf("postgres: %s %s: %w", o.kind, keyString(o.key), err)
	}
	o.res = make(chan result, 1)
	select {
	case s.ops <- o:
	case <-s.writerDone:
		return storage.Object{}, errClosed
	case <-ctx.Done():
		return storage.Object{}, fmt.Errorf("postgres: queue %s %s: %w", o.kind, keyString(o.key), ctx.Err())
	}
	select {
	case r := <-o.res:
		return r.obj, r.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return storage.Object{}, fmt.Errorf("postgres: queued %s %s: %w", o.kind, keyString(o.key), ctx.Err())
		}
		r := <-o.res
		return r.obj, r.err
	case <-s.writerDone:
		// The writer answers every op it took before it exits.
		select {
		case r := <-o.res:
			return r.obj, r.err
		default:
			return storage.Object{}, errClosed
		}
	}
}

// newWrite checks and encodes a create or update.
func newWrite(kind opKind, key storage.Key, value []byte, labels map[string]string, pre int64) (*op, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", kind, err)
	}
	enc, err := encodeLabels(labels)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s %s: %w", kind, keyString(key), err)
	}
	return &op{kind: kind, key: key, value: value, labels: labels, encLabels: enc, pre: pre}, nil
}

// Create implements storage.Store.
func (s *Store) Create(ctx context.Context, key storage.Key, value []byte, labels map[string]string) (storage.Object, error) {
	o, err := newWrite(opCreate, key, value, labels, 0)
	if err != nil {
		return storage.Object{}, err
	}
	return s.submit(ctx, o)
}

// Update implements storage.Store.
func (s *Store) Update(ctx context.Context, key storage.Key, value []byte, labels map[string]string, pre storage.Precondition) (storage.Object, error) {
	o, err := newWrite(opUpdate, key, value, labels, pre.Revision)
	if err != nil {
		return storage.Object{}, err
	}
	return s.submit(ctx, o)
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key storage.Key, pre storage.Precondition) (storage.Object, error) {
	if err := checkKey(key); err != nil {
		return storage.Object{}, fmt.Errorf("postgres: delete: %w", err)
	}
	return s.submit(ctx, &op{kind: opDelete, key: key, pre: pre.Revision})
}
