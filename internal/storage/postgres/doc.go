// Package postgres implements storage.Store in one schema of a PostgreSQL
// database (jackc/pgx, no database/sql). Any number of Stores, in one
// process or in several API-server replicas, may share the schema; the
// schema is the search_path of the URL given to Open.
//
// # Schema
//
// Migrations are an ordered list of SQL steps (schema.go); schema_version
// records how many have run. Open applies the missing ones, each in its own
// transaction under a transaction-scoped advisory lock derived from the
// schema name, so replicas starting together apply each step once, and it
// refuses a schema newer than the binary.
//
//   - objects(resource, namespace, name, revision, labels, value): the
//     current state; primary key (resource, namespace, name), text in the
//     "C" collation, so keys order by bytes as in Go. value is bytea, so a
//     value comes back byte for byte; labels is jsonb ("{}" for none).
//   - log(revision, type, resource, namespace, name, labels, value,
//     prev_revision, prev_labels, prev_value): one row per committed write;
//     a delete stores only the previous state.
//   - meta(revision, compacted): one row, the last committed revision and
//     the compacted revision.
//   - writer(pid, address, token, cert): at most one row, what the
//     elected writer replica publishes for its peers (election.go).
//
// # Commit-ordered revisions
//
// A sequence hands out numbers when a transaction asks, not when it
// commits, so a reader of "revision > N" could pass a number whose
// transaction commits later. Here the revision counter is the meta row and
// a write transaction takes it as late as possible: each Store's writer
// goroutine collects the queued writes (group commit, up to
// Options.MaxBatch) and runs them in one transaction:
//
//  1. BEGIN and lock the objects rows of the keys the batch updates or
//     deletes (SELECT ... FOR UPDATE in key order, so batches never
//     deadlock);
//  2. take the revision lock (SELECT revision FROM meta FOR UPDATE) and
//     look up which keys to create exist;
//  3. decide each op in Go (exists, not found and conflict fail alone and
//     take no revision; an op on a key an earlier op of the batch wrote
//     waits for the next batch), then send the objects and log rows
//     (multi-row statements over arrays, revisions numbered from the meta
//     row read in the transaction), UPDATE meta, pg_notify and COMMIT in
//     one pipeline.
//
// Steps 1 and 2 are one round trip when the batch only creates. A batch
// of creates is first tried as one statement between BEGIN and COMMIT,
// sent in one round trip: it takes the revision lock by adding the
// batch's revisions to meta (UPDATE ... RETURNING, which in READ
// COMMITTED sees the latest committed revision once it has the lock) and
// numbers the objects and log rows from what it returns, the values sent
// once for both tables. Its INSERT fails, and nothing is committed, if a
// key exists; the batch is then rerun as above.
//
// The meta row's lock is held until the transaction has committed and
// become visible, so the next batch of any replica reads the counter only
// after this one's revisions are visible: revision order is commit order.
// A reader's snapshot therefore always holds a gapless prefix of the
// revisions, and the change feed, reading "revision > last", can never
// pass a revision that becomes visible later. Objects are written only
// under that lock, so what step 2 sees cannot change before COMMIT.
//
// Deadlocks and serialization failures roll the batch back and rerun it,
// and so does a lost connection, reopened, before COMMIT was sent. If the
// connection fails after COMMIT was sent and before its answer (or the
// session is terminated, which PostgreSQL may report after the commit is
// durable), the writer reconnects and asks pg_xact_status about the
// transaction id it read first: committed answers the ops with success,
// aborted reruns the batch. Only if that cannot be learned within
// Options.ConnectTimeout do the ops fail with storage.ErrUnavailable
// saying the outcome is unknown, never success. A write returns only
// after COMMIT, with the server's synchronous_commit.
//
// The lock is held for at most one round trip (none for a batch of new
// keys, whose pipeline is already sent) and the commit's WAL flush, so
// replicas' batches commit one after another; each replica
// still groups its own writers' ops, but spreading the same clients over
// more replicas makes each batch smaller (see Benchmarks).
//
// # Reads
//
// Reads use a pool (Options.MaxConns). A list at the latest revision reads
// meta and the objects in one pipelined REPEATABLE READ transaction, one
// snapshot. A list at an older revision R (a later page of a paginated
// list) rebuilds the state at R: objects rows with revision <= R have not
// changed since R, and every key written after R has log rows after R
// (the log is complete above the compacted revision, which is why R must
// not be below it), the first of which holds the key's state at R in its
// prev_* columns, or nothing if it created the key. Both parts are merged
// in key order and filtered; only the values of the page are read from
// the log. Changes reads the log after a revision together with the
// compacted revision in one statement (and the compacted revision again
// when the log had nothing newer). Returned slices belong to the caller;
// a list's values come from pooled chunks, which ListResult.Release gives
// back.
//
// # Label index
//
// Selectors are answered from two GIN indexes on objects.labels: =, ==
// and in become labels @> ANY($docs), served by jsonb_path_ops
// (objects_label_pairs, migration 2), exists labels ? $key, served by
// jsonb_ops (objects_labels), and the negations their NOT, so a page's
// LIMIT is exact; > and < are narrowed to labels ? $key and checked again
// in Go, as is the whole selector unless the SQL selects exactly what it
// does and the caller set ListOptions.OmitLabels (then labels are not
// even read). First chosen by measurement over a label table like the
// SQLite backend's: with 1,000,000 objects of about 1 KiB in one resource
// and a selector matching 1% (10,000 objects), EXPLAIN ANALYZE execution
// times on the shared 2-core machine (median of 3, no parallel workers,
// work_mem 16MB): GIN jsonb_ops 93 ms, GIN jsonb_path_ops 111 ms, label
// table joined to objects 180 ms; the label table also costs a row per
// label on every write. Those times were mostly the heap pages' reads
// from the OS cache. With the pages in shared buffers, the bitmap itself
// is what differs: jsonb_ops keeps a label's key and value as separate
// entries, so @> intersects the postings of the key (every object
// labelled bucket) with the value's, 8-12 ms; jsonb_path_ops keeps one
// hashed entry per key and value, 0.7 ms (whole query 7-12 against 15-30
// ms, load average 8-20). jsonb_path_ops cannot answer exists, hence both
// (TestSelectorPlans checks which one each requirement uses).
//
// The 10,000 matches sit on 10,000 heap pages, one each, whatever the
// row width, so a table layout with narrower rows (compressed values)
// would not lower the pages read; it would only let more of the table
// stay in shared buffers, which at 1.5 GB against 128 MB it does not
// anyway, and values moved out of line would add TOAST reads. The planner
// chooses no parallel bitmap heap scan for this query, even with
// parallel_setup_cost and parallel_tuple_cost at 0; on two cores, with
// the API server decoding rows meanwhile, forcing one was not tried.
//
// A page of an indexed selector is filtered in a subquery, then top-N
// sorted, never by walking the primary key (see currentQuery); list
// transactions set work_mem to Options.ListWorkMem. A whole list is
// sorted in Go, not in the server (which cost 40 ms more there for
// 10,000 rows of 1.4 KiB); its rows are read from pgx's buffer, the
// values copied into shared 256 KiB chunks, so a row costs few
// allocations (see readCurrent).
//
// # Maintenance
//
// The planner needs statistics to use the GIN index, and compaction leaves
// dead log rows, but autovacuum may be off. After Open and each Compact
// the store checks pg_stat_user_tables in the background and runs ANALYZE
// or VACUUM (ANALYZE) on objects and log when their counters pass
// thresholds looser than autovacuum's, one replica at a time under a
// try-locked advisory lock (maintenance.go).
//
// # Benchmarks
//
// postgres_bench_test.go runs storagetest's benchmarks against the
// PostgreSQL at SETPOINT_TEST_POSTGRES; BenchmarkListSelector1M keeps its
// 1,000,000 objects in the schema bench_1m between runs. Medians of 3 on
// the shared 2-core machine, with other teams' builds and tests keeping
// its load average at 15-19 (fdatasync took 3.5 ms; quieter moments gave
// up to twice these rates):
//
//	Create, 1 goroutine                   88 creates/s
//	Create, 32 goroutines               2,060 creates/s
//	Create, 32 goroutines on 3 stores     950 creates/s
//	Update, 32 goroutines               2,320 updates/s
//	Get                                   139 µs
//	Changes, last 32 of 1,000 objects     1.6 ms
//	List 1% of 10,000 (selector)           18 ms
//	List 1% of 1,000,000 (selector)       348 ms (104-120 ms at load 10)
//	List all 10,000, one page             323 ms
//
// Spreading the same 32 clients over three stores lowers the total, as
// the revision lock makes the replicas' commits take turns (see above).
//
// BenchmarkListSelector1M and ...1MPage (first page of 500; the matches
// sit in one namespace of ten) before and after the page subquery and
// work_mem, medians of 3 at load 6-9, everything in shared buffers: all
// 10,000 133 and 150 ms (the same plan: a GIN bitmap, then 10,000 heap
// pages), first page 6.1 s (primary key walk over 700,000 rows) and 95 ms.
// Before and after the jsonb_path_ops index and the list's reading from
// pgx's buffer, run interleaved, 3 runs of 5 each at load average 23 (so
// single runs vary by ±50%): all 10,000 137 (106-184) and 143 (101-152)
// ms, 23.4 and 18.3 MB and 120,000 and 70,000 allocations per list (this
// benchmark reads labels); first page 88 (49-328) and 54 (44-58) ms. On
// this host the store's side of the whole list is what PostgreSQL takes
// to send 14 MB; the API server's CPU is where the list got faster (see
// bench/README.md).
//
// The write path, measured later at load average 3.5-6 (medians of 7,
// the old and new code run interleaved; single runs vary by ±30%):
// batches of 32 goroutines on one store hold about 23 ops, on three
// stores about 7 each; Go spends about 13% of the wall time on CPU, the
// rest waits for the server, mostly for the commit's flush under the
// revision lock. Writing a batch of creates in one statement instead of
// five after SELECT ... FOR UPDATE took, in creates/s:
//
//	                        five statements  one statement
//	1 goroutine                   1,043          1,314
//	32 goroutines                 9,710         10,749
//	32 goroutines on 3 stores     4,312          5,087
//
// Tried and dropped, as no faster: one statement for every batch (its
// generic parts slowed creates: 9,478 and 3,405), taking the lock first
// and then every create queued meanwhile when another store held it
// (batches on 3 stores grew to the most possible, about 10.7, but the
// extra round trips under the lock cost as much: 3,865 against 3,929),
// two writers per store (4,375 against 6,261 on one store) and yielding
// until no more ops arrive (batches of 25 instead of 23, not faster).
//
// Several replicas can only lower the total: each batch holds the
// revision lock through its commit's WAL flush, so the batches of all
// replicas commit one flush after another, and a batch holds only its
// own replica's queued ops. N replicas sharing C clients thus commit
// about C/N ops per flush where one replica commits up to C; keeping
// revision order equal to commit order without this would need
// revisions assigned after the flush, which PostgreSQL does not offer.
// Package forward therefore sends every replica's writes to one elected
// replica, whose store commits them in its batches.
//
// # Notify
//
// One connection per Store LISTENs on a channel named after the schema;
// every commit of any replica notifies it in its transaction. Each
// notification and each own commit signal Notify (coalesced). When the
// connection fails the listener reconnects with capped exponential backoff
// (Options.ReconnectBackoff) and signals once, as notifications may have
// been missed meanwhile.
//
// # Errors
//
// Errors are translated here: a database that is down, restarting, out of
// connections, full or read-only matches storage.ErrUnavailable; the
// server's statement and lock timeouts (Options.StatementTimeout,
// LockTimeout) match context.DeadlineExceeded, as do the caller's; text
// PostgreSQL cannot hold (NUL bytes, invalid UTF-8 in keys and labels)
// matches storage.ErrInvalid. Messages never contain the password.
package postgres
