// Package sqlite implements storage.Store on one SQLite database file
// (modernc.org/sqlite, pure Go), in WAL mode with synchronous=FULL: a write
// returns only after its transaction is committed and the WAL fsynced.
//
// # Schema
//
// Migrations are an ordered list of SQL steps (schema.go); schema_version
// records how many have run, each step runs in its own transaction at Open,
// and a database newer than the binary is refused.
//
//   - objects(resource, namespace, name, revision, labels, value): the
//     current state, primary key (resource, namespace, name), so lists scan
//     in key order. labels is the label map in a compact binary form
//     (labels.go), NULL if none.
//   - labels(resource, key, value, namespace, name): the label index, one row
//     per label of every object, primary key in that column order, so an
//     equality or set selector reads the matching keys already in
//     (namespace, name) order.
//   - log(revision, type, resource, namespace, name, labels, value,
//     prev_revision, prev_labels, prev_value): one row per committed write.
//     Deletes store no new value; their event is rebuilt from the previous
//     state. Compact deletes rows at or below a revision.
//   - meta(revision, compacted): the last committed revision and the
//     compacted revision. Because the counter lives here and not in the log
//     or objects, it never goes back, even when both are emptied.
//
// # Writes and group commit
//
// One writer goroutine owns the only writing connection. Create, Update,
// Delete and Compact queue an op and wait. The writer waits for the first
// op, yields once so that writers it just answered can queue their next op,
// takes every queued op (up to Options.MaxBatch), opens one IMMEDIATE
// transaction, applies the ops in order giving each successful one the next
// revision, updates meta and commits once, so the whole batch shares one
// fsync. An op that fails a check
// (exists, not found, conflict) is answered with its error, does not take a
// revision and does not disturb the rest of the batch; checks happen before
// any row is changed, so no savepoints are needed. A database error rolls
// the whole batch back and fails every op in it. Because only the writer
// assigns revisions, inside its transaction, revision order is commit order.
// After each commit the writer signals Notify without blocking.
//
// A caller whose context ends while its op is still queued gets the context
// error and the writer skips the op; once taken into a batch, the caller
// waits for the real outcome. The writer inserts the batch's log rows with a
// few multi-row statements just before it commits, as it never reads them.
//
// Since the writer keeps the revision counter in memory between batches,
// only one Store may have a database open: Open takes an flock on
// "<path>.lock", which the kernel releases if the process dies.
//
// Errors from the database itself (I/O, disk full, lock timeouts) match
// storage.ErrUnavailable as well as carrying the driver's error.
//
// # Reads and snapshot lists
//
// Reads use a small pool of query-only connections, which read the file
// through a memory map (Options.MmapSize); WAL lets them run while the
// writer commits. List and Changes run in one read transaction that
// first reads meta, so the revision they report matches the rows they read.
//
// A list at an older revision R (a later page of a paginated list) rebuilds
// the state at R from two parts. Rows of objects with revision <= R have not
// changed since R. Every key written after R has log rows after R (the log
// is complete above the compacted revision, which is why R must not be below
// it); the prev_* columns of its first log row after R are its state at R,
// or absent if that row created it. Both parts are merged in key order and
// filtered by the selector, After and Limit; only the past states that make
// the page have their values read from the log.
//
// A page after a key seeks the primary key to it (in a list of one
// namespace with "name > ?", which SQLite seeks, unlike a row value next to
// "namespace = ?"), so a later page costs what the first one does;
// TestListQueryPlans checks the query plans.
//
// # Changes from memory
//
// The change feed calls Changes right after each commit for the events it
// just made. The writer has those log rows in hand, so after COMMIT returns,
// before it answers callers or signals Notify, it appends them to a bounded
// ring (Options.ChangeCache events, Options.ChangeCacheBytes bytes) together
// with the revision and compacted revision of the commit. Changes answers
// from the ring when it holds every revision after the one asked for, and
// fails with storage.ErrCompacted below the ring's compacted revision, which
// a compaction updates in the same step as it trims the ring; otherwise it
// reads the log table as above. Both paths decode the same row values with
// the same code (logRow.event), and the ring's events get copies of the
// values, so a caller owns what it gets; the log row's value is the
// caller's copy made in Create and Update, not the slice they passed.
//
// Label selectors use the index for one positive requirement (=, ==, in, or
// else exists), as the outer loop of a join that looks each matching key up
// in objects, and check the whole selector in Go on the decoded labels; a
// selector without a positive requirement scans the resource.
package sqlite
