// Package pgtest gives tests a fresh PostgreSQL schema of their own in the
// database named by the environment variable SETPOINT_TEST_POSTGRES.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable holding the URL of a database tests
// may create schemas in.
const EnvURL = "SETPOINT_TEST_POSTGRES"

// BaseURL returns the URL in SETPOINT_TEST_POSTGRES, or skips t with a
// message saying how to set it.
func BaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skipf("%s is not set; to run the PostgreSQL tests, set it to a database the tests may create schemas in, "+
			"e.g. postgres://postgres@127.0.0.1:5432/setpoint_dev?sslmode=disable", EnvURL)
	}
	return base
}

// URL returns a URL to a fresh, empty schema in the database named by
// SETPOINT_TEST_POSTGRES (its search_path is the schema), and drops the
// schema at the end of the test. It skips t with a message when the
// variable is unset.
func URL(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	schema := "t_" + safeName(t.Name()) + "_" + hex.EncodeToString(suffix[:])
	exec(t, base, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize())
	t.Cleanup(func() { exec(t, base, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`) })
	return WithSchema(t, base, schema)
}

// WithSchema returns base with its search_path set to schema.
func WithSchema(t testing.TB, base, schema string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL", EnvURL) // the error could show a password
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// exec runs one statement on a connection of its own.
func exec(t testing.TB, base, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// safeName turns a test name into a short lowercase identifier part.
func safeName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
