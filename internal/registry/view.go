package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/storage"
)

// View is another package's copy of the objects of one resource, which
// the registry keeps current from the change feed as it does its own
// caches (internal/rbac keeps the RBAC objects this way). The registry
// calls its methods from one goroutine per view, never concurrently; the
// maps passed are the view's to keep and must not be modified by anyone
// else.
type View interface {
	// Reset replaces the whole copy with objs, every stored object as of
	// revision rev. It is called at Start, and again when the view's
	// watch fell behind compaction.
	Reset(objs []map[string]any, rev int64)
	// Apply records one change committed at rev: obj's new state, or
	// with deleted its last state before it was deleted.
	Apply(obj map[string]any, deleted bool, rev int64)
}

// Follow makes the registry keep v current with the objects of res:
// loaded at Start, then changed by every write the feed delivers, from any
// replica. A write of res through this registry returns once v applied
// it, so that (for RBAC) a revocation acknowledged to a client is in
// effect on this replica. Sync also waits for v, so a caller that finds its view missing
// something can call Sync and look again to see every write acknowledged
// before. Without a feed v only receives the load at Start. Follow must
// be called before Start.
func (r *Registry) Follow(res *Resource, v View) error {
	if res == nil || res.StorageKey == "" {
		return errors.New("registry: follow: a stored resource is required")
	}
	r.mirrors = append(r.mirrors, mirror{
		resource: res.StorageKey,
		view:     true,
		progress: r.newProgress(),
		reset: func(objs []storage.Object, rev int64) error {
			maps := make([]map[string]any, 0, len(objs))
			for _, o := range objs {
				m, err := decodeValue(o.Value)
				if err != nil {
					return fmt.Errorf("registry: load %s %s: %w", res.Resource, o.Name, err)
				}
				maps = append(maps, m)
			}
			v.Reset(maps, rev)
			return nil
		},
		apply: func(ev *feed.Event) {
			if ev.Type != storage.Added && ev.Type != storage.Modified && ev.Type != storage.Deleted {
				return
			}
			if m, err := decodeValue(ev.Object.Value); err == nil {
				v.Apply(m, ev.Type == storage.Deleted, ev.Revision)
			}
		},
	})
	return nil
}

// awaitViews waits until every view added by Follow for res has applied
// rev, a write of res this registry committed.
func (r *Registry) awaitViews(ctx context.Context, res *Resource, rev int64) error {
	for _, m := range r.mirrors {
		if !m.view || m.progress == nil || m.resource != res.StorageKey {
			continue
		}
		if err := m.progress.wait(ctx, rev); err != nil {
			return storageError(err, res, "")
		}
	}
	return nil
}
