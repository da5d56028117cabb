// Package forward makes the API-server replicas on one PostgreSQL schema
// send their writes to one elected replica, the writer, which commits
// them with its own in one group commit.
//
// # Why
//
// Every PostgreSQL store commits its batches under the schema's revision
// lock, held through the commit's WAL flush (see package postgres), so the
// batches of all replicas commit one flush after another and each batch
// holds only its own replica's queued writes. Clients spread over N
// replicas thus commit about 1/N as many writes per flush as the same
// clients on one replica. Sending every write to one replica restores
// the big batches.
//
// # Election
//
// Store wraps a *postgres.Store. Each replica campaigns with
// postgres.Election: the holder of a session-level advisory lock is the
// writer and publishes in the database its peer address, a random bearer
// token and the certificate of its peer listener, all new each term (the
// certificate is a self-signed ECDSA one made for the term). Standbys try
// the lock every RetryPeriod, and at once when a send fails, so a writer
// that is killed (its session ends, freeing the lock) or closed (it
// resigns) is replaced within about one RetryPeriod. Until then writes
// commit locally.
//
// The database is the root of trust: a peer trusts only the certificate
// the record names, and the writer accepts only the term's token.
// Whoever can write the record could already write every object; whoever
// can read it learns the token, and so can write through the writer.
//
// # Writes
//
// Reads, Changes, Notify and compaction go to the local store. Create,
// Update and Delete of a replica that is not the writer are queued, like
// a store's writes (opqueue): a few sender goroutines each take every
// write queued, up to Options.MaxBatch and Options.MaxRequestBytes, into
// one request to the writer (HTTP/1.1 over TLS, kept alive), which hands
// each op to its local store concurrently, so all join its group commit,
// and answers each op's result. Errors come back matching the same storage sentinels
// (errors.Is) with the same messages; a writer's storage.ErrClosed
// arrives as storage.ErrUnavailable, as this store is not closed. Each
// op carries the time its caller's deadline leaves.
//
// Correctness never depends on the election: every store commits in
// revision order whoever writes (the revision lock orders all commits),
// so a write may go either way. Hence:
//
//   - a write that was never sent (no writer known, connection refused,
//     the peer's certificate not the one published, the writer refusing
//     the request as a whole: not the writer any more, stale token) is
//     committed by the local store, and the writer's record is read
//     again;
//   - a write sent whose answer was lost has an unknown outcome: it fails
//     with an error matching storage.ErrUnavailable that says so, as a
//     commit whose answer the database lost does, and is never retried;
//   - a caller whose context ends while its write is still queued gets
//     the context's error and the write is not sent; once sent, the
//     caller waits for the outcome, as with a local store.
//
// The writer's own writes go to its local store directly. At Close a
// writer resigns first (standbys take over at their next attempt),
// refuses new requests, finishes those in flight and then closes its
// store.
package forward
