// Package controller runs reconcilers: level-triggered functions that make the
// world match the objects stored in Setpoint.
//
// A Reconciler receives a Request naming one object and returns a Result. The
// Controller calls it from a work queue fed by informers, so a key is never
// reconciled by two workers at once, keys changed many times while waiting are
// reconciled once, and failures are retried with per-key exponential backoff:
//
//   - an error retries the key with backoff, unless it is wrapped with
//     TerminalError;
//   - Result.RequeueAfter reconciles the key again after that delay;
//   - Result.Requeue retries the key with backoff;
//   - a panic in the reconciler is recovered, logged and retried with backoff.
//
// The Builder wires a Controller to its informers: For names the kind the
// controller reconciles, Owns maps children to the owner named by their
// controller owner reference, and Watches maps any other object to requests.
//
// A Manager runs informers and controllers until its context ends, optionally
// only while it holds a coordination.k8s.io/v1 Lease, written the way
// client-go's leaderelection package writes it, so Setpoint managers and
// client-go based controllers can share one lease.
//
// Instead of electing one leader, replicas can share the keys: set
// Options.Shard to a pkg/shard Member and run the Member in the Manager. The
// controller then reconciles only the keys the member owns, dropping others
// as it dequeues them, and enqueues its newly owned keys from the For
// informer's cache whenever the membership changes.
package controller
