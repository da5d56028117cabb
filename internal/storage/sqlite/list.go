package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/internal/listpage"
)

// errNoResource rejects a list without a resource.
var errNoResource = errors.New("sqlite: list: resource is required")

// List implements storage.Store. See the package documentation for how a
// list at an older revision is answered.
func (s *Store) List(ctx context.Context, opts storage.ListOptions) (storage.ListResult, error) {
	if opts.Resource == "" {
		return storage.ListResult{}, errNoResource
	}
	sel := opts.Labels
	if sel == nil {
		sel = labels.Everything()
	}
	l := lister{opts: opts, sel: sel, page: listpage.New(opts.Limit)}
	err := s.readTx(ctx, "list "+opts.Resource, func(tx *sql.Tx, current, compacted int64) error {
		rev := opts.Revision
		switch {
		case rev == 0:
			rev = current
		case rev < compacted:
			return fmt.Errorf("sqlite: list %s at revision %d (compacted %d): %w", opts.Resource, rev, compacted, storage.ErrCompacted)
		case rev > current:
			return fmt.Errorf("sqlite: list %s at revision %d (current %d): %w", opts.Resource, rev, current, storage.ErrFutureRevision)
		}
		l.rev = rev
		if _, selectable := sel.Requirements(); !selectable || listpage.PastNamespace(opts) {
			return nil // nothing can match
		}
		if rev < current {
			if err := l.readPast(ctx, tx); err != nil {
				return s.readErr("list "+opts.Resource, err)
			}
		}
		if err := l.readCurrent(ctx, tx, rev < current); err != nil {
			return s.readErr("list "+opts.Resource, err)
		}
		if err := l.readPastValues(ctx, tx); err != nil {
			return s.readErr("list "+opts.Resource, err)
		}
		return nil
	})
	if err != nil {
		return storage.ListResult{}, err
	}
	return storage.ListResult{Objects: l.page.Objects, Revision: l.rev, More: l.page.More}, nil
}

// lister builds one page of a list inside a read transaction.
type lister struct {
	opts storage.ListOptions
	sel  labels.Selector
	rev  int64
	// page is the page being built; its Past holds, in key order, the
	// state at rev of keys written after rev, without values.
	page *listpage.Page
}

// filters appends the namespace, name and After conditions on the columns
// of table alias t.
//
// In a list of one namespace, After is a condition on the name alone (none
// if After is in an earlier namespace, see listpage.PastNamespace for a later one):
// SQLite seeks an index on "namespace = ? AND name > ?", but with a row
// value "(namespace, name) > (?, ?)" next to "namespace = ?" it ranges over
// the row value and sorts every row after the key to order them by name,
// so each page costs more than the one before.
func (l *lister) filters(where []string, args []any, t string) ([]string, []any) {
	if l.opts.Namespace != "" {
		where = append(where, t+".namespace = ?")
		args = append(args, l.opts.Namespace)
	}
	if l.opts.Name != "" {
		where = append(where, t+".name = ?")
		args = append(args, l.opts.Name)
	}
	switch a := l.opts.After; {
	case a == nil:
	case l.opts.Namespace == "":
		where = append(where, "("+t+".namespace, "+t+".name) > (?, ?)")
		args = append(args, a.Namespace, a.Name)
	case a.Namespace == l.opts.Namespace:
		where = append(where, t+".name > ?")
		args = append(args, a.Name)
	}
	return where, args
}

// readPast fills l.page.Past: for every key of the resource written after l.rev,
// its state at l.rev is the previous state recorded by its first log entry
// after l.rev (absent if that entry created it). It leaves out the values,
// which readPastValues reads for the objects that make the page: all the
// writes after l.rev can be many more than a page.
func (l *lister) readPast(ctx context.Context, tx *sql.Tx) error {
	q, args := l.pastQuery()
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	seen := map[[2]string]bool{}
	for rows.Next() {
		var (
			key     = storage.Key{Resource: l.opts.Resource}
			logRev  int64
			prevRev sql.NullInt64
			lbl     sql.RawBytes // decoded before the next Scan
		)
		if err := rows.Scan(&logRev, &key.Namespace, &key.Name, &prevRev, &lbl); err != nil {
			return fmt.Errorf("scan log: %w", err)
		}
		id := [2]string{key.Namespace, key.Name}
		if seen[id] {
			continue
		}
		seen[id] = true
		if !prevRev.Valid {
			continue
		}
		p := listpage.Past{Obj: storage.Object{Key: key, Revision: prevRev.Int64}, LogRev: logRev}
		if p.Obj.Labels, err = decodeLabels(lbl); err != nil {
			return fmt.Errorf("log entry for %s: %w", keyString(key), err)
		}
		if l.sel.Matches(labels.Set(p.Obj.Labels)) {
			l.page.Past = append(l.page.Past, p)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	slices.SortFunc(l.page.Past, func(a, b listpage.Past) int { return listpage.Compare(a.Obj.Key, b.Obj.Key) })
	return nil
}

// readPastValues reads the values of the page's objects taken from its Past
// with one query.
func (l *lister) readPastValues(ctx context.Context, tx *sql.Tx) error {
	revs := l.page.PastRevisions()
	if len(revs) == 0 {
		return nil
	}
	args := make([]any, 0, len(revs))
	for _, rev := range revs {
		args = append(args, rev)
	}
	rows, err := tx.QueryContext(ctx, `SELECT revision, prev_value FROM log WHERE revision IN (?`+
		strings.Repeat(", ?", len(args)-1)+`)`, args...)
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

// pastQuery returns the query of readPast and its arguments.
func (l *lister) pastQuery() (string, []any) {
	where, args := l.filters([]string{"g.revision > ?", "g.resource = ?"}, []any{l.rev, l.opts.Resource}, "g")
	return `SELECT g.revision, g.namespace, g.name, g.prev_revision, g.prev_labels FROM log g WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY g.revision`, args
}

// indexedRequirement picks the label requirement to answer from the label
// index: an equality or set membership if there is one, else an existence
// test; nil if the selector has no positive requirement.
func indexedRequirement(sel labels.Selector) *labels.Requirement {
	reqs, ok := sel.Requirements()
	if !ok {
		return nil
	}
	var exists *labels.Requirement
	for i := range reqs {
		switch reqs[i].Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			return &reqs[i]
		case selection.Exists:
			if exists == nil {
				exists = &reqs[i]
			}
		}
	}
	return exists
}

// readCurrent streams the objects rows in key order, merging in l.page.Past.
// With unchangedOnly it keeps only rows not written after l.rev.
func (l *lister) readCurrent(ctx context.Context, tx *sql.Tx, unchangedOnly bool) error {
	q, args := l.currentQuery(unchangedOnly)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read objects: %w", err)
	}
	defer rows.Close()
	filter := !l.sel.Empty()
	for rows.Next() {
		obj := storage.Object{Key: storage.Key{Resource: l.opts.Resource}}
		var lbl sql.RawBytes // decoded before the next Scan
		if err := rows.Scan(&obj.Namespace, &obj.Name, &obj.Revision, &lbl, &obj.Value); err != nil {
			return fmt.Errorf("scan objects: %w", err)
		}
		if obj.Labels, err = decodeLabels(lbl); err != nil {
			return fmt.Errorf("object %s: %w", keyString(obj.Key), err)
		}
		if filter && !l.sel.Matches(labels.Set(obj.Labels)) {
			continue
		}
		if !l.page.Merge(obj) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read objects: %w", err)
	}
	l.page.Finish()
	return nil
}

// currentQuery returns the query of readCurrent and its arguments.
func (l *lister) currentQuery(unchangedOnly bool) (string, []any) {
	var (
		from  string
		where []string
		args  []any
		t     = "o"
	)
	if req := indexedRequirement(l.sel); req != nil {
		// CROSS JOIN keeps the index as the outer loop. Otherwise, for an
		// existence test or a set after a key, SQLite may walk the objects
		// and search the index by (resource, key) for each: rows × matches.
		t = "l"
		from = `labels l CROSS JOIN objects o ON o.resource = l.resource AND o.namespace = l.namespace AND o.name = l.name`
		where = []string{"l.resource = ?", "l.key = ?"}
		args = []any{l.opts.Resource, req.Key()}
		if req.Operator() != selection.Exists {
			vals := req.ValuesUnsorted()
			where = append(where, "l.value IN (?"+strings.Repeat(", ?", len(vals)-1)+")")
			for _, v := range vals {
				args = append(args, v)
			}
		}
	} else {
		from = `objects o`
		where = []string{"o.resource = ?"}
		args = []any{l.opts.Resource}
	}
	where, args = l.filters(where, args, t)
	if unchangedOnly {
		where = append(where, "o.revision <= ?")
		args = append(args, l.rev)
	}
	q := `SELECT o.namespace, o.name, o.revision, o.labels, o.value FROM ` + from + ` WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY ` + t + `.namespace, ` + t + `.name`
	return q, args
}
