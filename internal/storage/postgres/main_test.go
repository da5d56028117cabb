package postgres_test

import (
	"testing"

	"github.com/setpoint/setpoint/internal/leakcheck"
)

// TestMain fails the tests if a store's writer or listener, or a pool of
// pgx connections, outlives them: Close must stop and wait for them.
func TestMain(m *testing.M) { leakcheck.Main(m, "storage/postgres.", "jackc/pgx/v5/pgxpool.") }
