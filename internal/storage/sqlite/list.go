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
	l := lister{opts: opts, sel: sel, objects: []storage.Object{}}
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
		if _, selectable := sel.Requirements(); !selectable || l.pastNamespace() {
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
	return storage.ListResult{Objects: l.objects, Revision: l.rev, More: l.more}, nil
}

// lister builds one page of a list inside a read transaction.
type lister struct {
	opts storage.ListOptions
	sel  labels.Selector
	rev  int64
	// past holds, in key order, the state at rev of keys written after rev,
	// without values.
	past []pastObject
	// objects is the page so far; more is set once it is full and another
	// object follows.
	objects []storage.Object
	more    bool
	// pastValues lists the objects of the page taken from past, whose
	// values readPastValues reads.
	pastValues []pastValue
}

// pastObject is the state of a key at the list's revision, rebuilt from the
// first log row written after it; its value is that row's prev_value.
type pastObject struct {
	obj    storage.Object
	logRev int64
}

// pastValue says that l.objects[index] takes the prev_value of log row logRev.
type pastValue struct {
	index  int
	logRev int64
}

// add appends obj unless the page is full; it reports whether to go on.
func (l *lister) add(obj storage.Object) bool {
	if l.opts.Limit > 0 && len(l.objects) >= l.opts.Limit {
		l.more = true
		return false
	}
	l.objects = append(l.objects, obj)
	return true
}

// addPast appends p.obj like add and notes that it needs its value.
func (l *lister) addPast(p pastObject) bool {
	if !l.add(p.obj) {
		return false
	}
	l.pastValues = append(l.pastValues, pastValue{index: len(l.objects) - 1, logRev: p.logRev})
	return true
}

func compareKeys(ns1, n1, ns2, n2 string) int {
	if c := strings.Compare(ns1, ns2); c != 0 {
		return c
	}
	return strings.Compare(n1, n2)
}

// pastNamespace reports whether a list of one namespace continues after a
// key beyond that namespace, so that no key is left.
func (l *lister) pastNamespace() bool {
	return l.opts.Namespace != "" && l.opts.After != nil && l.opts.After.Namespace > l.opts.Namespace
}

// filters appends the namespace, name and After conditions on the columns
// of table alias t.
//
// In a list of one namespace, After is a condition on the name alone (none
// if After is in an earlier namespace, see pastNamespace for a later one):
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

// readPast fills l.past: for every key of the resource written after l.rev,
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
		p := pastObject{obj: storage.Object{Key: key, Revision: prevRev.Int64}, logRev: logRev}
		if p.obj.Labels, err = decodeLabels(lbl); err != nil {
			return fmt.Errorf("log entry for %s: %w", keyString(key), err)
		}
		if l.sel.Matches(labels.Set(p.obj.Labels)) {
			l.past = append(l.past, p)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	slices.SortFunc(l.past, func(a, b pastObject) int {
		return compareKeys(a.obj.Namespace, a.obj.Name, b.obj.Namespace, b.obj.Name)
	})
	return nil
}

// readPastValues reads the values of the page's objects taken from l.past
// with one query.
func (l *lister) readPastValues(ctx context.Context, tx *sql.Tx) error {
	if len(l.pastValues) == 0 {
		return nil
	}
	index := make(map[int64]int, len(l.pastValues))
	args := make([]any, 0, len(l.pastValues))
	for _, v := range l.pastValues {
		index[v.logRev] = v.index
		args = append(args, v.logRev)
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
		l.objects[index[rev]].Value = value
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

// readCurrent streams the objects rows in key order, merging in l.past.
// With unchangedOnly it keeps only rows not written after l.rev.
func (l *lister) readCurrent(ctx context.Context, tx *sql.Tx, unchangedOnly bool) error {
	q, args := l.currentQuery(unchangedOnly)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read objects: %w", err)
	}
	defer rows.Close()
	past := l.past
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
		for len(past) > 0 && compareKeys(past[0].obj.Namespace, past[0].obj.Name, obj.Namespace, obj.Name) < 0 {
			if !l.addPast(past[0]) {
				return nil
			}
			past = past[1:]
		}
		if !l.add(obj) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read objects: %w", err)
	}
	for _, p := range past {
		if !l.addPast(p) {
			return nil
		}
	}
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
