package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/setpoint/setpoint/internal/registry"
)

// requestInfo is a resolved resource request.
type requestInfo struct {
	res       *registry.Resource
	namespace string
	name      string
	// sub is "", "status" or "scale".
	sub string
	// verb is get, list, watch, create, update, patch, delete or
	// deletecollection.
	verb string
	out  output
}

// statusWriter records the status code for metrics and panics; it keeps
// Flush reachable through Unwrap for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code int
}

// WriteHeader records the first status code and sends it.
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and writes b.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client.
func (w *statusWriter) Flush() { _ = w.FlushError() }

// FlushError sends buffered data to the client and reports a failure
// (http.ResponseController prefers it to Flush).
func (w *statusWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// metricLabels are the metric labels of one request, filled in by routing.
type metricLabels struct {
	verb, resource string
}

// methodLabel is the metric verb of a request that is not a resource
// request: the lower-case method, "other" for unknown methods so that
// clients cannot create label values.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return strings.ToLower(method)
	}
	return "other"
}

// ServeHTTP answers every request. A panic in a handler is logged and
// answered with a 500 Status; it never takes the server down.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	l := &metricLabels{verb: methodLabel(r.Method)}
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				panic(p)
			}
			s.log.Error("apiserver: panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			if sw.code == 0 {
				s.writeError(sw, r, output{}, errors.New("panic"))
			}
		}
		d := time.Since(start)
		s.metrics.observe(l, sw.code, d)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("apiserver: request", "method", r.Method, "path", r.URL.Path, "verb", l.verb, "resource", l.resource, "code", sw.code, "duration", d)
		}
	}()
	s.route(sw, r, l)
}

// route dispatches on the path.
func (s *server) route(w http.ResponseWriter, r *http.Request, l *metricLabels) {
	path := r.URL.Path
	// Every request but a watch ends by the request timeout; a watch
	// only while its resource is looked up.
	timeout, badTimeout := s.timeoutFor(r)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	bounded := r.WithContext(ctx)
	switch path {
	case "/healthz", "/livez":
		s.serveHealth(w, bounded, nil)
		return
	case "/readyz":
		s.serveHealth(w, bounded, s.ready)
		return
	case "/metrics":
		s.serveMetrics(w, r)
		return
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if slices.Contains(parts, "") && path != "/" {
		s.writeError(w, r, output{}, errNotFound())
		return
	}
	if parts[0] == "version" || parts[0] == "openapi" || (parts[0] == "api" && len(parts) <= 2) || (parts[0] == "apis" && len(parts) <= 3) {
		if badTimeout != nil {
			s.writeError(w, r, output{}, badTimeout)
			return
		}
		s.serveDiscovery(w, bounded, parts)
		return
	}
	switch parts[0] {
	case "api":
		switch {
		case parts[1] != "v1":
			s.writeError(w, r, output{}, errNotFound())
		default:
			s.serveResource(w, r, bounded, badTimeout, l, "", "v1", parts[2:])
		}
	case "apis":
		s.serveResource(w, r, bounded, badTimeout, l, parts[1], parts[2], parts[3:])
	default:
		s.writeError(w, r, output{}, errNotFound())
	}
}

// serveResource resolves and serves a request under a group-version.
// bounded is r with the request timeout, which a watch only uses to look
// its resource up; badTimeout is the error of a malformed timeout
// parameter, which a watch ignores.
func (s *server) serveResource(w http.ResponseWriter, r, bounded *http.Request, badTimeout error, l *metricLabels, group, version string, rest []string) {
	info, err := s.resolve(bounded, group, version, rest)
	if info != nil {
		// As Kubernetes, before anything can fail.
		if msg := info.res.DeprecationWarning; msg != "" {
			addWarnings(w, []string{msg})
		}
		l.resource = info.res.Resource
		if info.verb != "" {
			l.verb = info.verb
		}
	}
	if err != nil {
		out := output{}
		if info != nil {
			out = info.out
		}
		s.writeError(w, r, out, err)
		return
	}
	if info.verb != "watch" {
		if badTimeout != nil {
			s.writeError(w, r, info.out, badTimeout)
			return
		}
		r = bounded
	}
	if info.sub == "scale" {
		s.scale(w, r, info)
		return
	}
	switch info.verb {
	case "get":
		s.get(w, r, info)
	case "list":
		s.list(w, r, info)
	case "watch":
		s.watch(w, r, info)
	case "create":
		s.create(w, r, info)
	case "update":
		s.update(w, r, info)
	case "patch":
		s.patch(w, r, info)
	case "delete":
		s.delete(w, r, info)
	case "deletecollection":
		s.deleteCollection(w, r, info)
	}
}

// resolve turns the path after /api/v1 or /apis/<group>/<version> into a
// resource request: [watch/][namespaces/<ns>/]<resource>[/<name>[/status|/scale]].
// /api/v1/namespaces/<name>/status and /finalize are the namespace's
// subresources.
func (s *server) resolve(r *http.Request, group, version string, rest []string) (*requestInfo, error) {
	legacyWatch := false
	if rest[0] == "watch" {
		legacyWatch = true
		rest = rest[1:]
	}
	namespace, namespacedPath := "", false
	if len(rest) >= 3 && rest[0] == "namespaces" && !(group == "" && len(rest) == 3 && (rest[2] == "status" || rest[2] == "finalize")) {
		namespace, namespacedPath = rest[1], true
		rest = rest[2:]
	}
	if len(rest) == 0 || len(rest) > 3 {
		return nil, errNotFound()
	}
	res, ok := s.reg.Lookup(group, version, rest[0])
	if !ok {
		// The resource may come from a CRD written through another replica
		// that this one's feed has not read yet: look again once the
		// registry is current, as a consistent read.
		if err := s.reg.Sync(r.Context()); err != nil {
			return nil, err
		}
		res, ok = s.reg.Lookup(group, version, rest[0])
	}
	if !ok || (namespacedPath && !res.Namespaced) {
		return nil, errNotFound()
	}
	info := &requestInfo{res: res, namespace: namespace}
	if len(rest) > 1 {
		info.name = rest[1]
	}
	gr := schema.GroupResource{Group: res.Group, Resource: res.Resource}
	if len(rest) > 2 {
		info.sub = rest[2]
		if !(info.sub == "status" && res.HasStatus || info.sub == "scale" && res.Scale != nil || info.sub == "finalize" && isNamespaces(res)) {
			if res.BuiltIn() {
				return nil, errNotFound()
			}
			// Kubernetes' CRD handler names the object.
			return nil, apierrors.NewNotFound(gr, info.name)
		}
	}
	if res.Namespaced && namespace == "" && info.name != "" {
		return nil, errNotFound()
	}
	if !res.BuiltIn() {
		if err := customResourceRequestError(r, info); err != nil {
			return info, err
		}
	}
	info.verb = verbFor(r, info, legacyWatch)
	if info.verb == "" || !slices.Contains(res.Verbs, info.verb) {
		return info, errMethodNotAllowed(gr, strings.ToLower(r.Method))
	}
	if legacyWatch && info.verb != "watch" {
		return info, errMethodNotAllowed(gr, strings.ToLower(r.Method))
	}
	var err error
	info.out, err = negotiate(r.Header.Get("Accept"), info.verb, wantsPretty(r))
	return info, err
}

// customResourceRequestError gives the answers of Kubernetes' CRD handler
// where they differ from those of built-in types: 404 for a namespaced
// custom resource addressed outside a namespace except to list or watch,
// 400 for PUT and PATCH without a name, and 415 for protobuf bodies, which
// custom resources do not have (Scale, a built-in type, aside).
func customResourceRequestError(r *http.Request, info *requestInfo) error {
	named := info.name != ""
	switch {
	case info.res.Namespaced && info.namespace == "" && (named || r.Method != http.MethodGet):
		return errNotFound()
	case !named && (r.Method == http.MethodPut || r.Method == http.MethodPatch):
		return apierrors.NewBadRequest("name must be provided")
	case (r.Method == http.MethodPost || r.Method == http.MethodPut) && info.sub != "scale":
		if typ, err := mediaType(r); err == nil && typ == protobufMediaType {
			return errUnsupportedMediaType(r.Header.Get("Content-Type"), "application/json, application/yaml")
		}
	}
	return nil
}

// verbFor maps the method and path shape to a Kubernetes verb, "" when the
// method is not allowed there.
func verbFor(r *http.Request, info *requestInfo, legacyWatch bool) string {
	allNamespaces := info.res.Namespaced && info.namespace == ""
	switch r.Method {
	case http.MethodGet:
		switch {
		case legacyWatch:
			if info.sub != "" {
				return ""
			}
			return "watch"
		case info.name != "":
			return "get"
		case queryBool(r.URL.Query(), "watch"):
			return "watch"
		}
		return "list"
	case http.MethodPost:
		if info.name == "" && !allNamespaces {
			return "create"
		}
	case http.MethodPut:
		if info.name != "" {
			return "update"
		}
	case http.MethodPatch:
		// finalize takes PUT alone, as in Kubernetes.
		if info.name != "" && info.sub != "finalize" {
			return "patch"
		}
	case http.MethodDelete:
		switch {
		case info.name != "" && info.sub == "":
			return "delete"
		case info.name == "" && !allNamespaces:
			return "deletecollection"
		}
	}
	return ""
}

// isNamespaces reports whether res is the core namespaces resource, the
// one with the finalize subresource.
func isNamespaces(res *registry.Resource) bool {
	return res.Group == "" && res.Resource == "namespaces"
}
