package apiserver

import (
	"fmt"
	"net/http"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/warning"
	sigsjson "sigs.k8s.io/json"
)

// delete serves DELETE on an object. Custom resources answer the deleted
// (or, with finalizers, the terminating) object; built-in types answer a
// Success Status once the object is gone, as Kubernetes does. 202 answers a
// pending deletion that asked for orphanDependents=false.
func (s *server) delete(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	var warnings warningList
	obj, gone, err := s.reg.Delete(warning.WithWarningRecorder(r.Context(), &warnings), info.res, info.namespace, info.name, opts)
	addWarnings(w, warnings)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	code := http.StatusOK
	if !gone && opts.OrphanDependents != nil && !*opts.OrphanDependents { //nolint:staticcheck // still sent by clients
		code = http.StatusAccepted
	}
	if gone && isBuiltin(info) {
		status := withTypeMeta(metav1.Status{
			Status: metav1.StatusSuccess, Code: http.StatusOK,
			Details: &metav1.StatusDetails{Name: info.name, Group: info.res.Group, Kind: info.res.Resource, UID: obj.GetUID()},
		})
		s.writeBody(w, info.out, code, &status)
		return
	}
	s.respondObject(w, r, info, code, obj.Object)
}

// deleteCollection serves DELETE on a collection and answers the list of
// deleted objects.
func (s *server) deleteCollection(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	lopts, err := listOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	dopts, err := s.deleteOptions(w, r)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	var warnings warningList
	list, err := s.reg.DeleteCollection(warning.WithWarningRecorder(r.Context(), &warnings), info.res, info.namespace, lopts, dopts)
	addWarnings(w, warnings)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.respondList(w, r, info, list)
}

// deleteOptions reads DeleteOptions from the query (gracePeriodSeconds,
// propagationPolicy, orphanDependents, dryRun) and then from the body,
// whose fields win, and validates them: invalid options answer 422 as in
// Kubernetes.
func (s *server) deleteOptions(w http.ResponseWriter, r *http.Request) (*metav1.DeleteOptions, error) {
	opts, err := s.readDeleteOptions(w, r)
	if err != nil {
		return nil, err
	}
	if errs := metavalidation.ValidateDeleteOptions(opts); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: metaGroup, Kind: "DeleteOptions"}, "", errs)
	}
	return opts, nil
}

// readDeleteOptions decodes the DeleteOptions of a request.
func (s *server) readDeleteOptions(w http.ResponseWriter, r *http.Request) (*metav1.DeleteOptions, error) {
	q := r.URL.Query()
	opts, err := queryDeleteOptions(q)
	if err != nil {
		return nil, err
	}
	buf, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	defer putBuffer(buf)
	if buf.Len() == 0 {
		return opts, nil
	}
	format, err := objectFormat(r)
	if err != nil {
		return nil, err
	}
	if format == bodyProtobuf {
		return protobufDeleteOptions(buf.Bytes())
	}
	js, _, err := toJSON(buf.Bytes(), format)
	if err != nil {
		return nil, err
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, opts); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not valid DeleteOptions: %v", err))
	}
	switch opts.Kind {
	case "", "DeleteOptions":
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body has kind %q, expected DeleteOptions", opts.Kind))
	}
	return opts, nil
}

// queryDeleteOptions reads the DeleteOptions query parameters.
func queryDeleteOptions(q url.Values) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{DryRun: q["dryRun"]}
	grace, ok, err := queryInt(q, "gracePeriodSeconds")
	if err != nil {
		return nil, err
	}
	if ok {
		opts.GracePeriodSeconds = &grace
	}
	if p := q.Get("propagationPolicy"); p != "" {
		policy := metav1.DeletionPropagation(p)
		opts.PropagationPolicy = &policy
	}
	if _, ok := q["orphanDependents"]; ok {
		orphan := queryBool(q, "orphanDependents")
		opts.OrphanDependents = &orphan //nolint:staticcheck // still sent by clients
	}
	return opts, nil
}

// protobufDeleteOptions decodes DeleteOptions sent as protobuf by typed
// clientsets.
func protobufDeleteOptions(data []byte) (*metav1.DeleteOptions, error) {
	obj, err := decodeProtobuf(data)
	if err != nil {
		return nil, err
	}
	opts, ok := obj.(*metav1.DeleteOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body has kind %q, expected DeleteOptions", obj.GetObjectKind().GroupVersionKind().Kind))
	}
	return opts, nil
}

// warningList collects the warnings a delete adds to its context (those
// of admission webhooks) for the response's Warning headers.
type warningList []string

// AddWarning implements warning.Recorder.
func (l *warningList) AddWarning(_, text string) { *l = append(*l, text) }
