package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	kjson "sigs.k8s.io/json"
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
	go w.run(ctx, resp.Body, c, c.conn.maxObjectBytes)
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
// Each event may be at most limit bytes. Events of typed clients are cut
// from the stream by a frameReader and decoded in one pass each
// (decodeFrame); the first one that takes more than that, and everything
// after it, goes through decodeStream.
func (w *Watch[T, PT]) run(ctx context.Context, body io.ReadCloser, c *Client[T, PT], limit int64) {
	defer close(w.events)
	defer close(w.done)
	defer w.cancel()
	defer body.Close()
	fr := &frameReader{r: body, limit: limit}
	if !c.unstructured {
		for {
			frame, ok := fr.next()
			if !ok {
				break
			}
			typ, obj, ok := c.decodeFrame(frame)
			if !ok {
				fr.unread()
				break
			}
			if !w.send(ctx, typ, obj) {
				return
			}
		}
	}
	w.decodeStream(ctx, fr.rest(), c.decode, limit)
}

// send delivers one event; false when ctx ended first.
func (w *Watch[T, PT]) send(ctx context.Context, typ watch.EventType, obj PT) bool {
	select {
	case w.events <- Event[PT]{Type: typ, Object: obj}:
		return true
	case <-ctx.Done():
		return false
	}
}

// decodeStream decodes events from r with encoding/json, the object of
// each with decode, and sends them until the stream ends.
func (w *Watch[T, PT]) decodeStream(ctx context.Context, r io.Reader, decode func([]byte) (PT, error), limit int64) {
	budget := &budgetReader{r: r, limit: limit}
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
		if !w.send(ctx, f.Type, obj) {
			return
		}
	}
}

// decodeFrame decodes one event, a whole frame as frameReader cuts it,
// in one pass: its type and its object straight into a T. It reports
// false, leaving the frame to decodeStream, for anything decodeStream
// might read another way: an ERROR event or one of another type, a
// missing or null object, or a frame that does not decode.
func (c *Client[T, PT]) decodeFrame(frame []byte) (watch.EventType, PT, bool) {
	var f struct {
		Type   watch.EventType `json:"type"`
		Object PT              `json:"object"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(frame, &f); err != nil || f.Object == nil {
		return "", nil, false
	}
	switch f.Type {
	case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
	default:
		return "", nil, false
	}
	c.setKind(f.Object)
	return f.Type, f.Object, true
}

// frameReader cuts a watch stream into frames: the bytes of each JSON
// object, found by counting braces outside strings. It stops, for
// decodeStream to go on from where it stopped, at anything else: a value
// that is not an object, a frame larger than limit, a key spelled so
// that encoding/json's case-insensitive decoding of watchFrame would read
// it and the case-sensitive decodeFrame would not (or a repeated "type"
// or "object"), the end of the stream, a read error.
type frameReader struct {
	r     io.Reader
	limit int64
	buf   []byte
	// start is where the frame being read begins in buf; pos is how far
	// it was scanned, with the scanner's state.
	start, pos int
	scan       frameScan
	// last is where the frame next returned began, for unread.
	last int
	err  error
}

// frameScan is the state of the scan of one frame.
type frameScan struct {
	depth            int
	inString, escape bool
	// key is set while a key of the frame's own object is read, from
	// keyStart; wantKey when the next string is one.
	key, wantKey       bool
	keyStart           int
	sawType, sawObject bool
	suspicious, begun  bool
}

// next returns the next frame, valid until the next call; false when
// decodeStream must take over.
func (f *frameReader) next() ([]byte, bool) {
	for {
		if end, ok, done := f.scanFrame(); done {
			if !ok {
				return nil, false
			}
			frame := f.buf[f.start:end]
			f.last, f.start, f.pos, f.scan = f.start, end, end, frameScan{}
			return frame, true
		}
		if f.err != nil || int64(f.pos-f.start) > f.limit {
			return nil, false
		}
		f.fill()
	}
}

// unread puts back the frame next returned last.
func (f *frameReader) unread() {
	f.start, f.pos, f.scan = f.last, f.last, frameScan{}
}

// rest is the stream from the start of the frame not returned yet.
func (f *frameReader) rest() io.Reader {
	pending := bytes.NewReader(f.buf[f.start:])
	if f.err != nil {
		return io.MultiReader(pending, errReader{f.err})
	}
	return io.MultiReader(pending, f.r)
}

// fill reads more of the stream into buf, keeping the current frame.
func (f *frameReader) fill() {
	if f.start > 0 && (f.start == len(f.buf) || len(f.buf) == cap(f.buf)) {
		n := copy(f.buf, f.buf[f.start:])
		f.buf, f.pos, f.scan.keyStart = f.buf[:n], f.pos-f.start, f.scan.keyStart-f.start
		f.start, f.last = 0, 0
	}
	if len(f.buf) == cap(f.buf) {
		f.buf = append(f.buf, make([]byte, max(4096, len(f.buf)))...)[:len(f.buf)]
	}
	n, err := f.r.Read(f.buf[len(f.buf):cap(f.buf)])
	f.buf = f.buf[:len(f.buf)+n]
	if err != nil {
		f.err = err
	}
}

// scanFrame goes on scanning the frame at start: done with its end when
// it is complete, ok false when it is not a frame decodeFrame may take.
func (f *frameReader) scanFrame() (end int, ok, done bool) {
	s := &f.scan
	for ; f.pos < len(f.buf); f.pos++ {
		c := f.buf[f.pos]
		switch {
		case !s.begun:
			switch c {
			case ' ', '\t', '\r', '\n':
				f.start = f.pos + 1
				continue
			case '{':
				s.begun, s.depth, s.wantKey = true, 1, true
				continue
			}
			return 0, false, true
		case s.inString:
			switch {
			case s.escape:
				s.escape = false
				if s.key {
					s.suspicious = true
				}
			case c == '\\':
				s.escape = true
			case c == '"':
				s.inString = false
				if s.key {
					s.key = false
					s.checkKey(f.buf[s.keyStart:f.pos])
				}
			}
			continue
		}
		switch c {
		case '"':
			s.inString = true
			if s.depth == 1 && s.wantKey {
				s.key, s.wantKey, s.keyStart = true, false, f.pos+1
			}
		case '{', '[':
			s.depth++
		case '}', ']':
			s.depth--
			if s.depth == 0 {
				f.pos++
				return f.pos, !s.suspicious, true
			}
		case ',':
			if s.depth == 1 {
				s.wantKey = true
			}
		}
	}
	return 0, false, false
}

// checkKey notes a key of the frame's object, unescaped: a spelling of
// "type" or "object" in other cases, or either of them twice, makes the
// frame one for decodeStream.
func (s *frameScan) checkKey(key []byte) {
	for _, name := range []struct {
		name string
		seen *bool
	}{{"type", &s.sawType}, {"object", &s.sawObject}} {
		if !bytes.EqualFold(key, []byte(name.name)) {
			continue
		}
		if string(key) != name.name || *name.seen {
			s.suspicious = true
		}
		*name.seen = true
	}
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

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
