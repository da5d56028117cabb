package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testPostgresEnv names the environment variable with the URL of a
// PostgreSQL database the suite may create schemas in; its server is where
// the suite creates the dedicated databases of fault-injection tests.
const testPostgresEnv = "SETPOINT_TEST_POSTGRES"

// adminTimeout bounds each administrative statement the suite sends to
// PostgreSQL.
const adminTimeout = 30 * time.Second

// testPostgresURL returns the URL in SETPOINT_TEST_POSTGRES, and skips t
// when it is unset.
func testPostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(testPostgresEnv)
	if u == "" {
		t.Skipf("%s is unset: set it to the URL of a PostgreSQL database the tests may create schemas and databases in, "+
			"e.g. postgres://postgres@127.0.0.1:5432/setpoint_dev?sslmode=disable", testPostgresEnv)
	}
	return u
}

// adminExec runs sql on a fresh connection to the database at dbURL.
func adminExec(t testing.TB, dbURL, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to PostgreSQL as admin: %v", redactErr(err, dbURL))
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// redactErr keeps the password of dbURL out of err's message.
func redactErr(err error, dbURL string) error {
	u, perr := url.Parse(dbURL)
	if perr != nil || u.User == nil {
		return err
	}
	if _, ok := u.User.Password(); !ok {
		return err
	}
	return fmt.Errorf("%s: %w", u.Redacted(), err)
}

// uniqueName returns prefix followed by random hex digits: a name no other
// test run uses.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b)
}

// withURL returns dbURL with the database replaced by db (when not empty)
// and the query parameter search_path set to schema (when not empty).
func withURL(t testing.TB, dbURL, db, schema string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", testPostgresEnv, redactErr(err, dbURL))
	}
	if db != "" {
		u.Path = "/" + db
	}
	if schema != "" {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// postgresSchemaURL creates a fresh schema in the database named by
// SETPOINT_TEST_POSTGRES and returns a URL that works in it; the schema is
// dropped when the test ends, after its servers stopped. It skips t when
// SETPOINT_TEST_POSTGRES is unset.
func postgresSchemaURL(t testing.TB) string {
	t.Helper()
	admin := testPostgresURL(t)
	schema := uniqueName("e2e_")
	ident := pgx.Identifier{schema}.Sanitize()
	adminExec(t, admin, "CREATE SCHEMA "+ident)
	t.Cleanup(func() { adminExec(t, admin, "DROP SCHEMA "+ident+" CASCADE") })
	return withURL(t, admin, "", schema)
}

// testDatabase is a PostgreSQL database of its own for one test, so that
// faults injected into it reach no other test.
type testDatabase struct {
	t     testing.TB
	name  string
	admin string // URL of the database administrative statements run in
	url   string // URL of the test's database
}

// newTestDatabase creates a database on the server of
// SETPOINT_TEST_POSTGRES and drops it, with whatever is still connected,
// when the test ends. It skips t when SETPOINT_TEST_POSTGRES is unset.
func newTestDatabase(t testing.TB) *testDatabase {
	t.Helper()
	admin := testPostgresURL(t)
	d := &testDatabase{t: t, name: uniqueName("setpoint_e2e_"), admin: admin}
	d.url = withURL(t, admin, d.name, "")
	ident := pgx.Identifier{d.name}.Sanitize()
	adminExec(t, admin, "CREATE DATABASE "+ident)
	t.Cleanup(func() { adminExec(t, admin, "DROP DATABASE "+ident+" WITH (FORCE)") })
	return d
}

// cutOff makes the database unreachable: new connections are refused and
// the open ones of this database (only these) are terminated.
func (d *testDatabase) cutOff() {
	d.t.Helper()
	adminExec(d.t, d.admin, "ALTER DATABASE "+pgx.Identifier{d.name}.Sanitize()+" ALLOW_CONNECTIONS false")
	adminExec(d.t, d.admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", d.name)
}

// restore lets connections to the database in again.
func (d *testDatabase) restore() {
	d.t.Helper()
	adminExec(d.t, d.admin, "ALTER DATABASE "+pgx.Identifier{d.name}.Sanitize()+" ALLOW_CONNECTIONS true")
}

// startReplicas starts n servers that share the storage at storageURL
// and one --pki-dir (so one CA signs for all, and a client of one trusts
// every replica), each with its own data directory and port, and
// extraArgs.
func startReplicas(t testing.TB, n int, storageURL string, extraArgs ...string) []*server {
	t.Helper()
	replicas := make([]*server, n)
	pkiDir := filepath.Join(t.TempDir(), "pki")
	for i := range replicas {
		replicas[i] = startServer(t, append([]string{"--storage", storageURL, "--pki-dir", pkiDir}, extraArgs...)...)
	}
	return replicas
}

// forEachStorage runs scenario once on embedded SQLite and once on a
// fresh PostgreSQL schema (skipped without SETPOINT_TEST_POSTGRES), with
// the serve arguments that select the storage.
func forEachStorage(t *testing.T, scenario func(t *testing.T, storageArgs []string)) {
	t.Run("sqlite", func(t *testing.T) { scenario(t, nil) })
	t.Run("postgres", func(t *testing.T) { scenario(t, []string{"--storage", postgresSchemaURL(t)}) })
}
