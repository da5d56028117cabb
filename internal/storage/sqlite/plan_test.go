package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/storage"
)

// TestListQueryPlans checks with EXPLAIN QUERY PLAN that the list queries
// seek the index to the continue key instead of reading the resource from
// its start, that a selector's query reads the label index first, and that
// they read rows already in key order (no sort), except for selectors whose
// index rows are not in key order: a set of several values or an existence
// test.
func TestListQueryPlans(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const res = "example.com/widgets"
	after := &storage.Key{Resource: res, Namespace: "ns", Name: "obj-5"}
	for _, c := range []struct {
		name     string
		opts     storage.ListOptions
		selector string
		// seek is how the outer loop must seek the index to the key after
		// After, if it can.
		seek   string
		sorted bool
	}{
		{name: "all", opts: storage.ListOptions{Resource: res}},
		{name: "all-after", opts: storage.ListOptions{Resource: res, After: after}, seek: "(resource=? AND (namespace,name)>(?,?))"},
		{name: "namespace", opts: storage.ListOptions{Resource: res, Namespace: "ns"}},
		{name: "namespace-after", opts: storage.ListOptions{Resource: res, Namespace: "ns", After: after}, seek: "(resource=? AND namespace=? AND name>?)"},
		{name: "namespace-after-earlier", opts: storage.ListOptions{Resource: res, Namespace: "other", After: after}},
		{name: "name", opts: storage.ListOptions{Resource: res, Namespace: "ns", Name: "obj-7", After: after}},
		{name: "equal-after", opts: storage.ListOptions{Resource: res, After: after}, selector: "app=web", seek: "value=? AND (namespace,name)>(?,?))"},
		{name: "namespace-equal-after", opts: storage.ListOptions{Resource: res, Namespace: "ns", After: after}, selector: "app=web,tier!=db", seek: "value=? AND namespace=? AND name>?)"},
		{name: "set-after", opts: storage.ListOptions{Resource: res, Namespace: "ns", After: after}, selector: "app in (a,b)", seek: "value=? AND namespace=? AND name>?)", sorted: true},
		{name: "exists-after", opts: storage.ListOptions{Resource: res, After: after}, selector: "app", sorted: true},
		{name: "negative-after", opts: storage.ListOptions{Resource: res, Namespace: "ns", After: after}, selector: "app!=web", seek: "(resource=? AND namespace=? AND name>?)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sel, err := labels.Parse(c.selector)
			if err != nil {
				t.Fatal(err)
			}
			l := lister{opts: c.opts, sel: sel, rev: 7}
			outer := "SEARCH o USING INDEX sqlite_autoindex_objects_1 "
			if indexedRequirement(sel) != nil {
				outer = "SEARCH l USING PRIMARY KEY "
			}
			for _, unchangedOnly := range []bool{false, true} {
				q, args := l.currentQuery(unchangedOnly)
				checkPlan(t, s.readDB, q, args, outer+"(", c.seek, c.sorted)
			}
			q, args := l.pastQuery()
			checkPlan(t, s.readDB, q, args, "SEARCH g USING INTEGER PRIMARY KEY (rowid>?)", "", false)
		})
	}
}

// checkPlan fails t if the plan of q scans a table, does not start with
// outer, has no seek in its first step or, unless sorted is allowed, sorts.
func checkPlan(t *testing.T, db *sql.DB, q string, args []any, outer, seek string, sorted bool) {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "; ")
	first, _, _ := strings.Cut(text, "; ")
	if !strings.HasPrefix(text, outer) || !strings.Contains(first, seek) || strings.Contains(text, "SCAN") || (!sorted && strings.Contains(text, "TEMP B-TREE")) {
		t.Errorf("query %s\nhas plan %s", q, text)
	}
	t.Logf("%s\n  %s", q, text)
}
