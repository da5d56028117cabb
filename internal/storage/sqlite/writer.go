package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"strings"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/internal/opqueue"
)

// opKind says what a queued write does.
type opKind uint8

const (
	opCreate opKind = iota + 1
	opUpdate
	opDelete
	opCompact
)

// op is one write queued to the writer goroutine.
type op struct {
	kind   opKind
	key    storage.Key
	value  []byte
	labels map[string]string
	// encLabels is labels encoded by the caller, off the writer goroutine.
	encLabels []byte
	// logValue is the caller's copy of value for the log row, which the
	// ring keeps: value itself is returned to the caller.
	logValue []byte
	// pre is the precondition revision (0: none); for opCompact the target.
	pre  int64
	slot opqueue.Slot[result]
}

type result struct {
	obj storage.Object
	err error
}

// writer owns the single writer connection. Its run loop takes every queued
// op (up to MaxBatch) into one transaction and commits once.
type writer struct {
	s    *Store
	conn *sql.Conn
	ctx  context.Context
	// revision and compacted mirror the meta row as of the last commit, or
	// inside a batch, as of the ops applied so far.
	revision  int64
	compacted int64

	getRow, insObj, updObj, delObj, insLabel, delLabel, setRev, delLog, setCompacted *sql.Stmt
	// insLog[i] inserts 1<<i log rows in one statement; prepared on first use.
	insLog [logChunks]*sql.Stmt
	// logRows holds the log rows of the open batch; the writer never reads
	// the log, so they are inserted at commit, and after it handed to the
	// ring. logArgs is their values as statement arguments.
	logRows []logRow
	logArgs []any

	batch   []*op
	results []result
}

func newWriter(ctx context.Context, s *Store, conn *sql.Conn) (*writer, error) {
	w := &writer{s: s, conn: conn, ctx: context.Background()}
	if err := conn.QueryRowContext(ctx, `SELECT revision, compacted FROM meta`).Scan(&w.revision, &w.compacted); err != nil {
		return nil, fmt.Errorf("read meta: %w", err)
	}
	stmts := []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.getRow, `SELECT revision, labels, value FROM objects WHERE resource = ? AND namespace = ? AND name = ?`},
		{&w.insObj, `INSERT INTO objects (resource, namespace, name, revision, labels, value) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`},
		{&w.updObj, `UPDATE objects SET revision = ?, labels = ?, value = ? WHERE resource = ? AND namespace = ? AND name = ?`},
		{&w.delObj, `DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?`},
		{&w.insLabel, `INSERT INTO labels (resource, key, value, namespace, name) VALUES (?, ?, ?, ?, ?)`},
		{&w.delLabel, `DELETE FROM labels WHERE resource = ? AND key = ? AND value = ? AND namespace = ? AND name = ?`},
		{&w.setRev, `UPDATE meta SET revision = ?`},
		{&w.delLog, `DELETE FROM log WHERE revision <= ?`},
		{&w.setCompacted, `UPDATE meta SET compacted = ?`},
	}
	for _, st := range stmts {
		p, err := conn.PrepareContext(ctx, st.sql)
		if err != nil {
			w.closeStmts()
			return nil, fmt.Errorf("prepare %q: %w", st.sql, err)
		}
		*st.dst = p
	}
	return w, nil
}

func (w *writer) closeStmts() {
	stmts := append([]*sql.Stmt{w.getRow, w.insObj, w.updObj, w.delObj, w.insLabel, w.delLabel, w.setRev, w.delLog, w.setCompacted}, w.insLog[:]...)
	for _, st := range stmts {
		if st != nil {
			_ = st.Close()
		}
	}
}

// run is the writer goroutine: it commits batches until Close.
func (w *writer) run() {
	defer close(w.s.done)
	defer func() {
		w.closeStmts()
		_ = w.conn.Close()
	}()
	for {
		var ok bool
		if w.batch, ok = opqueue.Next(w.s.stop, w.s.ops, slotOf, w.batch[:0], w.s.opts.MaxBatch); !ok {
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

// drain answers every op still queued at Close with ErrClosed.
func (w *writer) drain() {
	opqueue.Drain(w.s.ops, slotOf, result{err: fmt.Errorf("sqlite: %w", storage.ErrClosed)})
}

// commit applies the batch in one transaction. Ops that fail a check fail
// alone; an error from the database fails the whole batch.
func (w *writer) commit() {
	startRev, startCompacted := w.revision, w.compacted
	w.results = w.results[:0]
	w.logRows = w.logRows[:0]
	fail := func(err error) {
		_, _ = w.conn.ExecContext(w.ctx, `ROLLBACK`)
		w.revision, w.compacted = startRev, startCompacted
		err = dbErr("sqlite: commit", err)
		for _, o := range w.batch {
			o.slot.Answer(result{err: err})
		}
	}
	if _, err := w.conn.ExecContext(w.ctx, `BEGIN IMMEDIATE`); err != nil {
		fail(err)
		return
	}
	for _, o := range w.batch {
		r, err := w.apply(o)
		if err != nil {
			fail(err)
			return
		}
		w.results = append(w.results, r)
	}
	changed := w.revision != startRev || w.compacted != startCompacted
	if w.revision != startRev {
		if err := w.flushLog(); err != nil {
			fail(err)
			return
		}
		if _, err := w.setRev.ExecContext(w.ctx, w.revision); err != nil {
			fail(err)
			return
		}
	}
	end := `ROLLBACK`
	if changed {
		end = `COMMIT`
	}
	if _, err := w.conn.ExecContext(w.ctx, end); err != nil {
		fail(err)
		return
	}
	if changed && w.s.ring != nil {
		w.s.ring.commit(w.logRows, w.revision, w.compacted)
	}
	w.s.revision.Store(w.revision)
	for i, o := range w.batch {
		o.slot.Answer(w.results[i])
	}
	if w.revision != startRev {
		select {
		case w.s.notify <- struct{}{}:
		default:
		}
	}
}

// apply runs one op inside the open transaction. A failed check is returned
// in the result; a database error is returned as error.
func (w *writer) apply(o *op) (result, error) {
	switch o.kind {
	case opCreate:
		return w.create(o)
	case opUpdate, opDelete:
		return w.change(o)
	case opCompact:
		return w.compact(o)
	}
	return result{}, fmt.Errorf("unknown op kind %d", o.kind)
}

func (w *writer) create(o *op) (result, error) {
	k := o.key
	rev := w.revision + 1
	res, err := w.insObj.ExecContext(w.ctx, k.Resource, k.Namespace, k.Name, rev, o.encLabels, o.value)
	if err != nil {
		return result{}, fmt.Errorf("insert %s: %w", keyString(k), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return result{}, fmt.Errorf("insert %s: %w", keyString(k), err)
	}
	if n == 0 {
		return result{err: fmt.Errorf("sqlite: create %s: %w", keyString(k), storage.ErrExists)}, nil
	}
	if err := w.setLabels(k, nil, o.labels); err != nil {
		return result{}, err
	}
	w.logRows = append(w.logRows, logRow{rev: rev, typ: storage.Added, key: k, labels: o.encLabels, value: o.logValue})
	w.revision = rev
	return result{obj: storage.Object{Key: k, Revision: rev, Labels: maps.Clone(o.labels), Value: o.value}}, nil
}

// change applies an update or a delete.
func (w *writer) change(o *op) (result, error) {
	k := o.key
	verb := "update"
	if o.kind == opDelete {
		verb = "delete"
	}
	var (
		prevRev   int64
		prevEnc   []byte
		prevValue []byte
	)
	err := w.getRow.QueryRowContext(w.ctx, k.Resource, k.Namespace, k.Name).Scan(&prevRev, &prevEnc, &prevValue)
	if errors.Is(err, sql.ErrNoRows) {
		return result{err: fmt.Errorf("sqlite: %s %s: %w", verb, keyString(k), storage.ErrNotFound)}, nil
	}
	if err != nil {
		return result{}, fmt.Errorf("read %s: %w", keyString(k), err)
	}
	if o.pre != 0 && o.pre != prevRev {
		return result{err: fmt.Errorf("sqlite: %s %s: precondition revision %d, stored %d: %w",
			verb, keyString(k), o.pre, prevRev, storage.ErrConflict)}, nil
	}
	prevLabels, err := decodeLabels(prevEnc)
	if err != nil {
		return result{}, fmt.Errorf("%s %s: %w", verb, keyString(k), err)
	}
	rev := w.revision + 1
	if o.kind == opDelete {
		if _, err := w.delObj.ExecContext(w.ctx, k.Resource, k.Namespace, k.Name); err != nil {
			return result{}, fmt.Errorf("delete %s: %w", keyString(k), err)
		}
		if err := w.setLabels(k, prevLabels, nil); err != nil {
			return result{}, err
		}
		w.logRows = append(w.logRows, logRow{rev: rev, typ: storage.Deleted, key: k, prevRev: prevRev, prevLabels: prevEnc, prevValue: prevValue})
		w.revision = rev
		// The log row keeps prevValue; the caller gets its own copy.
		return result{obj: storage.Object{Key: k, Revision: rev, Labels: prevLabels, Value: bytes.Clone(prevValue)}}, nil
	}
	if _, err := w.updObj.ExecContext(w.ctx, rev, o.encLabels, o.value, k.Resource, k.Namespace, k.Name); err != nil {
		return result{}, fmt.Errorf("update %s: %w", keyString(k), err)
	}
	if err := w.setLabels(k, prevLabels, o.labels); err != nil {
		return result{}, err
	}
	w.logRows = append(w.logRows, logRow{rev: rev, typ: storage.Modified, key: k, labels: o.encLabels, value: o.logValue,
		prevRev: prevRev, prevLabels: prevEnc, prevValue: prevValue})
	w.revision = rev
	return result{obj: storage.Object{Key: k, Revision: rev, Labels: maps.Clone(o.labels), Value: o.value}}, nil
}

const (
	// logColumns is the number of values of one log row.
	logColumns = 10
	// logChunks bounds multi-row log inserts to 1<<(logChunks-1) rows.
	logChunks = 7
)

// flushLog inserts the batch's log rows with as few statements as
// possible: chunks of a power of two rows, largest first.
func (w *writer) flushLog() error {
	w.logArgs = w.logArgs[:0]
	for i := range w.logRows {
		w.logArgs = appendLogArgs(w.logArgs, &w.logRows[i])
	}
	args := w.logArgs
	for len(args) > 0 {
		i := min(bits.Len(uint(len(args)/logColumns))-1, logChunks-1)
		n := 1 << i
		if w.insLog[i] == nil {
			q := `INSERT INTO log (revision, type, resource, namespace, name, labels, value, prev_revision, prev_labels, prev_value) VALUES ` +
				strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n-1) + `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
			st, err := w.conn.PrepareContext(w.ctx, q)
			if err != nil {
				return fmt.Errorf("prepare log insert of %d rows: %w", n, err)
			}
			w.insLog[i] = st
		}
		if _, err := w.insLog[i].ExecContext(w.ctx, args[:n*logColumns]...); err != nil {
			return fmt.Errorf("append %d log rows: %w", n, err)
		}
		args = args[n*logColumns:]
	}
	clear(w.logArgs)
	w.logArgs = w.logArgs[:0]
	return nil
}

// appendLogArgs appends the logColumns statement arguments of r: NULL for
// the new state of a delete and for the previous state of a create.
func appendLogArgs(args []any, r *logRow) []any {
	args = append(args, r.rev, int64(r.typ), r.key.Resource, r.key.Namespace, r.key.Name)
	if r.typ == storage.Deleted {
		args = append(args, nil, nil)
	} else {
		args = append(args, r.labels, r.value)
	}
	if r.prevRev == 0 {
		return append(args, nil, nil, nil)
	}
	return append(args, r.prevRev, r.prevLabels, r.prevValue)
}

// setLabels brings the label index of k from old to new.
func (w *writer) setLabels(k storage.Key, old, new map[string]string) error {
	for lk, lv := range old {
		if nv, ok := new[lk]; ok && nv == lv {
			continue
		}
		if _, err := w.delLabel.ExecContext(w.ctx, k.Resource, lk, lv, k.Namespace, k.Name); err != nil {
			return fmt.Errorf("unindex label %q of %s: %w", lk, keyString(k), err)
		}
	}
	for lk, lv := range new {
		if ov, ok := old[lk]; ok && ov == lv {
			continue
		}
		if _, err := w.insLabel.ExecContext(w.ctx, k.Resource, lk, lv, k.Namespace, k.Name); err != nil {
			return fmt.Errorf("index label %q of %s: %w", lk, keyString(k), err)
		}
	}
	return nil
}

// compact removes log rows up to o.pre and records the compacted revision.
func (w *writer) compact(o *op) (result, error) {
	to := o.pre
	if to > w.revision {
		return result{err: fmt.Errorf("sqlite: compact to %d (current %d): %w", to, w.revision, storage.ErrFutureRevision)}, nil
	}
	if to <= w.compacted {
		return result{}, nil
	}
	if _, err := w.delLog.ExecContext(w.ctx, to); err != nil {
		return result{}, fmt.Errorf("compact log to %d: %w", to, err)
	}
	if _, err := w.setCompacted.ExecContext(w.ctx, to); err != nil {
		return result{}, fmt.Errorf("record compacted revision %d: %w", to, err)
	}
	w.compacted = to
	return result{}, nil
}

// submit queues o to the writer and waits for its outcome. A caller whose
// ctx ends while o is still queued gets ctx's error and o is skipped; once
// o is in a committing batch the caller waits for the real outcome.
func (s *Store) submit(ctx context.Context, o *op) (storage.Object, error) {
	if s.closed.Load() {
		return storage.Object{}, fmt.Errorf("sqlite: %w", storage.ErrClosed)
	}
	r, err := opqueue.Submit(ctx, s.ops, o, &o.slot, s.done)
	switch {
	case errors.Is(err, opqueue.ErrStopped):
		return storage.Object{}, fmt.Errorf("sqlite: %w", storage.ErrClosed)
	case err != nil:
		return storage.Object{}, fmt.Errorf("sqlite: write: %w", err)
	}
	return r.obj, r.err
}

// Create implements storage.Store.
func (s *Store) Create(ctx context.Context, key storage.Key, value []byte, labels map[string]string) (storage.Object, error) {
	enc, err := encodeLabels(labels)
	if err != nil {
		return storage.Object{}, fmt.Errorf("sqlite: create %s: %w", keyString(key), err)
	}
	return s.submit(ctx, &op{kind: opCreate, key: key, value: value, labels: labels, encLabels: enc, logValue: bytes.Clone(value)})
}

// Update implements storage.Store.
func (s *Store) Update(ctx context.Context, key storage.Key, value []byte, labels map[string]string, pre storage.Precondition) (storage.Object, error) {
	enc, err := encodeLabels(labels)
	if err != nil {
		return storage.Object{}, fmt.Errorf("sqlite: update %s: %w", keyString(key), err)
	}
	return s.submit(ctx, &op{kind: opUpdate, key: key, value: value, labels: labels, encLabels: enc, logValue: bytes.Clone(value), pre: pre.Revision})
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key storage.Key, pre storage.Precondition) (storage.Object, error) {
	return s.submit(ctx, &op{kind: opDelete, key: key, pre: pre.Revision})
}

// compactChunk bounds how many log rows one compaction step removes, so a
// large compaction does not hold the writer for long.
const compactChunk = 10000

// Compact implements storage.Store. It removes the log in steps of at most
// compactChunk revisions, each its own write.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if cur := s.revision.Load(); rev > cur {
		return fmt.Errorf("sqlite: compact to %d (current %d): %w", rev, cur, storage.ErrFutureRevision)
	}
	compacted, err := s.CompactedRevision(ctx)
	if err != nil {
		return err
	}
	for compacted < rev {
		step := min(rev, compacted+compactChunk)
		if _, err := s.submit(ctx, &op{kind: opCompact, pre: step}); err != nil {
			return err
		}
		compacted = step
	}
	return nil
}
