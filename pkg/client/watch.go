package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// Event is one change seen by a Watch.
type Event[PT any] struct {
	// Type is watch.Added, watch.Modified, watch.Deleted or
	// watch.Bookmark. A bookmark's Object carries only its kind and
	// resourceVersion (and annotations the server sets).
	Type watch.EventType
	// Object is the object after the change; for Deleted, its last
	// state.
	Object PT
}

// Watch is a stream of changes. Read Events until the channel closes,
// then Err says why it ended.
type Watch[T any, PT interface {
	*T
	Object
}] struct {
	events chan Event[PT]
	cancel context.CancelFunc
	// done is closed, after err is set, when the stream has ended.
	done chan struct{}
	err  error
}

// Watch starts watching the objects in namespace ("" watches all
// namespaces) that match opts' selectors, from opts.ResourceVersion (""
// starts with the current objects as Added events; "0" as well, from any
// cached state). Set opts.AllowWatchBookmarks to receive Bookmark events.
// A resourceVersion too old to watch from is an error for which IsGone is
// true, returned here or from Err. The stream ends when the server ends it
// (opts.TimeoutSeconds), when ctx ends, or on Stop.
func (c *Client[T, PT]) Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (*Watch[T, PT], error) {
	opts.Watch = true
	q, err := encodeParams(&opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.conn.send(ctx, request{method: http.MethodGet, path: c.collectionPath(namespace), query: q, verb: "watch", resource: c.groupResource(), accept: c.accept()})
	if err != nil {
		cancel()
		return nil, err
	}
	w := &Watch[T, PT]{events: make(chan Event[PT]), cancel: cancel, done: make(chan struct{})}
	go w.run(ctx, resp.Body, c.decode, c.conn.maxObjectBytes)
	return w, nil
}

// Events returns the channel of changes. It is closed when the stream
// ends; Err then says why.
func (w *Watch[T, PT]) Events() <-chan Event[PT] { return w.events }

// Stop ends the stream and waits until its goroutine has returned. It may
// be called more than once, and concurrently with reading Events.
func (w *Watch[T, PT]) Stop() {
	w.cancel()
	<-w.done
}

// Err returns why the stream ended, once Events is closed: nil when the
// server ended it, after Stop, or when the context ended; a
// *apierrors.StatusError from an ERROR event (IsGone when the
// resourceVersion was compacted away); or the error that broke the
// connection or the decoding. Before the end it returns nil.
func (w *Watch[T, PT]) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// watchFrame is one event on the wire.
type watchFrame struct {
	Type   watch.EventType `json:"type"`
	Object json.RawMessage `json:"object"`
}

// run decodes events from body and sends them until the stream ends.
// Each event may be at most limit bytes.
func (w *Watch[T, PT]) run(ctx context.Context, body io.ReadCloser, decode func([]byte) (PT, error), limit int64) {
	defer close(w.events)
	defer close(w.done)
	defer w.cancel()
	defer body.Close()
	budget := &budgetReader{r: body, limit: limit}
	dec := json.NewDecoder(budget)
	for {
		budget.reset()
		var f watchFrame
		if err := dec.Decode(&f); err != nil {
			switch {
			case ctx.Err() != nil, errors.Is(err, io.EOF):
			case errors.Is(err, ErrResponseTooLarge):
				w.err = err
			default:
				w.err = fmt.Errorf("client: read watch stream: %w", err)
			}
			return
		}
		switch f.Type {
		case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
		case watch.Error:
			w.err = eventError(f.Object)
			return
		default:
			w.err = fmt.Errorf("client: watch event of unknown type %q", f.Type)
			return
		}
		obj, err := decode(f.Object)
		if err != nil {
			w.err = fmt.Errorf("client: watch %s event: %w", f.Type, err)
			return
		}
		select {
		case w.events <- Event[PT]{Type: f.Type, Object: obj}:
		case <-ctx.Done():
			return
		}
	}
}

// eventError turns the Status of an ERROR event into an error.
func eventError(data []byte) error {
	var st metav1.Status
	if err := json.Unmarshal(data, &st); err != nil || st.Kind != "Status" {
		return fmt.Errorf("client: watch ERROR event without a Status: %.200s", data)
	}
	return &apierrors.StatusError{ErrStatus: st}
}

// budgetReader fails once more than limit bytes were read since the last
// reset: it bounds how much one watch event may take.
type budgetReader struct {
	r     io.Reader
	limit int64
	used  int64
}

func (b *budgetReader) reset() { b.used = 0 }

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.used > b.limit {
		return 0, fmt.Errorf("%w: a watch event is larger than %d bytes", ErrResponseTooLarge, b.limit)
	}
	n, err := b.r.Read(p)
	b.used += int64(n)
	return n, err
}
