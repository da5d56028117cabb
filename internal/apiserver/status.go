package apiserver

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// internalErrorMessage is what clients see for errors that are not
// StatusErrors; the error itself is logged.
const internalErrorMessage = "an error on the server has prevented the request from succeeding"

// statusFor maps err to the Status sent to the client. It is the one place
// errors become HTTP answers: a *apierrors.StatusError is sent as it is
// (with kind and apiVersion filled in), anything else becomes a 500
// InternalError with a generic message. serverFault reports whether the
// error is the server's fault (a 5xx other than 503 and 504) and must be
// logged.
func statusFor(err error) (status metav1.Status, serverFault bool) {
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		return withTypeMeta(internalStatus()), true
	}
	status = se.Status()
	if status.Code == 0 {
		status.Code = http.StatusInternalServerError
	}
	if status.Status == "" {
		status.Status = metav1.StatusFailure
	}
	return withTypeMeta(status), status.Code >= http.StatusInternalServerError && status.Code != http.StatusServiceUnavailable && status.Code != http.StatusGatewayTimeout
}

// internalStatus is the 500 answer that reveals nothing about the cause.
func internalStatus() metav1.Status {
	return metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
		Reason: metav1.StatusReasonInternalError, Message: internalErrorMessage,
	}
}

// errMethodNotAllowedPath is the 405 answer for a path that is not a
// resource.
func errMethodNotAllowedPath(r *http.Request) error {
	return apierrors.NewGenericServerResponse(http.StatusMethodNotAllowed, strings.ToLower(r.Method), schema.GroupResource{}, "", "", 0, false)
}

// withTypeMeta sets kind and apiVersion, which clients need to decode a
// Status (inside watch events too).
func withTypeMeta(status metav1.Status) metav1.Status {
	status.Kind = "Status"
	status.APIVersion = "v1"
	return status
}

// writeError sends err as a Status in the negotiated format.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, out output, err error) {
	status, fault := statusFor(err)
	if fault {
		s.log.Error("apiserver: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if d := status.Details; d != nil && d.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfterSeconds)))
	}
	s.writeBody(w, out, int(status.Code), &status)
}

// WriteStatus sends err as a Kubernetes Status: JSON, or YAML when the
// Accept header asks for it first, with Retry-After when the Status
// carries one. It is for the filters in front of the API (authentication,
// flow control, authorization), whose answers clients decode as they do
// the API's. An error that is not a StatusError becomes a 500 that
// reveals nothing, and is logged.
func WriteStatus(w http.ResponseWriter, r *http.Request, err error) {
	out, nerr := negotiate(r.Header.Get("Accept"), "", false)
	if nerr != nil {
		out = output{}
	}
	(&server{log: slog.Default()}).writeError(w, r, out, err)
}

// errNotFound is the answer for paths that name nothing served.
func errNotFound() error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, "", schema.GroupResource{}, "", "", 0, false)
}

// errMethodNotAllowed is the answer for a method a path does not support.
func errMethodNotAllowed(gr schema.GroupResource, method string) error {
	return apierrors.NewMethodNotSupported(gr, method)
}

// errNotAcceptable is the answer when no type in Accept can be produced.
func errNotAcceptable() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable,
		Message: "only the following media types are accepted: application/json, application/yaml",
	}}
}

// errUnsupportedMediaType is the answer for a body type that cannot be read.
func errUnsupportedMediaType(contentType string, accepted string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: "the body of the request was in an unknown format (" + strconv.Quote(contentType) + ") - accepted media types include: " + accepted,
	}}
}
