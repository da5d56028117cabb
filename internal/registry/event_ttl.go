package registry

import (
	"context"
	"time"

	"github.com/setpoint/setpoint/internal/storage"
)

// eventExpiryInterval is how often expired Events are looked for.
const eventExpiryInterval = time.Minute

// eventExpiryPage bounds the Events read at once while expiring.
const eventExpiryPage = 500

// expireEventsLoop deletes Events older than the TTL every
// eventExpiryInterval until ctx ends.
func (r *Registry) expireEventsLoop(ctx context.Context) {
	t := time.NewTicker(eventExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = r.expireEvents(ctx)
		}
	}
}

// expireEvents deletes every Event last observed more than the TTL ago,
// as Kubernetes lets Events expire (--event-ttl). An Event written again
// since it was read is left for the next pass.
func (r *Registry) expireEvents(ctx context.Context) error {
	cutoff := r.now().Add(-r.eventTTL)
	opts := storage.ListOptions{Resource: eventsStorageKey, Limit: eventExpiryPage}
	for {
		page, err := r.store.List(ctx, opts)
		if err != nil {
			return err
		}
		for _, o := range page.Objects {
			m, err := decodeValue(o.Value)
			if err != nil || !eventLastSeen(m).Before(cutoff) {
				continue
			}
			if _, err := r.store.Delete(ctx, o.Key, storage.Precondition{Revision: o.Revision}); err != nil {
				if err := ignoreNotFound(ignoreConflict(err)); err != nil {
					return err
				}
			}
		}
		if !page.More || len(page.Objects) == 0 {
			return nil
		}
		opts.Revision = page.Revision
		opts.After = &page.Objects[len(page.Objects)-1].Key
	}
}

// eventLastSeen is when a stored (core v1) Event was last observed: the
// latest of its creation, lastTimestamp, eventTime and series'
// lastObservedTime.
func eventLastSeen(m map[string]any) time.Time {
	var last time.Time
	for _, s := range []string{
		metaString(m, "creationTimestamp"),
		fieldValue(m, []string{"lastTimestamp"}),
		fieldValue(m, []string{"eventTime"}),
		fieldValue(m, []string{"series", "lastObservedTime"}),
	} {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.After(last) {
			last = t
		}
	}
	return last
}
