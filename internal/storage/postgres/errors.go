package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setpoint/setpoint/internal/storage"
)

// SQLSTATE codes the store tells apart.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeQueryCanceled        = "57014" // statement_timeout
	codeLockNotAvailable     = "55P03" // lock_timeout
	codeReadOnly             = "25006"
	codeDiskFull             = "53100"
	codeOutOfMemory          = "53200"
	codeTooManyConnections   = "53300"
	codeAdminShutdown        = "57P01"
	codeCrashShutdown        = "57P02"
	codeCannotConnectNow     = "57P03" // the database is starting up
	codeBadEncoding          = "22021" // character_not_in_repertoire
	codeUntranslatable       = "22P05"
)

// sqlState returns the SQLSTATE of a server error in err's chain, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports whether a failed write transaction left nothing
// committed and may simply be run again.
func retryable(err error) bool {
	switch sqlState(err) {
	case codeSerializationFailure, codeDeadlockDetected:
		return true
	}
	return pgconn.SafeToRetry(err)
}

// unavailable reports whether err says the database cannot serve now
// (down, restarting, shutting connections, full, read-only) rather than
// that the request is wrong.
func unavailable(err error) bool {
	// A failed connection attempt is the database being away, whatever
	// the server said when it refused (such as 55000 for a database that
	// does not accept connections).
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	switch code := sqlState(err); {
	case code == "":
		// Not a server error: connection refused, reset, closed.
		return true
	case strings.HasPrefix(code, "08"), // connection exception
		strings.HasPrefix(code, "58"), // system error (I/O)
		strings.HasPrefix(code, "XX"), // internal error
		code == codeReadOnly, code == codeDiskFull, code == codeOutOfMemory, code == codeTooManyConnections,
		code == codeAdminShutdown, code == codeCrashShutdown, code == codeCannotConnectNow:
		return true
	}
	return false
}

// dbErr wraps an error from the database or the driver with what was being
// done, translated to the storage sentinels:
//   - a context's error stays in the chain, and so does
//     context.DeadlineExceeded for the server's statement and lock
//     timeouts, so the request ends as timed out;
//   - invalid text (NUL bytes, bad UTF-8) matches storage.ErrInvalid;
//   - an unreachable, restarting, full or read-only database matches
//     storage.ErrUnavailable.
//
// The message never contains the password.
func (s *Store) dbErr(what string, err error) error {
	var out error
	switch code := sqlState(err); {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		out = fmt.Errorf("postgres: %s: %w", what, err)
	case code == codeQueryCanceled || code == codeLockNotAvailable:
		out = fmt.Errorf("postgres: %s: database too slow: %w: %w", what, context.DeadlineExceeded, err)
	case code == codeBadEncoding || code == codeUntranslatable:
		out = fmt.Errorf("postgres: %s: %w: %w", what, storage.ErrInvalid, err)
	case unavailable(err):
		out = fmt.Errorf("postgres: %s: database unavailable: %w: %w", what, storage.ErrUnavailable, err)
	default:
		out = fmt.Errorf("postgres: %s: %w", what, err)
	}
	if s.password != "" && strings.Contains(out.Error(), s.password) {
		return redacted{out, s.password}
	}
	return out
}

// sessionEnded reports whether err says the server ended the session
// (terminated by an administrator, or the server shutting down or
// recovering from a crash). Such a server usually ended every session,
// including the pool's idle ones, which pgxpool pings only after a
// second idle.
func sessionEnded(err error) bool {
	code := sqlState(err)
	return code == codeAdminShutdown || code == codeCrashShutdown
}

// retryRead runs read, and once more on fresh connections if the pooled
// connection it used had its session ended by the server: a read changes
// nothing, so running it again is safe.
func (s *Store) retryRead(ctx context.Context, read func() error) error {
	err := read()
	if err == nil || ctx.Err() != nil || s.closed.Load() || !sessionEnded(err) {
		return err
	}
	s.pool.Reset()
	return read()
}

// readErr is dbErr for a read: once the store is closed, any failure is
// storage.ErrClosed.
func (s *Store) readErr(what string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: %s: %w", what, storage.ErrClosed)
	}
	return s.dbErr(what, err)
}

// redacted is an error whose message has a secret replaced; errors.Is and
// errors.As still see the whole chain.
type redacted struct {
	err    error
	secret string
}

func (r redacted) Error() string { return strings.ReplaceAll(r.err.Error(), r.secret, "xxxxx") }
func (r redacted) Unwrap() error { return r.err }
