package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema steps in order; migrations[i] brings the schema
// from version i to version i+1. Append new steps, never edit old ones.
//
// Keys are text COLLATE "C" so that they order by bytes, as Go compares
// strings, whatever the database's collation. Values are bytea: a value
// comes back byte for byte as written (jsonb would reorder keys and drop
// whitespace). Labels are jsonb with two GIN indexes: jsonb_path_ops serves
// @> for = and in, the default jsonb_ops ? for exists; see the package
// documentation for why not a label table.
var migrations = []string{
	// 1: objects, change log, revision counters.
	`CREATE TABLE objects (
		resource  text COLLATE "C" NOT NULL,
		namespace text COLLATE "C" NOT NULL,
		name      text COLLATE "C" NOT NULL,
		revision  bigint NOT NULL,
		labels    jsonb NOT NULL,
		value     bytea NOT NULL,
		PRIMARY KEY (resource, namespace, name)
	);
	CREATE INDEX objects_labels ON objects USING gin (labels);
	CREATE TABLE log (
		revision      bigint PRIMARY KEY,
		type          smallint NOT NULL,
		resource      text COLLATE "C" NOT NULL,
		namespace     text COLLATE "C" NOT NULL,
		name          text COLLATE "C" NOT NULL,
		labels        jsonb,
		value         bytea,
		prev_revision bigint,
		prev_labels   jsonb,
		prev_value    bytea
	);
	CREATE TABLE meta (
		id        integer PRIMARY KEY CHECK (id = 1),
		revision  bigint NOT NULL,
		compacted bigint NOT NULL
	);
	INSERT INTO meta (id, revision, compacted) VALUES (1, 0, 0);`,
	// 2: a second GIN index on labels for = and in (@>). jsonb_path_ops
	// keeps one entry per label, a hash of key and value, where jsonb_ops
	// keeps the key and the value apart, so that @> intersects the
	// postings of the key, every object having it, with the value's. For
	// a selector matching 10,000 of 1,000,000 objects the bitmap took
	// 0.7 ms instead of 8-12 ms. jsonb_ops stays for exists (?), which
	// jsonb_path_ops cannot answer.
	`CREATE INDEX objects_label_pairs ON objects USING gin (labels jsonb_path_ops);`,
	// 3: the elected writer's published peer endpoint (election.go). pid
	// is its election session, which holds the writer lock while it lives.
	`CREATE TABLE writer (
		id      integer PRIMARY KEY CHECK (id = 1),
		pid     integer NOT NULL,
		address text NOT NULL,
		token   bytea NOT NULL,
		cert    bytea NOT NULL
	);`,
}

// migrateLockKey is the advisory lock that serializes migrations of one
// schema by stores opening at the same time.
func migrateLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("setpoint/migrate/" + schema))
	return int64(h.Sum64())
}

// migrate creates schema if missing and brings it to the newest version,
// one transaction per step, each under a transaction-scoped advisory lock,
// so two stores opening a fresh schema at once apply each step once. A
// schema newer than this binary is an error.
func migrate(ctx context.Context, conn *pgx.Conn, schema string) error {
	for {
		done, err := migrateStep(ctx, conn, schema)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next migration, if any, and reports whether the
// schema is up to date.
func migrateStep(ctx context.Context, conn *pgx.Conn, schema string) (done bool, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey(schema)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// CREATE SCHEMA needs the CREATE privilege even when the schema
		// exists, so look first.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return fmt.Errorf("look up schema: %w", err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`)
		}
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		switch {
		case version > len(migrations):
			return fmt.Errorf("schema version %d is newer than this binary supports (%d)", version, len(migrations))
		case version == len(migrations):
			done = true
			return nil
		}
		if _, err := tx.Exec(ctx, migrations[version]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", version+1, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, version+1); err != nil {
			return fmt.Errorf("migrate to version %d: record version: %w", version+1, err)
		}
		return nil
	})
	return done, err
}
