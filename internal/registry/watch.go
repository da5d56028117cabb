package registry

import (
	"context"
	"errors"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/storage"
)

// initialEventsEndAnnotation marks the bookmark that ends the initial
// events of a sendInitialEvents watch.
const initialEventsEndAnnotation = "k8s.io/initial-events-end"

// watchBuffer is the capacity of a watch's event channel.
const watchBuffer = 64

// watchPlan is what a watch sends first and where it continues.
type watchPlan struct {
	initial   []storage.Object
	after     int64
	endMarker bool
	fields    fieldFilter
	// metadataOnly is ListOptions.MetadataOnly.
	metadataOnly bool
}

// planWatch interprets the watch parameters as Kubernetes does.
func (r *Registry) planWatch(ctx context.Context, res *Resource, namespace string, opts ListOptions) (watchPlan, error) {
	p := watchPlan{metadataOnly: opts.MetadataOnly}
	if !res.Namespaced {
		namespace = ""
	}
	ff, err := parseFields(res, namespace, opts.Fields)
	if err != nil {
		return p, err
	}
	if namespace != "" && ff.namespace != namespace {
		ff.none = true
	}
	p.fields = ff
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return p, err
	}
	initial := rv == 0
	if opts.SendInitialEvents != nil {
		var errs field.ErrorList
		if opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
		}
		if !opts.AllowWatchBookmarks {
			errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"), "sendInitialEvents requires setting allowWatchBookmarks to true"))
		}
		if len(errs) > 0 {
			return p, apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "ListOptions"}, "", errs)
		}
		initial = *opts.SendInitialEvents
		p.endMarker = initial
	} else if opts.ResourceVersionMatch != "" {
		return p, apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "ListOptions"}, "", field.ErrorList{
			field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")})
	}
	cur, err := r.store.CurrentRevision(ctx)
	if err != nil {
		return p, storageError(err, res, "")
	}
	if rv > cur {
		return p, tooLargeRV(rv, cur)
	}
	if !initial {
		p.after = rv
		if rv == 0 {
			p.after = cur
		}
		return p, nil
	}
	lopts := ListOptions{Labels: opts.Labels, Fields: opts.Fields}
	for {
		objs, rev, cont, err := r.list(ctx, res, namespace, lopts, nil)
		if err != nil {
			return p, err
		}
		p.initial = append(p.initial, objs...)
		p.after = rev
		if cont == "" {
			return p, nil
		}
		lopts.Continue = cont
	}
}

// Watch streams events after opts.ResourceVersion (or, with
// SendInitialEvents, the current state first, then a BOOKMARK with the
// k8s.io/initial-events-end annotation). The channel closes when ctx ends or
// the watch fails; a failure is sent first as an ERROR event.
func (r *Registry) Watch(ctx context.Context, res *Resource, namespace string, opts ListOptions) (<-chan WatchEvent, error) {
	if r.feed == nil {
		return nil, apierrors.NewMethodNotSupported(res.groupResource(), "watch")
	}
	p, err := r.planWatch(ctx, res, namespace, opts)
	if err != nil {
		return nil, err
	}
	ch := make(chan WatchEvent, watchBuffer)
	// The feed may still hold events the store's log has compacted; answer
	// as the log does so that resuming is deterministic.
	if compacted, err := r.store.CompactedRevision(ctx); err != nil {
		return nil, storageError(err, res, "")
	} else if p.after < compacted {
		ch <- errorEvent(r.tooOldRV(ctx, p.after))
		close(ch)
		return ch, nil
	}
	wopts := feed.WatchOptions{
		Resource: res.StorageKey, Namespace: p.fields.namespace, Name: p.fields.name,
		Labels: opts.Labels, After: p.after,
	}
	if terms := p.fields.terms; len(terms) > 0 {
		// The feed applies them with their transitions, as labels.
		wopts.Match = func(o storage.Object, memo *feed.Memo) bool { return matchDecoded(terms, o, memo) }
	}
	w, err := r.feed.Watch(ctx, wopts)
	switch {
	case errors.Is(err, storage.ErrCompacted):
		ch <- errorEvent(r.tooOldRV(ctx, p.after))
		close(ch)
		return ch, nil
	case errors.Is(err, storage.ErrFutureRevision):
		cur, _ := r.store.CurrentRevision(ctx)
		return nil, tooLargeRV(p.after, cur)
	case err != nil:
		return nil, storageError(err, res, "")
	}
	started := r.spawn(func() {
		defer close(ch)
		defer w.Stop()
		r.stream(ctx, res, p, opts.AllowWatchBookmarks, w, ch)
	})
	if !started {
		w.Stop()
		return nil, apierrors.NewServiceUnavailable("the server is shutting down")
	}
	return ch, nil
}

// stream sends the initial events and then the feed's events to ch until
// ctx ends, the registry closes or the watcher fails.
func (r *Registry) stream(ctx context.Context, res *Resource, p watchPlan, bookmarks bool, w *feed.Watcher, ch chan<- WatchEvent) {
	send := func(ev WatchEvent) bool {
		select {
		case ch <- ev:
			return true
		case <-ctx.Done():
		case <-r.done:
		}
		return false
	}
	for _, o := range p.initial {
		u, err := r.output(res, o)
		if err != nil {
			send(errorEvent(err))
			return
		}
		if !send(WatchEvent{Type: "ADDED", Object: u}) {
			return
		}
	}
	if p.endMarker && !send(bookmark(res, p.after, true)) {
		return
	}
	last := p.after
	for {
		var ev *feed.Event
		var ok bool
		select {
		case ev, ok = <-w.Events():
		case <-ctx.Done():
			return
		case <-r.done:
			return
		}
		if !ok {
			if err := w.Err(); errors.Is(err, storage.ErrCompacted) {
				send(errorEvent(r.tooOldRV(ctx, last)))
			} else if err != nil {
				send(errorEvent(storageError(err, res, "")))
			}
			return
		}
		last = ev.Revision
		if ev.Type == feed.Progress {
			if bookmarks && !send(bookmark(res, ev.Revision, false)) {
				return
			}
			continue
		}
		if p.fields.none || !p.fields.matchKey(ev.Object) {
			continue
		}
		out, err := r.watchEvent(res, ev, p.metadataOnly)
		if err != nil {
			send(errorEvent(err))
			return
		}
		if !send(out) {
			return
		}
	}
}

// watchEvent converts a feed event. The stored object is decoded once for
// all watchers of the event (the feed event's Memo); watchers served in the
// stored apiVersion share that object and its encoding cache, which is why
// nothing may modify a WatchEvent's object. Other versions get a copy.
//
// For a metadata-only watch, the metadata is cut from the stored document
// when it is in canonical form (appendServedMetadata), once for all such
// watchers, and the object is not decoded at all.
func (r *Registry) watchEvent(res *Resource, ev *feed.Event, metadataOnly bool) (WatchEvent, error) {
	if metadataOnly {
		md, _ := ev.MetaMemo.Get(func() (any, error) {
			b, ok := appendServedMetadata(nil, ev.Object.Value, res.apiVersion(), res.Kind, ev.Revision)
			if !ok {
				return []byte(nil), nil
			}
			return b, nil
		})
		if b := md.([]byte); b != nil {
			return WatchEvent{Type: ev.Type.String(), Metadata: b}, nil
		}
	}
	v, err := ev.Memo.Get(func() (any, error) {
		m, err := decodeValue(ev.Object.Value)
		if err != nil {
			return nil, err
		}
		metadata(m)["resourceVersion"] = strconv.FormatInt(ev.Revision, 10)
		return m, nil
	})
	if err != nil {
		return WatchEvent{}, apierrors.NewInternalError(err)
	}
	m := v.(map[string]any)
	if m["apiVersion"] == res.apiVersion() && m["kind"] == res.Kind {
		return WatchEvent{Type: ev.Type.String(), Object: &unstructured.Unstructured{Object: m}, Cache: &ev.Cache}, nil
	}
	return WatchEvent{Type: ev.Type.String(), Object: servedMap(res, deepCopy(m), ev.Revision)}, nil
}

// bookmark builds a BOOKMARK event at rev.
func bookmark(res *Resource, rev int64, initialEnd bool) WatchEvent {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": res.apiVersion(), "kind": res.Kind}}
	u.SetResourceVersion(strconv.FormatInt(rev, 10))
	if initialEnd {
		u.SetAnnotations(map[string]string{initialEventsEndAnnotation: "true"})
	}
	return WatchEvent{Type: "BOOKMARK", Object: u}
}

// errorEvent wraps a StatusError as an ERROR event.
func errorEvent(err error) WatchEvent {
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		se = apierrors.NewInternalError(err)
	}
	status := se.Status()
	return WatchEvent{Type: "ERROR", Object: &status}
}
