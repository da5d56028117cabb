package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema steps in order; migrations[i] brings the schema
// from version i to version i+1. Append new steps, never edit old ones.
var migrations = []string{
	// 1: objects, label index, change log, revision counters.
	`CREATE TABLE objects (
		resource  TEXT NOT NULL,
		namespace TEXT NOT NULL,
		name      TEXT NOT NULL,
		revision  INTEGER NOT NULL,
		labels    BLOB,
		value     BLOB,
		PRIMARY KEY (resource, namespace, name)
	);
	CREATE TABLE labels (
		resource  TEXT NOT NULL,
		key       TEXT NOT NULL,
		value     TEXT NOT NULL,
		namespace TEXT NOT NULL,
		name      TEXT NOT NULL,
		PRIMARY KEY (resource, key, value, namespace, name)
	) WITHOUT ROWID;
	CREATE TABLE log (
		revision      INTEGER PRIMARY KEY,
		type          INTEGER NOT NULL,
		resource      TEXT NOT NULL,
		namespace     TEXT NOT NULL,
		name          TEXT NOT NULL,
		labels        BLOB,
		value         BLOB,
		prev_revision INTEGER,
		prev_labels   BLOB,
		prev_value    BLOB
	);
	CREATE TABLE meta (
		id        INTEGER PRIMARY KEY CHECK (id = 1),
		revision  INTEGER NOT NULL,
		compacted INTEGER NOT NULL
	);
	INSERT INTO meta (id, revision, compacted) VALUES (1, 0, 0);`,
}

// migrate brings the database at db to the newest schema version, one
// transaction per step. A database newer than this binary is an error.
func migrate(ctx context.Context, db *sql.Conn) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var version int
	err := db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version)
	switch {
	case err == sql.ErrNoRows:
		if _, err := db.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("init schema_version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary supports (%d)", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if err := migrateStep(ctx, db, v); err != nil {
			return err
		}
	}
	return nil
}

// migrateStep applies migrations[from] and records version from+1 atomically.
func migrateStep(ctx context.Context, db *sql.Conn, from int) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate to version %d: begin: %w", from+1, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, migrations[from]); err != nil {
		return fmt.Errorf("migrate to version %d: %w", from+1, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, from+1); err != nil {
		return fmt.Errorf("migrate to version %d: record version: %w", from+1, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate to version %d: commit: %w", from+1, err)
	}
	return nil
}
