package registry

import (
	"context"
	"sync"

	"github.com/setpoint/setpoint/internal/feed"
)

// Consistent reads from the registry's caches.
//
// The served resources (from CRDs) and the namespace cache are fed by this
// process's change feed, so with several replicas on one database a
// client can write a CRD through replica A and ask replica B for the new
// resource before B's feed has read the CRD. As Kubernetes' consistent
// reads from cache do, a reader that finds nothing in a cache calls Sync:
// it reads the store's current revision once, waits for the feed to reach
// it and for every cache to apply what the feed delivered up to it, and
// then looks again. A write acknowledged before Sync started is then
// visible.

// Sync waits until the registry's caches (served resources, discovery,
// namespaces, and the views added by Follow) reflect every write committed before the call, on any
// replica, or ctx ends. It costs one CurrentRevision read of the store
// and, when this replica's feed is behind, the time the feed takes to
// catch up. Errors are StatusErrors: 503 when the store cannot be reached,
// 504 when ctx ends first. Without a feed the caches only hold this
// process's writes and Sync returns at once.
func (r *Registry) Sync(ctx context.Context) error {
	if r.feed == nil {
		return nil
	}
	rev, err := r.store.CurrentRevision(ctx)
	if err != nil {
		return storageError(err, &Resource{}, "")
	}
	if err := r.feed.WaitForRevision(ctx, rev); err != nil {
		return storageError(err, &Resource{}, "")
	}
	for _, m := range r.mirrors {
		if m.progress == nil {
			continue
		}
		if err := m.progress.wait(ctx, rev); err != nil {
			return storageError(err, &Resource{}, "")
		}
	}
	return nil
}

// mirrorProgress records how far one mirror has applied the feed: every
// event up to pos is in its cache.
type mirrorProgress struct {
	mu  sync.Mutex
	pos int64
	// w is the mirror's current watcher, asked for progress events by
	// wait; nil before the first load.
	w *feed.Watcher
	// advanced is closed and replaced whenever pos grows or w changes.
	advanced chan struct{}
}

func newMirrorProgress() *mirrorProgress {
	return &mirrorProgress{advanced: make(chan struct{})}
}

// reset records a load of the mirror at rev, followed by w.
func (p *mirrorProgress) reset(rev int64, w *feed.Watcher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w = w
	p.pos = max(p.pos, rev)
	p.signalLocked()
}

// applied records that the mirror applied every event up to rev.
func (p *mirrorProgress) applied(rev int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rev > p.pos {
		p.pos = rev
		p.signalLocked()
	}
}

func (p *mirrorProgress) signalLocked() {
	close(p.advanced)
	p.advanced = make(chan struct{})
}

// wait returns once the mirror applied every event up to rev, which the
// feed has already dispatched. A mirror whose resource had no event since
// rev learns that it is current from a progress event, which its watcher
// is asked for.
func (p *mirrorProgress) wait(ctx context.Context, rev int64) error {
	for {
		p.mu.Lock()
		pos, w, advanced := p.pos, p.w, p.advanced
		p.mu.Unlock()
		if pos >= rev {
			return nil
		}
		if w != nil {
			w.RequestProgress()
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
