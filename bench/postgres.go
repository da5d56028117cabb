package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
)

// On PostgreSQL every run keeps its objects in schemas of its own in the
// database of -storage: the servers get the URL with search_path set to
// the schema, so runs never see each other's objects, and the fresh
// schemas are dropped after the run. Only -keep-schema outlives it.

// checkStorage checks the flags of the PostgreSQL runs.
func (o options) checkStorage() error {
	if o.storage == "" {
		if o.replicas != 1 || o.keepSchema != "" {
			return errors.New("-replicas and -keep-schema need -storage")
		}
		return nil
	}
	if o.kubeconfig != "" {
		return errors.New("-storage starts servers: it does not go with -kubeconfig")
	}
	if o.replicas < 1 {
		return fmt.Errorf("-replicas must be at least 1, not %d", o.replicas)
	}
	if o.selectorObjects < 0 {
		return fmt.Errorf("-selector-objects must not be negative, not %d", o.selectorObjects)
	}
	if _, err := withSearchPath(o.storage, "public"); err != nil {
		return fmt.Errorf("-storage: %w", err)
	}
	if o.keepSchema != "" {
		if err := checkSchemaName(o.keepSchema); err != nil {
			return fmt.Errorf("-keep-schema: %w", err)
		}
	}
	return nil
}

// pick is the target of a figure on embedded SQLite or on PostgreSQL:
// the issues set different ones.
func (o options) pick(sqlite, postgres *Target) *Target {
	if o.storage != "" {
		return postgres
	}
	return sqlite
}

// embedded is target on embedded SQLite, and no target on PostgreSQL.
func (o options) embedded(target *Target) *Target { return o.pick(target, nil) }

// schemaName is what the program accepts as a schema name: a lower-case
// SQL identifier, which needs no quoting in search_path, and not one of
// the names PostgreSQL reserves (pg_*).
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// checkSchemaName tells why name is not a schema name the program uses.
func checkSchemaName(name string) error {
	if !schemaName.MatchString(name) || len(name) >= 3 && name[:3] == "pg_" {
		return fmt.Errorf("schema name %q: want at most 63 lower-case letters, digits and underscores, not starting with a digit or pg_", name)
	}
	return nil
}

// withSearchPath returns the PostgreSQL URL rawURL with its search_path
// parameter set to schema, its other parameters kept. Its errors never
// hold the password of rawURL.
func withSearchPath(rawURL, schema string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// The error of url.Parse quotes the URL, password and all.
		return "", errors.New("not a URL: want postgres://user@host:port/database?sslmode=disable")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("scheme %q: want a postgres:// or postgresql:// URL", u.Scheme)
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return "", errors.New("no host: want postgres://user@host:port/database?sslmode=disable")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redactURL is rawURL without its password, to print and record.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(not a URL)"
	}
	return u.Redacted()
}

// schemas are the PostgreSQL schemas of one run: run holds the objects of
// the scenarios, selector those of the label-selector list. Both are
// fresh, unless -keep-schema names selector.
type schemas struct {
	// storage is the URL of -storage; "" on SQLite, where there are none.
	storage       string
	run, selector string
	// created are the fresh schemas made so far, which drop drops.
	created []string
}

// newSchemas names the schemas of a run started at date by this process.
func newSchemas(opts options, date time.Time) *schemas {
	base := fmt.Sprintf("bench_%s_%d", date.UTC().Format("20060102_150405"), os.Getpid())
	s := &schemas{storage: opts.storage, run: base + "_run", selector: opts.keepSchema}
	if s.selector == "" {
		s.selector = base + "_selector"
	}
	return s
}

// use creates the schema name, which must not exist unless keep is set,
// and returns the flags starting a server on it. A schema not kept is
// dropped by drop. On SQLite there is nothing to create and no flag.
func (s *schemas) use(ctx context.Context, name string, keep bool) ([]string, error) {
	if s.storage == "" {
		return nil, nil
	}
	storage, err := withSearchPath(s.storage, name)
	if err != nil {
		return nil, err
	}
	create, kept := "CREATE SCHEMA ", "dropped after the run"
	if keep {
		create, kept = "CREATE SCHEMA IF NOT EXISTS ", "kept"
	}
	if err := execSQL(ctx, s.storage, create+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", name, err)
	}
	if !keep {
		s.created = append(s.created, name)
	}
	fmt.Fprintf(os.Stderr, "bench: schema %s of %s, %s\n", name, redactURL(s.storage), kept)
	return []string{"--storage", storage}, nil
}

// drop drops the fresh schemas of the run, with everything in them. It
// runs once the servers using them have stopped.
func (s *schemas) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, name := range s.created {
		if err := execSQL(ctx, s.storage, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			errs = append(errs, fmt.Errorf("drop schema %s: %w", name, err))
		}
	}
	s.created = nil
	return errors.Join(errs...)
}

// execSQL runs one statement on a connection of its own to the database
// of rawURL.
func execSQL(ctx context.Context, rawURL, stmt string) error {
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		// pgx leaves the password out of its errors.
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}
