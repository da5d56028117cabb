// Package feed is the one change-feed reader of a process: it tails the
// store's change log in revision order and fans every event out to watchers.
//
// API CONTRACT (skeleton written by the lead; the feed owner fills it in and
// may add to it, but must not change these signatures without telling the
// registry and apiserver owners):
//
//   - New(store, opts) builds a Feed; Run(ctx) is the reader loop (one
//     goroutine, owned by the caller; Close stops it and waits).
//   - Revision() is the highest revision the feed has read and dispatched.
//   - WaitForRevision(ctx, rev) blocks until Revision() >= rev (used for
//     consistent reads and to make CRD registration visible at once).
//   - Watch(opts) registers a watcher that receives every event with revision
//     > opts.After that matches opts, in revision order, exactly once. A slow
//     watcher never blocks the reader or other watchers: when its bounded
//     buffer fills it is moved to catch-up and replays from the store's change
//     log; only if it falls behind compaction is it ended with ErrCompacted
//     (the apiserver turns that into a 410 Expired ERROR event).
//   - Label-selector transitions follow Kubernetes: an object that stops
//     matching is delivered as Deleted (with its new state), one that starts
//     matching as Added.
package feed

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/storage"
)

// Options tunes a Feed. Zero values take the documented defaults.
type Options struct {
	// WatcherBuffer is each watcher's channel capacity. Default 1024.
	WatcherBuffer int
	// BatchSize is how many log events one read asks the store for. Default 1024.
	BatchSize int
	// ProgressInterval is how often an idle watcher gets a Progress event
	// carrying the feed's revision (used for watch bookmarks). Default 1s.
	ProgressInterval time.Duration
	// Now returns the current time; tests may replace it. Default time.Now.
	Now func() time.Time
}

// Feed reads the change log once and fans events out to watchers.
type Feed struct{}

// New returns a Feed reading from store. It does not start reading until Run.
func New(store storage.Store, opts Options) *Feed { panic("unimplemented") }

// Run reads the change log until ctx ends or Close is called.
func (f *Feed) Run(ctx context.Context) error { panic("unimplemented") }

// Close stops Run and every watcher and waits for them.
func (f *Feed) Close() error { panic("unimplemented") }

// Revision returns the highest revision read and dispatched so far.
func (f *Feed) Revision() int64 { panic("unimplemented") }

// WaitForRevision blocks until the feed has dispatched rev, or ctx ends.
func (f *Feed) WaitForRevision(ctx context.Context, rev int64) error { panic("unimplemented") }

// WatchOptions selects the events a watcher receives.
type WatchOptions struct {
	// Resource is required (storage.Key.Resource).
	Resource string
	// Namespace and Name restrict events when not empty.
	Namespace string
	Name      string
	// Labels filters on labels; nil selects all.
	Labels labels.Selector
	// After: deliver events with revision > After. It must not be below the
	// store's compacted revision (ErrCompacted) nor above the store's current
	// revision (storage.ErrFutureRevision is fine to return then).
	After int64
}

// EventType extends storage.EventType with Progress.
type EventType = storage.EventType

// Progress is delivered to an idle watcher: no matching event exists up to
// Event.Revision. The apiserver turns it into a BOOKMARK.
const Progress storage.EventType = 100

// Event is what a watcher receives. Events are shared between watchers and
// must be treated as read-only.
type Event struct {
	Type EventType
	// Revision of the change (or the progress revision).
	Revision int64
	// Object is the state to send: the new state, or for Deleted the last
	// state. Zero for Progress.
	Object storage.Object
	// Cache lets the apiserver encode the event once for all watchers that
	// share it. The feed never reads it.
	Cache EncodeCache
}

// Watcher receives events; see Feed.Watch.
type Watcher struct{}

// Watch registers a watcher. The caller must call Stop.
func (f *Feed) Watch(opts WatchOptions) (*Watcher, error) { panic("unimplemented") }

// Events delivers the events. It is closed when the watcher ends; Err then
// says why (nil after Stop, ErrCompacted when it fell behind compaction).
func (w *Watcher) Events() <-chan *Event { panic("unimplemented") }

// Err reports why Events was closed.
func (w *Watcher) Err() error { panic("unimplemented") }

// Stop ends the watcher and releases it. It is safe to call more than once.
func (w *Watcher) Stop() { panic("unimplemented") }

// EncodeCache holds one encoding of an event, computed once.
type EncodeCache struct{}

// Get returns the cached encoding, computing it with encode on first use.
// Safe for concurrent use.
func (c *EncodeCache) Get(encode func() ([]byte, error)) ([]byte, error) {
	panic("unimplemented")
}
