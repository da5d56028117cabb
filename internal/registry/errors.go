package registry

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/storage"
)

const (
	reasonAlreadyExists = metav1.StatusReasonAlreadyExists
	// conflictMessage is Kubernetes' text for a stale resourceVersion.
	conflictMessage = "the object has been modified; please apply your changes to the latest version and try again"
)

func (res *Resource) groupResource() schema.GroupResource {
	return schema.GroupResource{Group: res.Group, Resource: res.Resource}
}

func (res *Resource) groupKind() schema.GroupKind {
	return schema.GroupKind{Group: res.Group, Kind: res.Kind}
}

func (res *Resource) apiVersion() string {
	return schema.GroupVersion{Group: res.Group, Version: res.Version}.String()
}

// storageAPIVersion is the apiVersion objects of res are stored with.
func (res *Resource) storageAPIVersion() string {
	return res.StorageGroupVersion().String()
}

// StorageGroupVersion is the group and version objects of res are stored
// in: the storage version of res's group, or another group's for a
// resource stored in another form (events.k8s.io Events are core Events).
func (res *Resource) StorageGroupVersion() schema.GroupVersion {
	if res.conv != nil {
		gv, _ := schema.ParseGroupVersion(res.conv.storedAPIVersion)
		return gv
	}
	v := res.StorageVersion
	if v == "" {
		v = res.Version
	}
	return schema.GroupVersion{Group: res.Group, Version: v}
}

// storageError turns a storage error into the StatusError Kubernetes would
// answer for a request on res/name. It is the one place storage errors are
// mapped.
func storageError(err error, res *Resource, name string) error {
	var se *apierrors.StatusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(res.groupResource(), name)
	case errors.Is(err, storage.ErrExists):
		return apierrors.NewAlreadyExists(res.groupResource(), name)
	case errors.Is(err, storage.ErrConflict):
		return apierrors.NewConflict(res.groupResource(), name, errors.New(conflictMessage))
	case errors.Is(err, storage.ErrCompacted):
		return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %v", err))
	case errors.Is(err, storage.ErrFutureRevision):
		return apierrors.NewTimeoutError("Too large resource version", 1)
	case errors.Is(err, context.DeadlineExceeded):
		// Before ErrUnavailable: a store may report a call its deadline
		// ended as both, and the request ran out of time.
		return apierrors.NewTimeoutError(err.Error(), 1)
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, storage.ErrClosed), errors.Is(err, feed.ErrClosed):
		return unavailable(err)
	case errors.Is(err, storage.ErrInvalid):
		return apierrors.NewBadRequest(err.Error())
	case errors.Is(err, context.Canceled):
		return apierrors.NewServiceUnavailable("request canceled")
	}
	return apierrors.NewInternalError(err)
}

// retryAfterUnavailable is the Retry-After, in seconds, of a 503 caused by
// storage that cannot be reached: long enough not to hammer a database
// coming back, short enough for clients to recover quickly.
const retryAfterUnavailable = 1

// unavailable is the 503 answer, with Retry-After, for storage that cannot
// be reached or is closing.
func unavailable(err error) error {
	e := apierrors.NewServiceUnavailable(fmt.Sprintf("storage is unavailable, retry later: %v", err))
	e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: retryAfterUnavailable}
	return e
}

// isReason reports whether err is a StatusError with reason.
func isReason(err error, reason metav1.StatusReason) bool {
	return apierrors.ReasonForError(err) == reason
}
