package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

// TestSelectorPlans checks which index the planner takes for each kind of
// label requirement over 20,000 analyzed objects of 1 KiB, 1% matching: = and in
// the jsonb_path_ops index, exists the jsonb_ops one, as the schema's
// documentation says.
func TestSelectorPlans(t *testing.T) {
	url := pgtest.URL(t)
	ctx := t.Context()
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		`INSERT INTO objects (resource, namespace, name, revision, labels, value)
			SELECT 'r', 'ns', 'o' || i, i, jsonb_build_object('bucket', (i % 100)::text) ||
				CASE WHEN i % 100 = 7 THEN '{"rare": "x"}'::jsonb ELSE '{}' END,
				convert_to('{"data":"' || repeat('x', 900) || '"}', 'UTF8')
			FROM generate_series(1, 20000) i`,
		`ANALYZE objects`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for sel, index := range map[string]string{
		"bucket=7":         "objects_label_pairs",
		"bucket in (7, 8)": "objects_label_pairs",
		"bucket==7,app!=x": "objects_label_pairs",
		"rare":             "objects_labels",
		"rare,bucket!=7":   "objects_labels",
	} {
		parsed, err := labels.Parse(sel)
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{0, 500} {
			l := &lister{opts: storage.ListOptions{Resource: "r", Namespace: "ns", Limit: limit}, sel: parsed}
			q := l.currentQuery(false)
			rows, err := conn.Query(ctx, `EXPLAIN `+q.sql, q.args...)
			if err != nil {
				t.Fatalf("%s: %v", sel, err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatalf("%s: %v", sel, err)
			}
			if text := strings.Join(lines, "\n"); !strings.Contains(text, "Bitmap Index Scan on "+index+" ") {
				t.Errorf("selector %q, limit %d: plan does not scan %s:\n%s", sel, limit, index, text)
			}
		}
	}
}
