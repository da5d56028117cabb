package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// Planner statistics and dead rows are normally autovacuum's business, but
// a server may run with autovacuum off (or too slow for a bulk load): the
// planner then knows nothing of a million objects and scans them all for a
// selector (3.3 s instead of a GIN bitmap scan), and compacted log rows stay
// as dead rows. So the store checks its tables itself, after Open and after
// every Compact, in the background:
//
//   - ANALYZE a table when more rows changed since its last analyze
//     (manual or autovacuum's) than maintainRows plus a tenth of its rows,
//     or when it holds more than maintainRows rows and was never analyzed;
//   - VACUUM (ANALYZE) it when its dead rows exceed maintainRows plus a
//     fifth of its rows.
//
// When autovacuum keeps up, the counters stay below these thresholds (they
// are looser than autovacuum's defaults) and nothing runs. Neither command
// blocks reads or writes. A session advisory lock taken with try-lock makes
// one store of all replicas do it at a time; the others skip. Each command
// may take maintainTimeout (a vacuum of a large table outlasts the
// statement timeout of requests); the work stops at Close.

// maintainRows is the fixed part of the thresholds above.
const maintainRows = 1000

// maintainTimeout is the statement_timeout of ANALYZE and VACUUM.
const maintainTimeout = "10min"

// maintenance runs at most one background check per store at a time.
type maintenance struct {
	running atomic.Bool
	// mu guards stopped against wg.Add after stop's wg.Wait.
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// stop waits for the running check, which the store's canceled stopCtx
// ends, and prevents new ones.
func (m *maintenance) stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.wg.Wait()
}

// maintainLockKey is the advisory lock that lets one store of a schema
// maintain it at a time.
func maintainLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("setpoint/maintain/" + schema))
	return int64(h.Sum64())
}

// maintainLater starts a background check of the tables, unless one is
// running. Errors are dropped: the check is an optimization, and the next
// Compact tries again.
func (s *Store) maintainLater() {
	s.maint.mu.Lock()
	defer s.maint.mu.Unlock()
	if s.maint.stopped || !s.maint.running.CompareAndSwap(false, true) {
		return
	}
	s.maint.wg.Add(1)
	go func() {
		defer s.maint.wg.Done()
		defer s.maint.running.Store(false)
		_, _ = s.maintain(s.stopCtx)
	}()
}

// maintain analyzes and vacuums the store's tables that need it (see
// above) and returns the commands it ran. It runs nothing when another
// store holds the maintenance lock.
func (s *Store) maintain(ctx context.Context) (ran []string, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: maintain: %w", err)
	}
	defer conn.Release()
	key := maintainLockKey(s.schema)
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked); err != nil || !locked {
		return nil, err
	}
	defer func() {
		_, rerr := conn.Exec(context.Background(), `RESET statement_timeout`)
		_, uerr := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, key)
		if rerr != nil || uerr != nil {
			// A session setting or lock that cannot be undone goes with
			// its session.
			conn.Conn().PgConn().Close(context.Background())
		}
	}()
	rows, err := conn.Query(ctx, `SELECT relname,
			CASE WHEN n_dead_tup > $2 + n_live_tup / 5 THEN 'VACUUM (ANALYZE) '
				WHEN n_mod_since_analyze > $2 + n_live_tup / 10
					OR (coalesce(last_analyze, last_autoanalyze) IS NULL AND n_live_tup > $2) THEN 'ANALYZE '
			END
		FROM pg_stat_user_tables
		WHERE schemaname = $1 AND relname IN ('objects', 'log')
		ORDER BY relname`, s.schema, maintainRows)
	if err != nil {
		return nil, fmt.Errorf("postgres: maintain: read table statistics: %w", err)
	}
	var cmds []string
	for rows.Next() {
		var (
			table string
			cmd   *string
		)
		if err := rows.Scan(&table, &cmd); err != nil {
			return nil, fmt.Errorf("postgres: maintain: read table statistics: %w", err)
		}
		if cmd != nil {
			cmds = append(cmds, *cmd+pgx.Identifier{s.schema, table}.Sanitize())
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: maintain: read table statistics: %w", err)
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	if _, err := conn.Exec(ctx, `SET statement_timeout = '`+maintainTimeout+`'`); err != nil {
		return nil, fmt.Errorf("postgres: maintain: set statement_timeout: %w", err)
	}
	for _, cmd := range cmds {
		if _, err := conn.Exec(ctx, cmd); err != nil {
			return ran, fmt.Errorf("postgres: maintain: %s: %w", cmd, err)
		}
		ran = append(ran, cmd)
	}
	return ran, nil
}
