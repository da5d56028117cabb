package client

import (
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Errors the client reports before sending a request, or about an answer
// it will not read. Errors from the server are *apierrors.StatusError.
var (
	// ErrNoName is returned when a verb that acts on one object gets an
	// empty name.
	ErrNoName = errors.New("client: object name is empty")
	// ErrNoNamespace is returned when a verb that acts on one object of
	// a namespaced resource gets an empty namespace.
	ErrNoNamespace = errors.New("client: namespaced object needs a namespace")
	// ErrNilObject is returned when a write gets a nil object.
	ErrNilObject = errors.New("client: nil object")
	// ErrResponseTooLarge is returned when an answer, or one watch event,
	// is larger than the client reads.
	ErrResponseTooLarge = errors.New("client: response too large")
)

// IsNotFound reports whether err says the object does not exist (404).
func IsNotFound(err error) bool { return apierrors.IsNotFound(err) }

// IsConflict reports whether err says the write lost a race: a stale
// resourceVersion or a failed precondition (409 Conflict).
func IsConflict(err error) bool { return apierrors.IsConflict(err) }

// IsAlreadyExists reports whether err says a created object's name is
// taken (409 AlreadyExists).
func IsAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

// IsGone reports whether err says a resourceVersion is too old to watch
// or list from (410 Gone or Expired); relist to recover.
func IsGone(err error) bool { return apierrors.IsGone(err) || apierrors.IsResourceExpired(err) }

// IsInvalid reports whether err says the object failed validation (422).
func IsInvalid(err error) bool { return apierrors.IsInvalid(err) }
