package audit

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// HeaderAuditID is the response header carrying the audit ID of the
// request, which its events in the audit log carry as auditID.
const HeaderAuditID = "Audit-Id"

// With audits the requests h serves, as the policy of l says, with the
// user the authentication filter put in the request context and the
// RequestInfo of requestinfo.With. It belongs right after authentication, so that every authenticated request is
// audited even when a later filter refuses it. A nil l audits nothing.
//
// Each audited request gives one event at stage ResponseComplete when h
// returns (Panic if h panics). A watch also gives one at ResponseStarted
// when its stream starts, as Kubernetes does for long-running requests,
// since it may run for an hour before it completes. RequestReceived is
// never written: every other stage repeats what it would say.
func With(h http.Handler, l *Logger) http.Handler {
	if l == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.serve(h, w, r)
	})
}

// WithFailedAuthentication audits the answers of failed, the handler the
// authentication filter calls when a request has no valid credentials,
// as With does. Such events have no user: the policy sees no user and no
// group, and rules naming users or groups do not match them.
func WithFailedAuthentication(failed http.Handler, l *Logger) http.Handler {
	return With(failed, l)
}

// serve audits one request.
func (l *Logger) serve(h http.Handler, w http.ResponseWriter, r *http.Request) {
	received := l.now()
	id := string(uuid.NewUUID())
	w.Header().Set(HeaderAuditID, id)
	info, ok := request.RequestInfoFrom(r.Context())
	if !ok {
		// requestinfo.With, the chain's first filter, was left out: audit
		// the request as a non-resource one, without bodies.
		info = &request.RequestInfo{Path: r.URL.Path, Verb: strings.ToLower(r.Method)}
	}
	u, _ := request.UserFrom(r.Context())
	attrs := authorizer.AttributesRecord{
		User: u, Verb: info.Verb, Namespace: info.Namespace, APIGroup: info.APIGroup, APIVersion: info.APIVersion,
		Resource: info.Resource, Subresource: info.Subresource, Name: info.Name,
		ResourceRequest: info.IsResourceRequest, Path: info.Path,
	}
	d := l.policy.decide(attrs)
	if d.level == auditinternal.LevelNone {
		h.ServeHTTP(w, r)
		return
	}
	rec := &record{
		l:        l,
		d:        d,
		ev:       newEvent(r, info, u, auditv1.Level(d.level), id),
		received: received,
		watch:    info.Verb == "watch",
		create:   info.Verb == "create" && info.Name == "",
	}
	rec.ev.RequestReceivedTimestamp.Time = received
	// Only resource requests have their bodies logged, and sensitive
	// ones never (decide caps their level).
	if info.IsResourceRequest && d.level.GreaterOrEqual(auditinternal.LevelRequest) && r.Body != nil && r.Body != http.NoBody {
		rec.reqBody = &capture{limit: l.maxBody}
		rec.reqType = r.Header.Get("Content-Type")
		r = r.WithContext(r.Context()) // a copy: the caller's request stays as it was
		r.Body = &teeBody{ReadCloser: r.Body, c: rec.reqBody}
	}
	rw := &responseWriter{ResponseWriter: w, rec: rec}
	defer func() {
		if p := recover(); p != nil {
			rec.finish(rw, auditinternal.StagePanic)
			panic(p)
		}
	}()
	h.ServeHTTP(rw, r)
	rec.finish(rw, auditinternal.StageResponseComplete)
}

// record is the audit state of one request.
type record struct {
	l  *Logger
	d  decision
	ev *auditv1.Event
	// received is when the request arrived.
	received time.Time
	// watch is set for watch requests, which also log ResponseStarted.
	watch bool
	// create is set for creates whose name is in the body only.
	create bool
	// reqBody captures the request body when the level asks for it.
	reqBody *capture
	reqType string
}

// emit writes the event at stage, with the answer's code and what the
// response writer captured so far.
func (rec *record) emit(rw *responseWriter, stage auditinternal.Stage) {
	if rec.d.omits(stage) {
		return
	}
	ev := *rec.ev
	ev.Annotations = make(map[string]string, len(rec.ev.Annotations)+1)
	for k, v := range rec.ev.Annotations {
		ev.Annotations[k] = v
	}
	ev.Stage = auditv1.Stage(stage)
	ev.StageTimestamp.Time = rec.l.now()
	code := rw.code
	if code == 0 {
		code = http.StatusOK
		if stage == auditinternal.StagePanic {
			code = http.StatusInternalServerError
		}
	}
	var status []byte
	if rw.body != nil && !rw.body.over && code >= http.StatusBadRequest {
		status = rw.body.buf
	}
	ev.ResponseStatus = responseStatus(code, status)
	latency := ev.StageTimestamp.Sub(rec.received)
	ev.Annotations[latencyAnnotation] = strconv.FormatFloat(float64(latency.Microseconds())/1000, 'f', 3, 64)
	if rec.reqBody != nil && stage != auditinternal.StageResponseStarted {
		obj, why := bodyObject(rec.reqBody, rec.reqType, rec.d.omitManagedFields)
		ev.RequestObject = obj
		if why != "" {
			ev.Annotations[omittedRequestAnnotation] = why
		}
	}
	if rw.keep && stage == auditinternal.StageResponseComplete && code < http.StatusBadRequest {
		obj, why := bodyObject(rw.body, rw.Header().Get("Content-Type"), rec.d.omitManagedFields)
		ev.ResponseObject = obj
		if why != "" {
			ev.Annotations[omittedResponseAnnotation] = why
		}
	}
	rec.l.write(&ev)
}

// finish writes the last event of the request.
func (rec *record) finish(rw *responseWriter, stage auditinternal.Stage) {
	if rec.create && rw.body != nil && !rw.body.over && rw.code < http.StatusBadRequest && rec.ev.ObjectRef != nil {
		rec.ev.ObjectRef.Name = createdName(rw.body.buf)
	}
	rec.emit(rw, stage)
}

// capture keeps up to limit bytes of a body; a longer body is dropped
// whole and marked over, since half an object is no JSON.
type capture struct {
	buf   []byte
	limit int64
	over  bool
}

// add appends p unless the body grows over the limit.
func (c *capture) add(p []byte) {
	if c.over || len(p) == 0 {
		return
	}
	if int64(len(c.buf)+len(p)) > c.limit {
		c.over, c.buf = true, nil
		return
	}
	c.buf = append(c.buf, p...)
}

// teeBody copies what the handler reads of a request body into c.
type teeBody struct {
	io.ReadCloser
	c *capture
}

// Read reads from the body and keeps a copy.
func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.add(p[:n])
	return n, err
}

// responseWriter records the answer's code and, when the event needs it,
// its body: the whole body at RequestResponse level (not of watches), the
// answer to a create for the object's name, and error answers for their
// Status. It keeps Flush reachable, directly and through Unwrap for
// http.ResponseController, so watches stream as without it.
type responseWriter struct {
	http.ResponseWriter
	rec  *record
	code int
	body *capture
	// keep is set when body is the response object of the event.
	keep bool
}

// WriteHeader records the code, starts capturing the body if needed and,
// for a watch, writes the ResponseStarted event.
func (w *responseWriter) WriteHeader(code int) {
	if w.code == 0 && code >= http.StatusOK {
		w.code = code
		w.start()
	}
	w.ResponseWriter.WriteHeader(code)
}

// start decides what to capture of a body whose code is now known.
func (w *responseWriter) start() {
	rec := w.rec
	switch {
	case w.code >= http.StatusBadRequest:
		w.body = &capture{limit: maxStatusBytes}
	case rec.watch:
	case rec.d.level.GreaterOrEqual(auditinternal.LevelRequestResponse) && rec.ev.ObjectRef != nil:
		w.body, w.keep = &capture{limit: rec.l.maxBody}, true
	case rec.create:
		w.body = &capture{limit: rec.l.maxBody}
	}
	if rec.watch {
		rec.emit(w, auditinternal.StageResponseStarted)
	}
}

// Write records an implicit 200 and writes b.
func (w *responseWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.body != nil {
		w.body.add(b)
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError sends buffered data to the client and reports a failure
// (http.ResponseController prefers it to Flush).
func (w *responseWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
