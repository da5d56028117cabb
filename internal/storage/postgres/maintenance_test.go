package postgres

import (
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

// TestMaintainAnalyzesAndVacuums fills objects behind the store's back
// (as a bulk load would, with no statistics), then deletes them: the
// store's check must ANALYZE the never-analyzed table, later VACUUM it for
// its dead rows, and do nothing while another session holds the
// maintenance lock. Statistics counters reach pg_stat_user_tables when a
// session goes idle, up to 10 s after its commit unless forced as here,
// so the test polls for the expected command.
func TestMaintainAnalyzesAndVacuums(t *testing.T) {
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
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	// flush sends this session's counters now rather than within 10 s.
	flush := func() { exec(`SELECT pg_stat_force_next_flush()`) }
	table := pgx.Identifier{s.schema, "objects"}.Sanitize()
	awaitCommand := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ran, err := s.maintain(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(ran, want+table) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("maintenance ran %q, never %q", ran, want+table)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	exec(`INSERT INTO objects (resource, namespace, name, revision, labels, value)
		SELECT 'r', '', 'o' || i, i, '{}', '\x7b7d' FROM generate_series(1, 5000) i`)
	flush()
	awaitCommand("ANALYZE ")
	var analyzed bool
	if err := conn.QueryRow(ctx, `SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'objects'`, s.schema).Scan(&analyzed); err != nil {
		t.Fatal(err)
	}
	if !analyzed {
		t.Fatal("objects not analyzed after maintenance ran ANALYZE")
	}

	exec(`DELETE FROM objects WHERE resource = 'r'`)
	flush()
	// Another store of the schema holds the lock: nothing runs.
	exec(`SELECT pg_advisory_lock($1)`, maintainLockKey(s.schema))
	if ran, err := s.maintain(ctx); err != nil || len(ran) != 0 {
		t.Fatalf("maintenance under another session's lock ran %q, %v", ran, err)
	}
	exec(`SELECT pg_advisory_unlock($1)`, maintainLockKey(s.schema))
	awaitCommand("VACUUM (ANALYZE) ")
}
