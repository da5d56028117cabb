package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/internal/opqueue"
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

// op is one write queued to the writer goroutine.
type op struct {
	kind   opKind
	key    storage.Key
	value  []byte
	labels map[string]string
	// encLabels is labels as stored, encoded by the caller.
	encLabels string
	// pre is the precondition revision (0: none).
	pre  int64
	slot opqueue.Slot[result]
}

type result struct {
	obj storage.Object
	err error
}

// errUnknownOutcome marks a batch whose COMMIT was sent but whose answer
// never came: it may or may not have committed.
var errUnknownOutcome = errors.New("connection lost while committing; the write may or may not have been committed")

// errAborted marks a batch found aborted after its connection failed
// around COMMIT: nothing was committed, so it is rerun.
var errAborted = errors.New("transaction aborted")

// errRecheck marks a batch of creates that found a key existing in its
// one-round-trip form; nothing was committed and it is rerun in the form
// that checks each key.
var errRecheck = errors.New("a key to create exists")

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
		var ok bool
		if w.batch, ok = opqueue.Next(w.s.stop, w.s.ops, slotOf, w.batch, w.s.opts.MaxBatch); !ok {
			w.drain()
			return
		}
		if len(w.batch) > 0 {
			w.commit()
		}
	}
}

// slotOf returns the queue slot of o.
func slotOf(o *op) *opqueue.Slot[result] { return &o.slot }

// drain answers the ops of the batch and those still queued at Close with
// ErrClosed.
func (w *writer) drain() {
	for _, o := range w.batch {
		o.slot.Answer(result{err: errClosed})
	}
	opqueue.Drain(w.s.ops, slotOf, result{err: errClosed})
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
		var (
			results []result
			xid     string
		)
		results, xid, err = w.attempt(attempt == 0 && w.onlyCreates())
		if errors.Is(err, errUnknownOutcome) {
			switch committed, rerr := w.resolve(xid); {
			case rerr != nil:
				err = fmt.Errorf("%w (%w)", err, rerr)
			case committed:
				err = nil
			default:
				err = fmt.Errorf("write: the connection failed and the server rolled back: %w", errAborted)
			}
		}
		if err == nil {
			w.s.signal()
			for i, o := range w.batch {
				o.slot.Answer(results[i])
			}
			return
		}
		rerun := errors.Is(err, errAborted) || errors.Is(err, errRecheck) || !errors.Is(err, errUnknownOutcome) && !errors.Is(err, errConnect) &&
			(retryable(err) || w.conn == nil)
		if !rerun || attempt >= w.s.opts.MaxRetries {
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
	if errors.Is(err, errClosed) {
		err = errClosed
	} else {
		err = w.s.dbErr(fmt.Sprintf("commit %d writes", len(w.batch)), err)
	}
	if errors.Is(err, errUnknownOutcome) && !errors.Is(err, storage.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	for _, o := range w.batch {
		o.slot.Answer(result{err: err})
	}
}

// resolve finds out, after the connection failed around COMMIT, whether
// transaction xid committed: it reconnects and asks pg_xact_status, waiting
// while the old session still runs it. It gives up after ConnectTimeout.
func (w *writer) resolve(xid string) (committed bool, err error) {
	if xid == "" {
		return false, errors.New("the connection failed before the transaction id was read")
	}
	deadline := time.Now().Add(w.s.opts.ConnectTimeout)
	for {
		var status *string
		if err = w.ensureConn(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), w.s.opts.ConnectTimeout)
			err = w.conn.QueryRow(ctx, `SELECT pg_xact_status($1::xid8)`, xid).Scan(&status)
			cancel()
			if err != nil {
				w.afterError()
			}
		}
		switch {
		case err == nil && status == nil:
			return false, fmt.Errorf("status of transaction %s no longer known", xid)
		case err == nil && *status == "committed":
			return true, nil
		case err == nil && *status == "aborted":
			return false, nil
		case time.Now().After(deadline):
			if err == nil {
				err = fmt.Errorf("transaction %s still %s", xid, *status)
			}
			return false, fmt.Errorf("find out whether transaction %s committed: %w", xid, err)
		}
		select {
		case <-w.s.stop:
			return false, errors.New("closed before the outcome was learned")
		case <-time.After(10 * time.Millisecond):
		}
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
	rev           []int64
	labels        []string
	value         [][]byte
}

func (r *objectRows) add(k storage.Key, rev int64, labels string, value []byte) {
	r.res, r.ns, r.name = append(r.res, k.Resource), append(r.ns, k.Namespace), append(r.name, k.Name)
	r.rev, r.labels, r.value = append(r.rev, rev), append(r.labels, labels), append(r.value, value)
}

// logRows are log rows to insert, one array per column; "" labels and 0
// revisions stand for NULL.
type logRows struct {
	rev                []int64
	typ                []int16
	res, ns, name      []string
	labels, prevLabels []string
	value, prevValue   [][]byte
	prevRev            []int64
}

func (r *logRows) add(rev int64, typ storage.EventType, k storage.Key, labels string, value []byte, prev *row) {
	r.rev, r.typ = append(r.rev, rev), append(r.typ, int16(typ))
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
	// writes counts the successful ops; they take revisions base+1 to
	// base+writes in batch order. The rows and results hold 1 to writes;
	// the statements add meta.revision, read in the transaction.
	writes   int64
	ins, upd objectRows
	// del holds the keys of the objects to delete (other columns unused).
	del objectRows
	log logRows
}

// plan decides each op of the batch, in order, against the rows locked for
// it; existing holds the keys to create that exist. The successful ops'
// revisions are numbered from 1 (base+1 once base is known). An op on a key that an earlier
// op of the batch changed ends the batch: it and the ops after it are
// carried to the next batch, so every key is written at most once per
// batch and each op's previous state is the locked row.
func (w *writer) plan(locked map[storage.Key]row, existing map[storage.Key]bool) *plan {
	p := &plan{results: make([]result, len(w.batch))}
	written := make(map[storage.Key]bool, len(w.batch))
	for i, o := range w.batch {
		if written[o.key] {
			w.carry = append(append([]*op(nil), w.batch[i:]...), w.carry...)
			w.batch = w.batch[:i]
			p.results = p.results[:i]
			break
		}
		cur, exists := locked[o.key]
		fail := func(err error, format string, args ...any) {
			p.results[i].err = fmt.Errorf("postgres: %s %s: "+format+"%w", append([]any{o.kind, keyString(o.key)}, append(args, err)...)...)
		}
		switch {
		case o.kind == opCreate && (exists || existing[o.key]):
			fail(storage.ErrExists, "")
			continue
		case o.kind != opCreate && !exists:
			fail(storage.ErrNotFound, "")
			continue
		case o.kind != opCreate && o.pre != 0 && o.pre != cur.rev:
			fail(storage.ErrConflict, "precondition revision %d, stored %d: ", o.pre, cur.rev)
			continue
		}
		rev := p.writes + 1
		switch o.kind {
		case opCreate:
			p.ins.add(o.key, rev, o.encLabels, o.value)
			p.log.add(rev, storage.Added, o.key, o.encLabels, o.value, nil)
			p.results[i].obj = storage.Object{Key: o.key, Revision: rev, Labels: maps.Clone(o.labels), Value: o.value}
		case opUpdate:
			p.upd.add(o.key, rev, o.encLabels, o.value)
			p.log.add(rev, storage.Modified, o.key, o.encLabels, o.value, &cur)
			p.results[i].obj = storage.Object{Key: o.key, Revision: rev, Labels: maps.Clone(o.labels), Value: o.value}
		case opDelete:
			labels, err := decodeLabels(cur.labels)
			if err != nil {
				fail(err, "")
				continue
			}
			p.del.add(o.key, rev, "", nil)
			p.log.add(rev, storage.Deleted, o.key, "", nil, &cur)
			p.results[i].obj = storage.Object{Key: o.key, Revision: rev, Labels: labels, Value: cur.value}
		}
		p.writes++
		written[o.key] = true
	}
	return p
}

// lockQuery locks the objects rows of the given keys, in key order so that
// two batches never wait for each other's rows in a cycle.
const lockQuery = `SELECT resource, namespace, name, revision, labels, value FROM objects
	WHERE (resource, namespace, name) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
	ORDER BY resource, namespace, name FOR UPDATE`

// Statements of a batch under the revision lock.
const (
	takeRevisionLock = `SELECT revision FROM meta FOR UPDATE`
	// existingQuery finds which of the keys to create exist. None can be
	// created while the batch holds the revision lock.
	existingQuery = `SELECT resource, namespace, name FROM objects
		WHERE (resource, namespace, name) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`
	insertObjects = `INSERT INTO objects (resource, namespace, name, revision, labels, value)
		SELECT u.res, u.ns, u.name, m.revision + u.rev, u.labels::jsonb, u.value
		FROM meta m, unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::bytea[]) AS u(res, ns, name, rev, labels, value)`
	updateObjects = `UPDATE objects o SET revision = m.revision + u.rev, labels = u.labels::jsonb, value = u.value
		FROM meta m, unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::bytea[]) AS u(res, ns, name, rev, labels, value)
		WHERE o.resource = u.res AND o.namespace = u.ns AND o.name = u.name`
	deleteObjects = `DELETE FROM objects o USING unnest($1::text[], $2::text[], $3::text[]) AS u(res, ns, name)
		WHERE o.resource = u.res AND o.namespace = u.ns AND o.name = u.name`
	insertLog = `INSERT INTO log (revision, type, resource, namespace, name, labels, value, prev_revision, prev_labels, prev_value)
		SELECT m.revision + u.rev, u.typ, u.res, u.ns, u.name, nullif(u.labels, '')::jsonb, u.value,
			nullif(u.prev_rev, 0), nullif(u.prev_labels, '')::jsonb, u.prev_value
		FROM meta m, unnest($1::int8[], $2::int2[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::int8[], $9::text[], $10::bytea[])
			AS u(rev, typ, res, ns, name, labels, value, prev_rev, prev_labels, prev_value)`
	// createBatch writes a batch of creates under the revision lock in one
	// statement: it takes the lock by adding the batch's revisions to meta
	// (in READ COMMITTED the UPDATE sees the latest committed revision once
	// it has the lock, which the other parts, on the statement's older
	// snapshot, would not, so they number the rows from its RETURNING),
	// inserts the objects and their log rows from the same arrays, and
	// notifies; it returns the base revision.
	createBatch = `WITH m AS (UPDATE meta SET revision = revision + $7 RETURNING revision - $7 AS base),
		u AS (SELECT m.base + u.rev AS revision, u.res, u.ns, u.name, u.labels::jsonb AS labels, u.value
			FROM m, unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::bytea[]) AS u(res, ns, name, rev, labels, value)),
		o AS (INSERT INTO objects (resource, namespace, name, revision, labels, value)
			SELECT res, ns, name, revision, labels, value FROM u),
		l AS (INSERT INTO log (revision, type, resource, namespace, name, labels, value)
			SELECT revision, $8, res, ns, name, labels, value FROM u)
		SELECT base FROM m, pg_notify($9, '')`
	// addRevisions comes after the rows, which read the revision before.
	addRevisions = `UPDATE meta SET revision = revision + $1`
)

// attempt runs the batch in one transaction: begin (see begin), decide
// each op, then write the rows, the revision and a notification and
// commit in one round trip. With fast, for a batch of creates only, it
// does all in one statement (createBatch) instead, expecting no key to
// exist: if one does, the INSERT fails and nothing is committed
// (errRecheck). It
// returns the ops' results and the transaction's id, and an error if
// nothing was committed, or one matching errUnknownOutcome.
func (w *writer) attempt(fast bool) ([]result, string, error) {
	if err := w.ensureConn(); err != nil {
		return nil, "", err
	}
	// Not canceled by Close: a batch in flight finishes.
	ctx, cancel := context.WithTimeout(context.Background(), w.s.opts.StatementTimeout)
	defer cancel()
	var (
		t   txStart
		p   *plan
		err error
	)
	if fast {
		p = w.plan(nil, nil)
		b := &pgx.Batch{}
		b.Queue(`BEGIN`)
		// The id comes first, before the slow part, so that it is known
		// if the connection fails before COMMIT's answer.
		b.Queue(`SELECT pg_current_xact_id()::text`)
		i := &p.ins
		b.Queue(createBatch, i.res, i.ns, i.name, i.rev, i.labels, i.value, p.writes, int16(storage.Added), w.s.channel)
		b.Queue(`COMMIT`)
		err = w.send(ctx, b, func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return err
			}
			if err := br.QueryRow().Scan(&t.xid); err != nil {
				return err
			}
			if err := br.QueryRow().Scan(&t.base); err != nil {
				return err
			}
			_, err := br.Exec()
			return err
		})
		if sqlState(err) == codeUniqueViolation {
			err = fmt.Errorf("%w: %w", errRecheck, err)
		}
	} else {
		if t, err = w.begin(ctx); err != nil {
			w.afterError()
			return nil, "", err
		}
		p = w.plan(t.locked, t.existing)
		if p.writes == 0 {
			if _, err := w.conn.Exec(ctx, `ROLLBACK`); err != nil {
				w.afterError()
			}
			return p.results, t.xid, nil
		}
		err = w.write(ctx, p)
	}
	if err != nil {
		w.afterError()
	}
	for i := range p.results {
		if p.results[i].err == nil {
			p.results[i].obj.Revision += t.base
		}
	}
	return p.results, t.xid, err
}

// onlyCreates reports whether every op of the batch is a create.
func (w *writer) onlyCreates() bool {
	for _, o := range w.batch {
		if o.kind != opCreate {
			return false
		}
	}
	return true
}

// txStart is what a batch's transaction learns before it decides the ops.
type txStart struct {
	// xid is the transaction's id.
	xid string
	// base is the last committed revision, read under the revision lock.
	base int64
	// locked holds the rows of the keys the batch updates or deletes,
	// locked in step 1.
	locked map[storage.Key]row
	// existing holds the keys the batch creates, not in locked, that
	// exist under the revision lock.
	existing map[storage.Key]bool
}

// begin begins the transaction, locks the rows the batch updates or
// deletes, then takes the revision lock and looks up the keys it creates.
// A batch that only creates needs no row lock (creates are checked under
// the revision lock, as no store writes objects without it) and does it
// all in one round trip; others take two.
func (w *writer) begin(ctx context.Context) (txStart, error) {
	t := txStart{locked: map[storage.Key]row{}, existing: map[storage.Key]bool{}}
	var changed, created objectRows
	seen := make(map[storage.Key]bool, len(w.batch))
	for _, o := range w.batch {
		if o.kind != opCreate && !seen[o.key] {
			seen[o.key] = true
			changed.add(o.key, 0, "", nil)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT pg_current_xact_id()::text`)
	readBegin := func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		return br.QueryRow().Scan(&t.xid)
	}
	if len(changed.res) > 0 {
		b.Queue(lockQuery, changed.res, changed.ns, changed.name)
		br := w.conn.SendBatch(ctx, b)
		err := readBegin(br)
		if err == nil {
			var (
				k storage.Key
				r row
			)
			rows, _ := br.Query()
			_, err = pgx.ForEachRow(rows, []any{&k.Resource, &k.Namespace, &k.Name, &r.rev, &r.labels, &r.value}, func() error {
				t.locked[k] = r
				r = row{}
				return nil
			})
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return t, fmt.Errorf("lock rows: %w", err)
		}
		b, readBegin = &pgx.Batch{}, nil
	}
	asked := make(map[storage.Key]bool, len(w.batch))
	for _, o := range w.batch {
		if _, ok := t.locked[o.key]; !ok && o.kind == opCreate && !asked[o.key] {
			asked[o.key] = true
			created.add(o.key, 0, "", nil)
		}
	}
	b.Queue(takeRevisionLock)
	if len(created.res) > 0 {
		b.Queue(existingQuery, created.res, created.ns, created.name)
	}
	br := w.conn.SendBatch(ctx, b)
	var err error
	if readBegin != nil {
		err = readBegin(br)
	}
	if err == nil {
		err = br.QueryRow().Scan(&t.base)
	}
	if err == nil && len(created.res) > 0 {
		var k storage.Key
		rows, _ := br.Query()
		_, err = pgx.ForEachRow(rows, []any{&k.Resource, &k.Namespace, &k.Name}, func() error {
			t.existing[k] = true
			return nil
		})
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return t, fmt.Errorf("lock revision: %w", err)
	}
	return t, nil
}

// write writes the rows and the revision, notifies and commits, all in
// one round trip.
func (w *writer) write(ctx context.Context, p *plan) error {
	b := &pgx.Batch{}
	if len(p.ins.res) > 0 {
		b.Queue(insertObjects, p.ins.res, p.ins.ns, p.ins.name, p.ins.rev, p.ins.labels, p.ins.value)
	}
	if len(p.upd.res) > 0 {
		b.Queue(updateObjects, p.upd.res, p.upd.ns, p.upd.name, p.upd.rev, p.upd.labels, p.upd.value)
	}
	if len(p.del.res) > 0 {
		b.Queue(deleteObjects, p.del.res, p.del.ns, p.del.name)
	}
	l := &p.log
	b.Queue(insertLog, l.rev, l.typ, l.res, l.ns, l.name, l.labels, l.value, l.prevRev, l.prevLabels, l.prevValue)
	b.Queue(addRevisions, p.writes)
	b.Queue(`SELECT pg_notify($1, '')`, w.s.channel)
	b.Queue(`COMMIT`)
	return w.send(ctx, b, func(br pgx.BatchResults) error {
		for range b.Len() {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return nil
	})
}

// send sends b, which ends with COMMIT, and reads its results with read.
// It returns nil if COMMIT succeeded, an error matching
// errUnknownOutcome if the outcome is unknown, and another error if
// nothing was committed.
func (w *writer) send(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	br := w.conn.SendBatch(ctx, b)
	err := read(br)
	if err == nil {
		// COMMIT answered: the batch is committed whatever Close reports
		// (a backend terminated right after COMMIT sends its FATAL error
		// in place of ReadyForQuery).
		if br.Close() != nil {
			w.afterError()
		}
		return nil
	}
	_ = br.Close()
	// The server answers in order and skips the rest of the pipeline after
	// an error, COMMIT included, and stays up after an ERROR: nothing was
	// committed. Anything else (a FATAL error such as a terminated
	// session, which can come after the commit is durable, or a lost
	// connection) leaves the outcome open.
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Severity == "ERROR" {
		return fmt.Errorf("write: %w", err)
	}
	return fmt.Errorf("%w: %w", errUnknownOutcome, err)
}

// submit queues o to the writer and waits for its outcome. A caller whose
// ctx ends while o is still queued gets ctx's error and o is skipped; once
// o is in a batch the caller waits for the real outcome, which the writer's
// own timeouts bound.
func (s *Store) submit(ctx context.Context, o *op) (storage.Object, error) {
	if s.closed.Load() {
		return storage.Object{}, errClosed
	}
	r, err := opqueue.Submit(ctx, s.ops, o, &o.slot, s.writerDone)
	switch {
	case errors.Is(err, opqueue.ErrStopped):
		return storage.Object{}, errClosed
	case err != nil:
		return storage.Object{}, fmt.Errorf("postgres: %s %s: %w", o.kind, keyString(o.key), err)
	}
	return r.obj, r.err
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
	if value == nil {
		value = []byte{} // objects.value is NOT NULL
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
