// Package feed is the one change-feed reader of a process: it tails the
// store's change log in revision order and fans every event out to watchers.
//
// Its contract:
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
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/storage"
)

// ErrClosed ends the watchers of a closed Feed (Watcher.Err) and is returned
// by Watch and WaitForRevision after Close.
var ErrClosed = errors.New("feed: closed")

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
	// PollInterval is how often Run reads the log without a notification,
	// in case one was missed. Default 1s.
	PollInterval time.Duration
	// CatchUpInterval is how often the catch-up goroutine retries watchers
	// whose buffer was full. Default 10ms.
	CatchUpInterval time.Duration
	// Logger hears when reading the log starts failing (the database is
	// away; Run retries at every notification and poll) and when it works
	// again. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.WatcherBuffer <= 0 {
		o.WatcherBuffer = 1024
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1024
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.CatchUpInterval <= 0 {
		o.CatchUpInterval = 10 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Feed reads the change log once and fans events out to watchers.
//
// The dispatch core is synchronous: Poll reads and dispatches one batch,
// CatchUp replays one batch to lagging watchers and Tick sends progress
// events. Run only wraps them in goroutines.
//
// Lock order: Feed.mu is the only lock taken by the core; Watcher.errMu is
// taken under it (never the other way round).
type Feed struct {
	store storage.Store
	opts  Options

	// rev mirrors revision for lock-free reads by Revision.
	rev atomic.Int64
	// kick wakes the catch-up goroutine (capacity 1, coalesced).
	kick chan struct{}
	// read wakes the reader (capacity 1, coalesced): a consistent read
	// waits for a revision the feed has not read, and a lost notification
	// must not make it wait for the poll interval.
	read chan struct{}
	// stop is closed by Close.
	stop      chan struct{}
	closeOnce sync.Once
	// running is done when Run has returned.
	running sync.WaitGroup

	// mu guards everything below, and every send on and close of a
	// watcher channel (so Stop never races a send).
	mu sync.Mutex
	// revision is the highest revision dispatched to synced watchers.
	revision int64
	// started is set once Run has read the store's current revision.
	started bool
	closed  bool
	// advanced is closed and replaced whenever revision grows.
	advanced chan struct{}
	// synced watchers have pos == revision and receive live events.
	synced map[*Watcher]struct{}
	// unsynced watchers replay from the log until they reach revision.
	unsynced map[*Watcher]struct{}
}

// New returns a Feed reading from store. It does not start reading until Run.
func New(store storage.Store, opts Options) *Feed {
	opts.defaults()
	return &Feed{
		store:    store,
		opts:     opts,
		kick:     make(chan struct{}, 1),
		read:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		advanced: make(chan struct{}),
		synced:   make(map[*Watcher]struct{}),
		unsynced: make(map[*Watcher]struct{}),
	}
}

// Start sets the feed's revision to the store's current revision, so that
// the feed does not replay history. Run calls it; tests driving the core
// step by step call it once first.
func (f *Feed) Start(ctx context.Context) error {
	cur, err := f.store.CurrentRevision(ctx)
	if err != nil {
		return fmt.Errorf("feed: read current revision: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.started = true
	if cur > f.revision {
		f.setRevisionLocked(cur)
		// Watchers registered before Start are behind now.
		for w := range f.synced {
			if w.pos < cur {
				delete(f.synced, w)
				f.unsynced[w] = struct{}{}
				f.wake()
			}
		}
	}
	return nil
}

// Run reads the change log until ctx ends or Close is called. It starts
// the catch-up goroutine and waits for it before returning. It returns nil
// after Close, ctx's error when ctx ends, and a storage error (such as
// storage.ErrClosed) that makes reading impossible.
func (f *Feed) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.running.Add(1)
	f.mu.Unlock()
	defer f.running.Done()

	// Goroutines started here end before Run returns: cancel runs first.
	var wg sync.WaitGroup
	defer wg.Wait()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		select {
		case <-f.stop:
			cancel()
		case <-rctx.Done():
		}
	})
	if err := f.Start(rctx); err != nil {
		return f.runErr(ctx, err)
	}
	wg.Go(func() { f.runCatchUp(rctx) })
	return f.runErr(ctx, f.runReader(rctx))
}

// runErr maps an error at the end of Run: nil after Close, then the
// caller's ctx error, then err.
func (f *Feed) runErr(ctx context.Context, err error) error {
	select {
	case <-f.stop:
		return nil
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// runReader waits for notifications (or the poll interval) and dispatches
// everything new.
func (f *Feed) runReader(ctx context.Context) error {
	notify := f.store.Notify()
	poll := time.NewTicker(f.opts.PollInterval)
	defer poll.Stop()
	failing := false
	for {
		for {
			n, err := f.Poll(ctx)
			if err != nil {
				if errors.Is(err, storage.ErrClosed) || ctx.Err() != nil {
					return err
				}
				if !failing {
					f.opts.Logger.Warn("change feed cannot read the log, retrying", "err", err)
					failing = true
				}
				break // transient: retry at the next notification or poll
			}
			if failing {
				f.opts.Logger.Info("change feed reads the log again", "revision", f.Revision())
				failing = false
			}
			if n == 0 {
				break
			}
		}
		select {
		case _, ok := <-notify:
			if !ok {
				notify = nil // store closing; the next read reports it
			}
		case <-poll.C:
		case <-f.read:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// runCatchUp replays the log to unsynced watchers and sends progress events.
func (f *Feed) runCatchUp(ctx context.Context) {
	// retry is armed only while watchers lag, to wait for their buffers to
	// drain; an idle feed does not wake up for it.
	retry := time.NewTimer(f.opts.CatchUpInterval)
	retry.Stop()
	defer retry.Stop()
	progress := time.NewTicker(f.opts.ProgressInterval / 2)
	defer progress.Stop()
	for {
		select {
		case <-f.kick:
		case <-retry.C:
		case <-progress.C:
			f.Tick()
			continue
		case <-ctx.Done():
			return
		}
		for {
			more, err := f.CatchUp(ctx)
			if err != nil || !more {
				break
			}
		}
		if f.lagging() > 0 {
			retry.Reset(f.opts.CatchUpInterval)
		}
	}
}

// lagging returns how many watchers are in catch-up.
func (f *Feed) lagging() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.unsynced)
}

// Close stops Run and every watcher and waits for them. Watchers end with
// ErrClosed.
func (f *Feed) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.closed = true
		close(f.stop)
		for w := range f.synced {
			f.endLocked(w, ErrClosed)
		}
		for w := range f.unsynced {
			f.endLocked(w, ErrClosed)
		}
		f.mu.Unlock()
	})
	f.running.Wait()
	return nil
}

// Revision returns the highest revision read and dispatched so far.
func (f *Feed) Revision() int64 { return f.rev.Load() }

// WaitForRevision blocks until the feed has dispatched rev, or ctx ends.
// When the feed is behind rev it reads the log at once rather than at the
// next notification or poll.
func (f *Feed) WaitForRevision(ctx context.Context, rev int64) error {
	for poked := false; ; poked = true {
		f.mu.Lock()
		if f.revision >= rev {
			f.mu.Unlock()
			return nil
		}
		closed, advanced := f.closed, f.advanced
		f.mu.Unlock()
		if closed {
			return ErrClosed
		}
		if !poked {
			select {
			case f.read <- struct{}{}:
			default:
			}
		}
		select {
		case <-advanced:
		case <-f.stop:
		case <-ctx.Done():
			return fmt.Errorf("feed: wait for revision %d: %w", rev, ctx.Err())
		}
	}
}

// setRevisionLocked advances the revision and wakes WaitForRevision.
func (f *Feed) setRevisionLocked(rev int64) {
	f.revision = rev
	f.rev.Store(rev)
	close(f.advanced)
	f.advanced = make(chan struct{})
}

// wake asks the catch-up goroutine to run.
func (f *Feed) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Poll reads one batch of the log after the feed's revision and dispatches
// it to synced watchers. It returns how many events it dispatched.
func (f *Feed) Poll(ctx context.Context) (int, error) {
	f.mu.Lock()
	after := f.revision
	f.mu.Unlock()
	evs, err := f.store.Changes(ctx, after, f.opts.BatchSize)
	if errors.Is(err, storage.ErrCompacted) {
		return 0, f.resetAfterCompaction(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("feed: read changes after %d: %w", after, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, ErrClosed
	}
	n := 0
	for i := range evs {
		if evs[i].Revision() <= f.revision {
			continue // dispatched by a concurrent Poll
		}
		f.dispatchLocked(&evs[i])
		n++
	}
	if n > 0 {
		f.setRevisionLocked(evs[len(evs)-1].Revision())
	}
	return n, nil
}

// resetAfterCompaction handles the feed itself falling behind compaction:
// every watcher is ended with ErrCompacted and the feed restarts at the
// store's current revision.
func (f *Feed) resetAfterCompaction(ctx context.Context) error {
	cur, err := f.store.CurrentRevision(ctx)
	if err != nil {
		return fmt.Errorf("feed: read current revision after compaction: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.synced {
		f.endLocked(w, storage.ErrCompacted)
	}
	for w := range f.unsynced {
		f.endLocked(w, storage.ErrCompacted)
	}
	if cur > f.revision {
		f.setRevisionLocked(cur)
	}
	return nil
}

// dispatchLocked sends one live event to every synced watcher it matches.
// A watcher whose buffer is full moves to the unsynced group.
func (f *Feed) dispatchLocked(ev *storage.Event) {
	var sh shared
	sh.ev = ev
	for w := range f.synced {
		if ev.Revision() <= w.pos {
			continue // the watcher started after this revision
		}
		out := sh.forWatcher(w)
		if out != nil && !w.send(out, f.opts.Now()) {
			delete(f.synced, w)
			f.unsynced[w] = struct{}{}
			f.wake()
			continue
		}
		w.pos = ev.Revision()
	}
}

// CatchUp replays one batch of the log to unsynced watchers and moves those
// that reach the feed's revision to the synced group. It reports whether
// another call may make progress right away.
func (f *Feed) CatchUp(ctx context.Context) (bool, error) {
	f.mu.Lock()
	if len(f.unsynced) == 0 || !f.started {
		f.mu.Unlock()
		return false, nil
	}
	target := f.revision
	from := int64(-1)
	for w := range f.unsynced {
		if w.full() {
			continue // no room: wait for the reader to drain
		}
		if from < 0 || w.pos < from {
			from = w.pos
		}
	}
	f.mu.Unlock()
	if from < 0 {
		return false, nil
	}
	var evs []storage.Event
	if from < target {
		var err error
		evs, err = f.store.Changes(ctx, from, f.opts.BatchSize)
		if errors.Is(err, storage.ErrCompacted) {
			return true, f.endCompacted(ctx)
		}
		if err != nil {
			return false, fmt.Errorf("feed: catch up after %d: %w", from, err)
		}
	}
	// covered: every event in (from, covered] is in evs.
	covered := target
	if len(evs) == f.opts.BatchSize {
		covered = evs[len(evs)-1].Revision()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sh := make([]shared, len(evs))
	for i := range evs {
		sh[i].ev = &evs[i]
	}
	more := false
	for w := range f.unsynced {
		if w.pos < from {
			continue // below this batch; a later call covers it
		}
		if f.replayLocked(w, sh, covered) {
			delete(f.unsynced, w)
			f.synced[w] = struct{}{}
			if w.wantProgress {
				f.progressLocked(w, f.opts.Now())
			}
		} else if !w.full() {
			more = true
		}
	}
	return more || len(f.unsynced) > 0 && covered < target, nil
}

// replayLocked sends the events of sh after w.pos and up to covered to w,
// stopping when its buffer is full, and reports whether w reached the feed's
// revision.
func (f *Feed) replayLocked(w *Watcher, sh []shared, covered int64) bool {
	now := f.opts.Now()
	limit := min(covered, f.revision)
	for i := range sh {
		rev := sh[i].ev.Revision()
		if rev <= w.pos {
			continue
		}
		if rev > limit {
			break
		}
		if out := sh[i].forWatcher(w); out != nil && !w.send(out, now) {
			return false
		}
		w.pos = rev
	}
	w.pos = max(w.pos, limit)
	return w.pos >= f.revision
}

// endCompacted ends the unsynced watchers that fell behind compaction.
func (f *Feed) endCompacted(ctx context.Context) error {
	compacted, err := f.store.CompactedRevision(ctx)
	if err != nil {
		return fmt.Errorf("feed: read compacted revision: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.unsynced {
		if w.pos < compacted {
			f.endLocked(w, storage.ErrCompacted)
		}
	}
	return nil
}

// Tick sends a Progress event to every synced watcher that has received
// nothing for ProgressInterval and has room in its buffer.
func (f *Feed) Tick() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	var ev *Event
	for w := range f.synced {
		if now.Sub(w.lastSent) < f.opts.ProgressInterval || w.full() {
			continue
		}
		if ev == nil {
			ev = &Event{Type: Progress, Revision: f.revision}
		}
		w.send(ev, now)
	}
}

// progressLocked sends w a Progress event at the feed's revision if it is
// synced and has room; otherwise it is sent when w gets synced.
func (f *Feed) progressLocked(w *Watcher, now time.Time) {
	if _, ok := f.synced[w]; !ok || w.full() {
		w.wantProgress = true
		return
	}
	w.wantProgress = false
	w.send(&Event{Type: Progress, Revision: f.revision}, now)
}

// endLocked closes w's channel with err and forgets it.
func (f *Feed) endLocked(w *Watcher, err error) {
	delete(f.synced, w)
	delete(f.unsynced, w)
	if w.ended {
		return
	}
	w.ended = true
	w.errMu.Lock()
	w.err = err
	w.errMu.Unlock()
	close(w.ch)
}

// shared builds, at most once per type, the Event a store event becomes,
// so that all watchers receiving the same thing share one allocation.
type shared struct {
	ev *storage.Event
	// byType is indexed by storage.EventType.
	byType [4]*Event
	// memo and prevMemo are given to WatchOptions.Match with the object
	// and the previous state, so that watchers share what it derives.
	memo, prevMemo Memo
}

// forWatcher returns what w receives for the event, or nil.
func (s *shared) forWatcher(w *Watcher) *Event {
	t, ok := w.opts.transform(s)
	if !ok {
		return nil
	}
	if s.byType[t] == nil {
		obj := s.ev.Object
		if t == storage.Deleted && s.ev.Type == storage.Modified && s.ev.Prev != nil {
			// The object stopped matching: as Kubernetes, send its last
			// matching state at the event's revision.
			obj = *s.ev.Prev
			obj.Revision = s.ev.Revision()
		}
		s.byType[t] = &Event{Type: t, Revision: s.ev.Revision(), Object: obj}
	}
	return s.byType[t]
}

// transform decides what a watcher with these options receives for ev:
// label- and field-selector transitions turn Modified into Added or
// Deleted (which carries the state before the change).
func (o *WatchOptions) transform(s *shared) (EventType, bool) {
	ev := s.ev
	k := ev.Object.Key
	if k.Resource != o.Resource || o.Namespace != "" && k.Namespace != o.Namespace || o.Name != "" && k.Name != o.Name {
		return 0, false
	}
	now := o.matches(ev.Object, &s.memo)
	if ev.Type != storage.Modified {
		return ev.Type, now
	}
	before := now
	if ev.Prev != nil {
		before = o.matches(*ev.Prev, &s.prevMemo)
	}
	switch {
	case before && now:
		return storage.Modified, true
	case before:
		return storage.Deleted, true
	case now:
		return storage.Added, true
	}
	return 0, false
}

func (o *WatchOptions) matches(obj storage.Object, memo *Memo) bool {
	return (o.Labels == nil || o.Labels.Matches(labels.Set(obj.Labels))) && (o.Match == nil || o.Match(obj, memo))
}

// WatchOptions selects the events a watcher receives.
type WatchOptions struct {
	// Resource is required (storage.Key.Resource).
	Resource string
	// Namespace and Name restrict events when not empty.
	Namespace string
	Name      string
	// Labels filters on labels; nil selects all.
	Labels labels.Selector
	// Match, when not nil, filters objects besides Labels (a field
	// selector), with the same transitions. It runs on the feed's
	// goroutine, under its lock, for every event of Resource. memo is
	// shared by every watcher's Match for the same object state: what a
	// Match derives into it must be a function of obj alone that all
	// Match functions of the process agree on (the registry keeps the
	// decoded object there), so that it is computed once per event.
	Match func(obj storage.Object, memo *Memo) bool
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
	// Memo lets the registry decode the object once for all watchers that
	// share the event. The feed never reads it.
	Memo Memo
	// MetaMemo lets the registry derive the object's metadata once for all
	// metadata-only watchers that share the event. The feed never reads it.
	MetaMemo Memo
}

// Watcher receives events; see Feed.Watch.
type Watcher struct {
	feed *Feed
	opts WatchOptions
	ch   chan *Event

	// Guarded by Feed.mu:
	// pos is the revision up to which every event was delivered or skipped.
	pos int64
	// lastSent is when the last event or progress was sent.
	lastSent time.Time
	// wantProgress: a requested progress event waits for sync and room.
	wantProgress bool
	ended        bool

	// errMu guards err; taken under Feed.mu by endLocked.
	errMu sync.Mutex
	err   error
}

// Watch registers a watcher. The caller must call Stop. It fails with an
// error wrapping storage.ErrCompacted when opts.After is below the store's
// compacted revision, storage.ErrFutureRevision when it is above the store's
// current revision, and ErrClosed after Close. ctx bounds the store reads
// that check opts.After, not the watcher.
func (f *Feed) Watch(ctx context.Context, opts WatchOptions) (*Watcher, error) {
	if opts.Resource == "" {
		return nil, errors.New("feed: watch: resource is required")
	}
	if opts.After < 0 {
		return nil, fmt.Errorf("feed: watch after %d: negative revision", opts.After)
	}
	w := &Watcher{feed: f, opts: opts, ch: make(chan *Event, f.opts.WatcherBuffer), pos: opts.After, lastSent: f.opts.Now()}
	f.mu.Lock()
	behind, closed := opts.After < f.revision, f.closed
	f.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if behind {
		compacted, err := f.store.CompactedRevision(ctx)
		if err != nil {
			return nil, fmt.Errorf("feed: watch: read compacted revision: %w", err)
		}
		if opts.After < compacted {
			return nil, fmt.Errorf("feed: watch after %d, compacted at %d: %w", opts.After, compacted, storage.ErrCompacted)
		}
	} else if opts.After > f.Revision() {
		cur, err := f.store.CurrentRevision(ctx)
		if err != nil {
			return nil, fmt.Errorf("feed: watch: read current revision: %w", err)
		}
		if opts.After > cur {
			return nil, fmt.Errorf("feed: watch after %d, current %d: %w", opts.After, cur, storage.ErrFutureRevision)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if w.pos < f.revision {
		f.unsynced[w] = struct{}{}
		f.wake()
	} else {
		f.synced[w] = struct{}{}
	}
	return w, nil
}

// full reports whether w's buffer has no room. Called under Feed.mu, the
// only place that sends, so room cannot shrink concurrently.
func (w *Watcher) full() bool { return len(w.ch) == cap(w.ch) }

// send tries to deliver ev without blocking. Called under Feed.mu.
func (w *Watcher) send(ev *Event, now time.Time) bool {
	select {
	case w.ch <- ev:
		w.lastSent = now
		return true
	default:
		return false
	}
}

// Events delivers the events. It is closed when the watcher ends; Err then
// says why (nil after Stop, ErrCompacted when it fell behind compaction).
func (w *Watcher) Events() <-chan *Event { return w.ch }

// Err reports why Events was closed.
func (w *Watcher) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// RequestProgress asks for a Progress event at the feed's revision as soon
// as the watcher has received every event up to it and has room in its
// buffer (at once when it is keeping up).
func (w *Watcher) RequestProgress() {
	w.feed.mu.Lock()
	defer w.feed.mu.Unlock()
	if !w.ended {
		w.feed.progressLocked(w, w.feed.opts.Now())
	}
}

// Stop ends the watcher and releases it. It is safe to call more than once.
func (w *Watcher) Stop() {
	w.feed.mu.Lock()
	defer w.feed.mu.Unlock()
	w.feed.endLocked(w, nil)
}

// EncodeCache holds one encoding of an event, computed once.
type EncodeCache struct {
	once sync.Once
	data []byte
	err  error
}

// Get returns the cached encoding, computing it with encode on first use.
// Safe for concurrent use.
func (c *EncodeCache) Get(encode func() ([]byte, error)) ([]byte, error) {
	c.once.Do(func() { c.data, c.err = encode() })
	return c.data, c.err
}

// Memo holds one value derived from an event, computed once.
type Memo struct {
	once sync.Once
	v    any
	err  error
}

// Get returns the memoized value, computing it with derive on first use.
// Safe for concurrent use; the value is shared by every caller and must be
// treated as read-only.
func (m *Memo) Get(derive func() (any, error)) (any, error) {
	m.once.Do(func() { m.v, m.err = derive() })
	return m.v, m.err
}
