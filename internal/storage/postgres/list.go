package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/internal/listpage"
)

// errNoResource rejects a list without a resource.
var errNoResource = errors.New("postgres: list: resource is required")

// List implements storage.Store. A list at the latest revision is one
// round trip: a read-only REPEATABLE READ transaction reads meta and the
// objects in one snapshot. A list at an older revision rebuilds that state
// (see the package documentation).
func (s *Store) List(ctx context.Context, opts storage.ListOptions) (storage.ListResult, error) {
	if s.closed.Load() {
		return storage.ListResult{}, errClosed
	}
	if opts.Resource == "" {
		return storage.ListResult{}, errNoResource
	}
	var l *lister
	err := s.retryRead(ctx, func() error {
		l = &lister{opts: opts, sel: opts.Labels, page: listpage.New(opts.Limit),
			workMem: strconv.Itoa(s.opts.ListWorkMem>>10) + "kB"}
		if l.sel == nil {
			l.sel = labels.Everything()
		}
		_, selectable := l.sel.Requirements()
		l.empty = !selectable || listpage.PastNamespace(opts)
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		if opts.Revision == 0 {
			return l.latest(ctx, conn.Conn())
		}
		return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
			func(tx pgx.Tx) error { return l.past(ctx, tx) })
	})
	what := "list " + opts.Resource
	var lerr *listError
	switch {
	case errors.As(err, &lerr):
		return storage.ListResult{}, lerr.err
	case err != nil:
		return storage.ListResult{}, s.readErr(what, err)
	}
	return storage.ListResult{Objects: l.page.Objects, Revision: l.rev, More: l.page.More, Release: l.values.release()}, nil
}

// listError carries an error List returns as is, not as a database error.
type listError struct{ err error }

func (e *listError) Error() string { return e.err.Error() }

// lister builds one page of a list inside a read transaction.
type lister struct {
	opts storage.ListOptions
	sel  labels.Selector
	// workMem is the transaction's work_mem, set with the first query.
	workMem string
	// empty is set when nothing can match.
	empty bool
	// noLabels is set when the objects query selects exactly what the
	// selector does and the caller reads no labels: they are not read.
	noLabels bool
	rev      int64
	// values holds the values of the objects read.
	values arena
	// page is the page being built; its Past holds, in key order, the
	// state at rev of keys written after rev, without values.
	page *listpage.Page
}

// latest reads meta and the current objects in one pipelined read-only
// transaction.
func (l *lister) latest(ctx context.Context, conn *pgx.Conn) error {
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	b.Queue(`SELECT revision, set_config('work_mem', $1, true) FROM meta`, l.workMem)
	var q query
	if !l.empty {
		q = l.currentQuery(false)
		b.Queue(q.sql, q.args...)
	}
	b.Queue(`COMMIT`)
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	if err := br.QueryRow().Scan(&l.rev, nil); err != nil {
		return fmt.Errorf("read revision: %w", err)
	}
	if !l.empty {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("read objects: %w", err)
		}
		if err := l.readCurrent(rows); err != nil {
			return err
		}
	}
	if _, err := br.Exec(); err != nil {
		return err
	}
	return br.Close()
}

// past lists at l.opts.Revision inside a read-only REPEATABLE READ
// transaction.
func (l *lister) past(ctx context.Context, tx pgx.Tx) error {
	var current, compacted int64
	if err := tx.QueryRow(ctx, `SELECT revision, compacted, set_config('work_mem', $1, true) FROM meta`, l.workMem).Scan(&current, &compacted, nil); err != nil {
		return fmt.Errorf("read revisions: %w", err)
	}
	rev := l.opts.Revision
	switch {
	case rev < compacted:
		return &listError{fmt.Errorf("postgres: list %s at revision %d (compacted %d): %w", l.opts.Resource, rev, compacted, storage.ErrCompacted)}
	case rev > current:
		return &listError{fmt.Errorf("postgres: list %s at revision %d (current %d): %w", l.opts.Resource, rev, current, storage.ErrFutureRevision)}
	}
	l.rev = rev
	if l.empty {
		return nil
	}
	changed := rev < current
	if changed {
		if err := l.readPast(ctx, tx); err != nil {
			return err
		}
	}
	q := l.currentQuery(changed)
	rows, err := tx.Query(ctx, q.sql, q.args...)
	if err != nil {
		return fmt.Errorf("read objects: %w", err)
	}
	if err := l.readCurrent(rows); err != nil {
		return err
	}
	return l.readPastValues(ctx, tx)
}

// query is SQL text with its positional arguments.
type query struct {
	sql   string
	where []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// filters adds the resource, namespace, name and After conditions on the
// columns of table alias t.
func (l *lister) filters(q *query, t string) {
	q.where = append(q.where, t+".resource = "+q.arg(l.opts.Resource))
	if l.opts.Namespace != "" {
		q.where = append(q.where, t+".namespace = "+q.arg(l.opts.Namespace))
	}
	if l.opts.Name != "" {
		q.where = append(q.where, t+".name = "+q.arg(l.opts.Name))
	}
	if a := l.opts.After; a != nil {
		q.where = append(q.where, "("+t+".namespace, "+t+".name) > ("+q.arg(a.Namespace)+", "+q.arg(a.Name)+")")
	}
}

// labelFilters adds a condition per label requirement on o.labels, which
// the GIN index answers for =, in and exists, and reports whether they
// select exactly what the selector does (> and < are only narrowed to
// objects having the label; either way the lister checks the whole
// selector again in Go) and whether one of them is an index condition.
func labelFilters(q *query, sel labels.Selector) (exact, indexed bool) {
	reqs, _ := sel.Requirements()
	exact = true
	for _, r := range reqs {
		key := r.Key()
		if checkText("label key", key) != nil {
			// No stored label has this key.
			switch r.Operator() {
			case selection.NotEquals, selection.NotIn, selection.DoesNotExist:
			default:
				q.where = append(q.where, "false")
			}
			continue
		}
		var docs []string
		for _, v := range r.ValuesUnsorted() {
			if checkText("label value", v) == nil {
				b, _ := json.Marshal(map[string]string{key: v})
				docs = append(docs, string(b))
			}
		}
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			q.where = append(q.where, "o.labels @> ANY("+q.arg(docs)+"::jsonb[])")
			indexed = true
		case selection.NotEquals, selection.NotIn:
			q.where = append(q.where, "NOT o.labels @> ANY("+q.arg(docs)+"::jsonb[])")
		case selection.Exists:
			q.where = append(q.where, "o.labels ? "+q.arg(key))
			indexed = true
		case selection.DoesNotExist:
			q.where = append(q.where, "NOT o.labels ? "+q.arg(key))
		default:
			q.where = append(q.where, "o.labels ? "+q.arg(key))
			exact = false
		}
	}
	return exact, indexed
}

// currentQuery selects the objects rows of the list; with unchangedOnly
// only those not written after l.rev. A page of Limit objects reads them in
// key order with a LIMIT; a whole list is sorted by readCurrent instead,
// which is cheaper than sorting rows with their values in the server (a 1%
// selector over 1,000,000 objects: 25 instead of 50 ms in the server).
//
// A page whose selector the GIN index answers is selected in a subquery
// the planner cannot merge (OFFSET 0), then top-N sorted: otherwise the
// planner, assuming matches spread evenly over the keys, walks the primary
// key and filters, which reads the whole resource when the matches sit at
// the end of the key order (labels often follow namespaces): 7.6 s for the
// first page of a 1% selector over 1,000,000 objects, against 230 ms for
// the bitmap scan. So a page never reads more rows than the whole list.
func (l *lister) currentQuery(unchangedOnly bool) query {
	var q query
	l.filters(&q, "o")
	exact, indexed := labelFilters(&q, l.sel)
	if unchangedOnly {
		q.where = append(q.where, "o.revision <= "+q.arg(l.rev))
	}
	l.noLabels = exact && l.opts.OmitLabels
	labelsColumn := "o.labels"
	if l.noLabels {
		labelsColumn = "NULL::jsonb"
	}
	q.sql = `SELECT o.namespace, o.name, o.revision, ` + labelsColumn + `, o.value FROM objects o WHERE ` + strings.Join(q.where, " AND ")
	if exact && l.opts.Limit > 0 {
		if indexed {
			q.sql = `SELECT * FROM (` + q.sql + ` OFFSET 0) o`
		}
		// The page takes at most Limit+1 rows from here: Limit objects and
		// one to know that more follow.
		q.sql += ` ORDER BY o.namespace, o.name LIMIT ` + q.arg(int64(l.opts.Limit)+1)
	}
	return q
}

// readCurrent reads the objects rows, keeps those the selector matches,
// sorts them by key and merges in l.page.Past until the page is full. It
// closes rows. Values are copied from the driver's buffer into chunks
// shared by many objects, and labels decoded from it, so that a row
// costs few allocations; with l.noLabels the selector is not checked
// again and the objects have no labels.
func (l *lister) readCurrent(rows pgx.Rows) error {
	defer rows.Close()
	var (
		current []storage.Object
		obj     storage.Object
	)
	filter := !l.sel.Empty() && !l.noLabels
	namespace := bytesScanner(func(b []byte) error {
		if string(b) != obj.Namespace { // most rows repeat the previous one's
			obj.Namespace = string(b)
		}
		return nil
	})
	lbl := bytesScanner(func(b []byte) error {
		var err error
		if obj.Labels, err = decodeLabels(b); err != nil {
			return fmt.Errorf("object %s: %w", keyString(obj.Key), err)
		}
		return nil
	})
	value := bytesScanner(func(b []byte) error {
		obj.Value = l.values.copy(b)
		return nil
	})
	for rows.Next() {
		obj = storage.Object{Key: storage.Key{Resource: l.opts.Resource, Namespace: obj.Namespace}}
		if err := rows.Scan(namespace, &obj.Name, &obj.Revision, lbl, value); err != nil {
			return fmt.Errorf("scan objects: %w", err)
		}
		if filter && !l.sel.Matches(labels.Set(obj.Labels)) {
			continue
		}
		current = append(current, obj)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read objects: %w", err)
	}
	slices.SortFunc(current, func(a, b storage.Object) int { return listpage.Compare(a.Key, b.Key) })
	l.page.MergeAll(current)
	return nil
}

// bytesScanner scans a column as the bytes the driver holds, valid only
// during the call (pgtype.BytesScanner).
type bytesScanner func(b []byte) error

// ScanBytes implements pgtype.BytesScanner.
func (f bytesScanner) ScanBytes(b []byte) error { return f(b) }

// arenaChunk is the size of the chunks an arena copies values into; a
// value of more than a quarter of it gets an allocation of its own.
const arenaChunk = 256 << 10

// chunkPool holds the chunks of released lists: a list of 10,000 objects
// of 1.4 KiB otherwise allocates 14 MB, which on a server whose caches
// hold a large heap brings on its costly collections.
var chunkPool = sync.Pool{New: func() any { return new([arenaChunk]byte) }}

// arena copies byte slices into shared chunks: one allocation for many
// small values. A copy's capacity ends where it does, so appending to
// it never touches its neighbours.
type arena struct {
	chunk  []byte
	chunks []*[arenaChunk]byte
}

// copy returns a copy of b, nil for nil.
func (a *arena) copy(b []byte) []byte {
	switch {
	case b == nil:
		return nil
	case len(b) == 0:
		return []byte{}
	case len(b) > arenaChunk/4:
		return append([]byte(nil), b...)
	case cap(a.chunk)-len(a.chunk) < len(b):
		c := chunkPool.Get().(*[arenaChunk]byte)
		a.chunks = append(a.chunks, c)
		a.chunk = c[:0]
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// release returns the func that puts the arena's chunks back into
// chunkPool, once (nil without chunks).
func (a *arena) release() func() {
	if len(a.chunks) == 0 {
		return nil
	}
	chunks := a.chunks
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, c := range chunks {
				chunkPool.Put(c)
			}
		})
	}
}

// readPast fills l.page.Past, in key order: for every key of the resource written after
// l.rev, its state at l.rev is the previous state recorded by its first
// log row after l.rev (absent if that row created it). Values are left
// for readPastValues, which reads only those of the page.
func (l *lister) readPast(ctx context.Context, tx pgx.Tx) error {
	var q query
	q.where = append(q.where, "g.revision > "+q.arg(l.rev))
	l.filters(&q, "g")
	q.sql = `SELECT DISTINCT ON (g.namespace, g.name) g.revision, g.namespace, g.name, g.prev_revision, g.prev_labels
		FROM log g WHERE ` + strings.Join(q.where, " AND ") + ` ORDER BY g.namespace, g.name, g.revision`
	rows, err := tx.Query(ctx, q.sql, q.args...)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p       = listpage.Past{Obj: storage.Object{Key: storage.Key{Resource: l.opts.Resource}}}
			prevRev *int64
			lbl     []byte
		)
		if err := rows.Scan(&p.LogRev, &p.Obj.Namespace, &p.Obj.Name, &prevRev, &lbl); err != nil {
			return fmt.Errorf("scan log: %w", err)
		}
		if prevRev == nil {
			continue // created after l.rev
		}
		p.Obj.Revision = *prevRev
		if p.Obj.Labels, err = decodeLabels(lbl); err != nil {
			return fmt.Errorf("log revision %d: %w", p.LogRev, err)
		}
		if l.sel.Matches(labels.Set(p.Obj.Labels)) {
			l.page.Past = append(l.page.Past, p)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	return nil
}

// readPastValues reads the values of the page's objects taken from
// the page's Past with one query.
func (l *lister) readPastValues(ctx context.Context, tx pgx.Tx) error {
	revs := l.page.PastRevisions()
	if len(revs) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT revision, prev_value FROM log WHERE revision = ANY($1)`, revs)
	if err != nil {
		return fmt.Errorf("read log values: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			rev   int64
			value []byte
		)
		if err := rows.Scan(&rev, &value); err != nil {
			return fmt.Errorf("scan log values: %w", err)
		}
		l.page.SetPastValue(rev, value)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read log values: %w", err)
	}
	return nil
}
