// Package informer keeps a local cache of one resource in step with the
// server and tells handlers about every change.
//
// An Informer lists the resource (paged, from a consistent snapshot), then
// watches it from the list's resourceVersion with bookmarks. When a watch
// ends it resumes from the last resourceVersion it saw, backing off while
// the server is unreachable; when the server answers 410 Gone (the change
// log was compacted past that point) it lists again and hands the
// differences to its handlers: adds, updates, and deletes of the objects
// that went away meanwhile.
//
// Objects in the cache, and the objects handed to handlers, are shared by
// every reader: treat them as read-only, and copy one before changing it.
package informer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/setpoint/setpoint/pkg/client"
)

// Source is what an informer lists and watches; *client.Client[T, PT]
// satisfies it.
type Source[T any, PT interface {
	*T
	client.Object
}] interface {
	List(ctx context.Context, namespace string, opts metav1.ListOptions) (*client.List[T], error)
	Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (*client.Watch[T, PT], error)
}

// Handler receives an informer's changes. Nil fields are skipped. An
// informer calls its handlers one at a time, in the order they were added,
// from a single goroutine, so a slow handler delays the others and the
// cache updates after it.
type Handler[PT any] struct {
	// OnAdd is called for an object new to the cache.
	OnAdd func(obj PT)
	// OnUpdate is called when a cached object changes. A periodic resync
	// calls it with old == new for every cached object.
	OnUpdate func(old, new PT)
	// OnDelete is called with the last state of an object removed from the
	// cache: the deleted object from the watch, or the cached object when
	// a relist finds it gone.
	OnDelete func(obj PT)
}

// Options configure an Informer. The zero value watches every namespace
// with no selectors and no resync.
type Options[PT any] struct {
	// Namespace limits the informer to one namespace; default "" (all).
	Namespace string
	// LabelSelector and FieldSelector filter the objects, in the API's
	// syntax; default "" (everything).
	LabelSelector string
	FieldSelector string
	// ResyncPeriod, when positive, calls OnUpdate(obj, obj) for every
	// cached object that often; default 0 (never).
	ResyncPeriod time.Duration
	// Indexers are extra indexes on the cache, queried with ByIndex. The
	// name NamespaceIndex is built in and reserved; default none.
	Indexers map[string]IndexFunc[PT]
	// Transform, if set, is applied to every object from the server before
	// it is cached or handed to a handler, and may change it in place: for
	// example, clearing managedFields saves memory. Default none.
	Transform func(obj PT) PT
	// PageSize is the number of objects asked for per list page; default
	// 500. Negative lists in one request.
	PageSize int64
	// WatchTimeout is how long one watch request lasts before it is renewed
	// from the last seen resourceVersion; default 5 minutes.
	WatchTimeout time.Duration
	// Backoff is the first wait after a failed list or watch; it doubles
	// with every failure in a row up to MaxBackoff. Defaults 100ms and 30s.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// After is the time hook used for backoff and resync waits, for tests;
	// default time.After.
	After func(d time.Duration) <-chan time.Time
	// Logger receives list and watch failures; default slog.Default().
	Logger *slog.Logger
}

// Informer caches the objects of one resource and delivers their changes to
// handlers. Create it with New, add handlers, and call Run.
type Informer[T any, PT interface {
	*T
	client.Object
}] struct {
	src   Source[T, PT]
	opts  Options[PT]
	cache *cache[PT]

	running  atomic.Bool
	synced   atomic.Bool
	syncedCh chan struct{}

	hmu     sync.Mutex
	pending []Handler[PT]
	wake    chan struct{}

	// The fields below belong to the Run goroutine.
	handlers []Handler[PT]
	lastRV   string
	resyncC  <-chan time.Time
}

// New returns an informer over src. It panics if opts.Indexers uses the
// reserved name NamespaceIndex.
func New[T any, PT interface {
	*T
	client.Object
}](src Source[T, PT], opts Options[PT]) *Informer[T, PT] {
	if _, ok := opts.Indexers[NamespaceIndex]; ok {
		panic("informer: the index name " + NamespaceIndex + " is built in")
	}
	if opts.PageSize == 0 {
		opts.PageSize = 500
	}
	if opts.PageSize < 0 {
		opts.PageSize = 0
	}
	if opts.WatchTimeout <= 0 {
		opts.WatchTimeout = 5 * time.Minute
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Informer[T, PT]{
		src:      src,
		opts:     opts,
		cache:    newCache(opts.Indexers),
		syncedCh: make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
}

// AddHandler adds a handler. Added after the informer synced, the handler
// first gets OnAdd for every cached object, on the informer's goroutine,
// before any later change.
func (inf *Informer[T, PT]) AddHandler(h Handler[PT]) {
	inf.hmu.Lock()
	inf.pending = append(inf.pending, h)
	inf.hmu.Unlock()
	select {
	case inf.wake <- struct{}{}:
	default:
	}
}

// HasSynced reports whether the first list has been loaded into the cache
// and handed to the handlers.
func (inf *Informer[T, PT]) HasSynced() bool { return inf.synced.Load() }

// WaitForSync blocks until the informer has synced or ctx ends.
func (inf *Informer[T, PT]) WaitForSync(ctx context.Context) error {
	select {
	case <-inf.syncedCh:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("informer: waiting for sync: %w", ctx.Err())
	}
}

// Get returns the cached object namespace/name ("" namespace for a
// cluster-scoped object). The object is shared: do not modify it.
func (inf *Informer[T, PT]) Get(namespace, name string) (PT, bool) {
	return inf.cache.get(namespace, name)
}

// List returns every cached object, in no particular order. The objects are
// shared: do not modify them.
func (inf *Informer[T, PT]) List() []PT { return inf.cache.list() }

// ByIndex returns the cached objects that the named index files under
// value, in no particular order; none for an unknown index. The objects are
// shared: do not modify them.
func (inf *Informer[T, PT]) ByIndex(index, value string) []PT {
	return inf.cache.byIndex(index, value)
}

// Run lists and watches until ctx ends, then returns nil once every
// goroutine it started has stopped. Failures are logged and retried with
// backoff. Run may be called only once.
func (inf *Informer[T, PT]) Run(ctx context.Context) error {
	if !inf.running.CompareAndSwap(false, true) {
		return errors.New("informer: Run called twice")
	}
	log := inf.opts.Logger
	failures := 0
	needList := true
	for ctx.Err() == nil {
		inf.addPending()
		if needList {
			if err := inf.list(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				failures++
				d := inf.backoff(failures)
				log.Warn("informer: list failed", "namespace", inf.opts.Namespace, "retryIn", d, "err", err)
				inf.pause(ctx, d)
				continue
			}
			needList = false
			failures = 0
		}
		w, err := inf.src.Watch(ctx, inf.opts.Namespace, metav1.ListOptions{
			LabelSelector:       inf.opts.LabelSelector,
			FieldSelector:       inf.opts.FieldSelector,
			ResourceVersion:     inf.lastRV,
			AllowWatchBookmarks: true,
			TimeoutSeconds:      ptrTo(int64(max(inf.opts.WatchTimeout/time.Second, 1))),
		})
		n := 0
		if err == nil {
			n, err = inf.watch(ctx, w)
		}
		if n > 0 {
			failures = 0
		}
		switch {
		case ctx.Err() != nil:
		case isGone(err):
			log.Info("informer: resourceVersion expired, listing again", "namespace", inf.opts.Namespace, "resourceVersion", inf.lastRV)
			needList = true
		case err != nil:
			failures++
			d := inf.backoff(failures)
			log.Warn("informer: watch failed", "namespace", inf.opts.Namespace, "retryIn", d, "err", err)
			inf.pause(ctx, d)
		case n == 0:
			// The watch ended cleanly without a single event: wait a little
			// so that a server ending watches at once is not hammered.
			inf.pause(ctx, inf.opts.Backoff)
		}
	}
	return nil
}

// list loads a consistent snapshot, page by page, and hands the
// differences from the cache to the handlers.
func (inf *Informer[T, PT]) list(ctx context.Context) error {
	opts := metav1.ListOptions{
		LabelSelector: inf.opts.LabelSelector,
		FieldSelector: inf.opts.FieldSelector,
		Limit:         inf.opts.PageSize,
	}
	var items []PT
	rv := ""
	for {
		page, err := inf.src.List(ctx, inf.opts.Namespace, opts)
		if err != nil && opts.Continue != "" && isGone(err) {
			// The snapshot was compacted between pages: start over in one
			// request, which cannot expire.
			opts.Continue, opts.Limit, items = "", 0, items[:0]
			continue
		}
		if err != nil {
			return fmt.Errorf("listing: %w", err)
		}
		for i := range page.Items {
			// A copy per object, so that the page's array is not kept alive
			// by whichever of its objects stays cached longest.
			obj := PT(new(T))
			*obj = page.Items[i]
			items = append(items, inf.transform(obj))
		}
		rv = page.ResourceVersion
		if page.Continue == "" {
			break
		}
		opts.Continue = page.Continue
	}
	inf.replace(items)
	inf.lastRV = rv
	if !inf.synced.Load() {
		inf.synced.Store(true)
		close(inf.syncedCh)
		if inf.opts.ResyncPeriod > 0 {
			inf.resyncC = inf.opts.After(inf.opts.ResyncPeriod)
		}
	}
	return nil
}

// replace makes the cache hold exactly items, handing each difference to
// the handlers: objects whose resourceVersion did not change are left
// alone.
func (inf *Informer[T, PT]) replace(items []PT) {
	inf.addPending()
	seen := make(map[objKey]struct{}, len(items))
	for _, obj := range items {
		seen[objKey{obj.GetNamespace(), obj.GetName()}] = struct{}{}
		if old, ok := inf.cache.get(obj.GetNamespace(), obj.GetName()); ok && old.GetResourceVersion() == obj.GetResourceVersion() {
			continue
		}
		inf.store(obj)
	}
	for _, old := range inf.cache.list() {
		if _, ok := seen[objKey{old.GetNamespace(), old.GetName()}]; !ok {
			inf.cache.remove(old.GetNamespace(), old.GetName())
			inf.notifyDelete(old)
		}
	}
}

// watch applies the events of w until it ends or ctx does, and returns
// how many events it saw and why it ended.
func (inf *Informer[T, PT]) watch(ctx context.Context, w *client.Watch[T, PT]) (int, error) {
	defer w.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-inf.wake:
			inf.addPending()
		case <-inf.resyncC:
			inf.resync()
		case ev, ok := <-w.Events():
			if !ok {
				return n, w.Err()
			}
			n++
			inf.apply(ev)
		}
	}
}

// apply puts one watch event into the cache and hands it to the handlers.
func (inf *Informer[T, PT]) apply(ev client.Event[PT]) {
	if ev.Object == nil {
		return
	}
	rv := ev.Object.GetResourceVersion()
	switch ev.Type {
	case watch.Added, watch.Modified:
		inf.store(inf.transform(ev.Object))
	case watch.Deleted:
		obj := inf.transform(ev.Object)
		if _, ok := inf.cache.remove(obj.GetNamespace(), obj.GetName()); ok {
			inf.notifyDelete(obj)
		}
	case watch.Bookmark:
	default:
		return
	}
	if rv != "" {
		inf.lastRV = rv
	}
}

func (inf *Informer[T, PT]) transform(obj PT) PT {
	if inf.opts.Transform == nil {
		return obj
	}
	return inf.opts.Transform(obj)
}

// store caches obj and hands it to the handlers as an add or an update.
func (inf *Informer[T, PT]) store(obj PT) {
	old, existed := inf.cache.put(obj)
	for _, h := range inf.handlers {
		switch {
		case existed && h.OnUpdate != nil:
			h.OnUpdate(old, obj)
		case !existed && h.OnAdd != nil:
			h.OnAdd(obj)
		}
	}
}

func (inf *Informer[T, PT]) notifyDelete(obj PT) {
	for _, h := range inf.handlers {
		if h.OnDelete != nil {
			h.OnDelete(obj)
		}
	}
}

// resync hands every cached object to the handlers as an unchanged update
// and schedules the next resync.
func (inf *Informer[T, PT]) resync() {
	for _, obj := range inf.cache.list() {
		for _, h := range inf.handlers {
			if h.OnUpdate != nil {
				h.OnUpdate(obj, obj)
			}
		}
	}
	inf.resyncC = inf.opts.After(inf.opts.ResyncPeriod)
}

// addPending registers the handlers added since the last call, replaying
// the cache to each as adds.
func (inf *Informer[T, PT]) addPending() {
	inf.hmu.Lock()
	added := inf.pending
	inf.pending = nil
	inf.hmu.Unlock()
	for _, h := range added {
		if h.OnAdd != nil {
			for _, obj := range inf.cache.list() {
				h.OnAdd(obj)
			}
		}
		inf.handlers = append(inf.handlers, h)
	}
}

// pause waits d, or until ctx ends, serving new handlers and resyncs
// meanwhile.
func (inf *Informer[T, PT]) pause(ctx context.Context, d time.Duration) {
	t := inf.opts.After(d)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t:
			return
		case <-inf.wake:
			inf.addPending()
		case <-inf.resyncC:
			inf.resync()
		}
	}
}

// backoff is the wait after the given number of failures in a row.
func (inf *Informer[T, PT]) backoff(failures int) time.Duration {
	d := inf.opts.Backoff
	for i := 1; i < failures && d < inf.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, inf.opts.MaxBackoff)
}

func isGone(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

func ptrTo[V any](v V) *V { return &v }
