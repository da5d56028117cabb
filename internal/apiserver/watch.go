package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/setpoint/setpoint/internal/registry"
)

// minWatchTimeout is the base of the default watch duration when the
// client sends no timeoutSeconds: a random time in [min, 2*min), as
// Kubernetes does, so that clients reconnect spread out.
const minWatchTimeout = 30 * time.Minute

// maxWatchTimeoutSeconds bounds timeoutSeconds so that the duration
// cannot overflow.
const maxWatchTimeoutSeconds = 1 << 31

// watchFrame is one line of a watch stream.
type watchFrame struct {
	Type   string `json:"type"`
	Object any    `json:"object"`
}

// watch serves a watch stream: newline-delimited JSON events, flushed as
// they come. Errors before the stream starts (bad parameters, an expired
// resourceVersion) are plain Status answers; later ones are ERROR events.
// The stream ends cleanly after timeoutSeconds and stops the registry's
// watch when the client goes away.
func (s *server) watch(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	q := r.URL.Query()
	opts, err := listOptions(q)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	if info.name != "" {
		opts.Fields = fields.AndSelectors(opts.Fields, fields.OneTermEqualSelector("metadata.name", info.name))
	}
	timeout := minWatchTimeout + rand.N(minWatchTimeout)
	if secs, ok, err := queryInt(q, "timeoutSeconds"); err != nil {
		s.writeError(w, r, info.out, err)
		return
	} else if ok && secs > 0 {
		timeout = time.Duration(min(secs, maxWatchTimeoutSeconds)) * time.Second
	}
	var tb *tableBuilder
	if info.out.target == targetTable {
		if tb, err = newTableBuilder(info.res, info.out.metaVersion, q); err != nil {
			s.writeError(w, r, info.out, err)
			return
		}
	}
	// A plain PartialObjectMetadata stream takes the metadata the registry
	// cuts from the stored documents (appendMetadataFrame).
	opts.MetadataOnly = info.out.target == targetPartial && !info.out.pretty
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	// Starting the watch (reading the store, the initial events) is
	// bounded by the request timeout like any request: a database too slow
	// to answer makes it end with 504, not hang.
	ctx, endSetup := context.WithCancel(ctx)
	defer endSetup()
	setupTimer := time.AfterFunc(s.requestTimeout, endSetup)
	ch, err := s.reg.Watch(ctx, info.res, info.namespace, opts)
	if !setupTimer.Stop() {
		err = apierrors.NewTimeoutError(fmt.Sprintf("starting the watch did not complete within %v", s.requestTimeout), 1)
	}
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	// An error the registry reports at once (410 for a compacted
	// resourceVersion) is answered as a Status, not as a stream.
	var first *registry.WatchEvent
	select {
	case ev, ok := <-ch:
		if ok && ev.Type == "ERROR" {
			if status, isStatus := ev.Object.(*metav1.Status); isStatus {
				s.writeBody(w, info.out, statusCode(status), withTypeMetaPtr(status))
				return
			}
		}
		if !ok {
			ch = nil
		} else {
			first = &ev
		}
	default:
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	enc := &watchEncoder{out: info.out, table: tb}
	buf := getBuffer()
	defer putBuffer(buf)
	if first != nil && !s.writeEvent(rc, w, enc, buf, *first, len(ch) == 0) {
		return
	}
	for ch != nil {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if !s.writeEvent(rc, w, enc, buf, ev, len(ch) == 0) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// writeEvent writes one event and flushes when flush is set (no other
// event is waiting). It reports false when the client is gone.
func (s *server) writeEvent(rc *http.ResponseController, w http.ResponseWriter, enc *watchEncoder, buf *bytes.Buffer, ev registry.WatchEvent, flush bool) bool {
	buf.Reset()
	data, err := enc.encode(buf, ev)
	if err != nil {
		s.log.Error("apiserver: encode watch event", "error", err)
		return false
	}
	if _, err := w.Write(data); err != nil {
		return false
	}
	return !flush || rc.Flush() == nil
}

// watchEncoder encodes the events of one stream.
type watchEncoder struct {
	out   output
	table *tableBuilder
	// sentColumns is set once a Table event carried the column
	// definitions; later ones omit them, as Kubernetes does.
	sentColumns bool
}

// encode returns the line for ev. Without a per-request transformation it
// uses the event's shared cache, so an event is encoded once for all
// watchers; otherwise it encodes into buf.
func (e *watchEncoder) encode(buf *bytes.Buffer, ev registry.WatchEvent) ([]byte, error) {
	if ev.Metadata != nil {
		return appendMetadataFrame(buf.Bytes(), ev.Type, e.out.metaVersion, ev.Metadata), nil
	}
	plain := e.out.target == targetObject && !e.out.pretty
	if plain && ev.Cache != nil {
		return ev.Cache.Get(func() ([]byte, error) {
			var b bytes.Buffer
			err := encodeJSON(&b, watchFrame{Type: ev.Type, Object: eventObject(ev.Object)}, false)
			return b.Bytes(), err
		})
	}
	frame := watchFrame{Type: ev.Type, Object: e.transform(ev)}
	if err := encodeJSON(buf, frame, e.out.pretty); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// appendMetadataFrame appends to dst the line of a PartialObjectMetadata
// event whose metadata JSON is md: the bytes encodeJSON renders for the
// watchFrame of partialObject. typ needs no escaping.
func appendMetadataFrame(dst []byte, typ, metaVersion string, md []byte) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","object":{"apiVersion":"`+metaGroup+"/"...)
	dst = append(dst, metaVersion...)
	dst = append(dst, `","kind":"PartialObjectMetadata","metadata":`...)
	dst = append(dst, md...)
	return append(dst, "}}\n"...)
}

// transform converts the object of ev for the negotiated target. ERROR
// events always carry a Status.
func (e *watchEncoder) transform(ev registry.WatchEvent) any {
	obj := eventObject(ev.Object)
	m, isMap := obj.(map[string]any)
	if !isMap || ev.Type == "ERROR" {
		return obj
	}
	switch e.out.target {
	case targetTable:
		withColumns := !e.sentColumns
		e.sentColumns = true
		if ev.Type == "BOOKMARK" {
			return e.table.table(map[string]any{"resourceVersion": metaField(m, "resourceVersion")}, withColumns)
		}
		// Ages are relative to when the event is sent.
		e.table.now = time.Now()
		return e.table.objectTable(m, withColumns)
	case targetPartial:
		return partialObject(e.out.metaVersion, m)
	}
	return m
}

// eventObject returns what to encode for a registry event object: the
// map of an unstructured object, or a Status with its kind set.
func eventObject(obj any) any {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		return o.Object
	case *metav1.Status:
		return withTypeMetaPtr(o)
	}
	return obj
}

// withTypeMetaPtr is withTypeMeta for a Status pointer.
func withTypeMetaPtr(s *metav1.Status) *metav1.Status {
	st := withTypeMeta(*s)
	return &st
}

// statusCode is the HTTP code of a Status (500 when unset).
func statusCode(s *metav1.Status) int {
	if s.Code == 0 {
		return http.StatusInternalServerError
	}
	return int(s.Code)
}
