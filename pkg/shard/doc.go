// Package shard splits the keys of one controller among its replicas.
//
// Each replica runs a Member, which holds a coordination.k8s.io/v1 Lease
// named "<name>-shard-<identity>" as its membership, renewed every
// RenewPeriod. A member is live while this replica has seen its Lease change
// within the Lease's leaseDurationSeconds, on this replica's own clock, as
// client-go's leader election judges a leader; clocks are never compared
// across machines. A view is the sorted set of live members; keys are
// assigned to the members of a view by rendezvous hashing (see Owner and
// Score), so a join or a leave moves only the keys that must move.
//
// Handoff: no key is reconciled by two replicas at once. Each member
// publishes in its Lease (annotation shard.setpoint.dev/drained) the hash
// of the last view it has drained to: it has stopped starting keys it does
// not own in that view, and every reconcile of such a key it had started
// has ended. A member starts keys only under an active view, one that every
// member of it has published; until its current view is active it starts
// only keys it owns in the active view and in every view it has seen since.
// So a key's old owner has stopped before the new owner starts it. A member
// that cannot renew its Lease within RenewDeadline (shorter than
// LeaseDuration) stops starting keys at once and Run returns ErrLost, so by
// the time the others treat it as dead, LeaseDuration after they last saw
// it renew, it has stopped; its keys move to the others within about one
// LeaseDuration plus two RenewPeriods. On a clean shutdown a member stops,
// waits for its reconciles to end and deletes its Lease, so its keys move at
// the others' next renewal. The Lease of a replica killed without leaving is
// deleted by the others once it has been unchanged for ten LeaseDurations.
//
// A reconcile still running when its replica loses its Lease is the one
// gap, as with leader election: reconcilers should return soon after their
// context ends, well within LeaseDuration minus RenewDeadline.
//
// Use it from pkg/controller by setting controller.Options.Shard.
package shard
