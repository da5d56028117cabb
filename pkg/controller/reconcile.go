package controller

import (
	"context"
	"errors"
	"time"
)

// Request names the object to reconcile. Namespace is empty for
// cluster-scoped objects.
type Request struct {
	Namespace, Name string
}

// String returns "namespace/name", or "name" for a cluster-scoped object.
func (r Request) String() string {
	if r.Namespace == "" {
		return r.Name
	}
	return r.Namespace + "/" + r.Name
}

// Result tells the controller what to do with a request after a successful
// reconcile. The zero Result forgets the key until its object changes again.
type Result struct {
	// Requeue retries the key with per-key exponential backoff.
	Requeue bool
	// RequeueAfter, when positive, reconciles the key again after this delay
	// and resets its backoff. It takes precedence over Requeue.
	RequeueAfter time.Duration
}

// Reconciler makes the world match the object a Request names. It must be
// idempotent: it is called again for the same key whenever the object, or
// anything mapped to it, changes.
type Reconciler interface {
	// Reconcile converges the object named by req. A non-nil error retries
	// the key with backoff, unless the error is a TerminalError. ctx ends
	// when the controller stops.
	Reconcile(ctx context.Context, req Request) (Result, error)
}

// ReconcilerFunc adapts a function to a Reconciler.
type ReconcilerFunc func(ctx context.Context, req Request) (Result, error)

// Reconcile calls f(ctx, req).
func (f ReconcilerFunc) Reconcile(ctx context.Context, req Request) (Result, error) {
	return f(ctx, req)
}

// TerminalError wraps err so that the controller logs it and does not retry
// the key: retrying cannot help until the object changes. errors.Is and
// errors.As see through it to err.
func TerminalError(err error) error {
	return &terminalError{err: err}
}

type terminalError struct{ err error }

func (e *terminalError) Error() string {
	if e.err == nil {
		return "terminal error"
	}
	return "terminal error: " + e.err.Error()
}

func (e *terminalError) Unwrap() error { return e.err }

// isTerminal reports whether err, or an error it wraps, is a TerminalError.
func isTerminal(err error) bool {
	var t *terminalError
	return errors.As(err, &t)
}
