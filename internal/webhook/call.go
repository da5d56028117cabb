package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/endpoints/request"
	sigsjson "sigs.k8s.io/json"

	"github.com/setpoint/setpoint/internal/registry"
)

// callError is a failure to get a usable answer from a webhook: it could
// not be reached, timed out, or answered something malformed. The
// webhook's failurePolicy decides whether it fails the request.
type callError struct {
	webhook string
	err     error
}

func (e *callError) Error() string {
	return fmt.Sprintf("failed calling webhook %q: %v", e.webhook, e.err)
}

func (e *callError) Unwrap() error { return e.err }

// failure is the answer to a request a failing webhook rejects: an
// internal error naming the webhook, as Kubernetes words it.
func (e *callError) failure() error {
	return apierrors.NewInternalError(e)
}

// dryRunUnsupported is the answer to a dry run that reaches a webhook that
// may have side effects, whatever its failurePolicy.
func dryRunUnsupported(name string) error {
	return apierrors.NewBadRequest(fmt.Sprintf("admission webhook %q does not support dry run", name))
}

// denied is the answer to a request a webhook rejected: its status, with a
// message that names the webhook, a failure code (400 unless it gave one
// of at least 400) and status Failure.
func denied(name string, result *metav1.Status) error {
	var s metav1.Status
	if result != nil {
		s = *result
	}
	if s.Code < http.StatusBadRequest {
		s.Code = http.StatusBadRequest
	}
	s.Status = metav1.StatusFailure
	prefix := fmt.Sprintf("admission webhook %q denied the request", name)
	switch {
	case s.Message != "":
		s.Message = prefix + ": " + s.Message
	case s.Reason != "":
		s.Message = prefix + ": " + string(s.Reason)
	default:
		s.Message = prefix + " without explanation"
	}
	s.TypeMeta = metav1.TypeMeta{}
	return &apierrors.StatusError{ErrStatus: s}
}

// sideEffectFree reports whether a webhook may be called on a dry run.
func sideEffectFree(c admissionregistrationv1.SideEffectClass) bool {
	return c == admissionregistrationv1.SideEffectClassNone || c == admissionregistrationv1.SideEffectClassNoneOnDryRun
}

// call sends req, as inv says, with the objects obj and old, to the
// webhook and returns its checked response. Errors are a *callError, or
// the StatusError of a dry run the webhook cannot take.
func (d *Dispatcher) call(ctx context.Context, inv *invocation, req *registry.AdmissionRequest, obj, old map[string]any, mutating bool) (*admissionv1.AdmissionResponse, error) {
	h := inv.h
	if req.DryRun && !sideEffectFree(h.sideEffects) {
		return nil, dryRunUnsupported(h.name)
	}
	if h.configErr != nil {
		return nil, &callError{h.name, h.configErr}
	}
	uid := uuid.NewUUID()
	body, err := reviewBody(ctx, uid, inv, req, obj, old)
	if err != nil {
		return nil, &callError{h.name, fmt.Errorf("could not create admission objects: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	respBody, err := d.post(ctx, h, body)
	if err != nil {
		return nil, &callError{h.name, fmt.Errorf("failed to call webhook: %w", err)}
	}
	resp, err := parseResponse(respBody, uid, mutating)
	if err != nil {
		return nil, &callError{h.name, fmt.Errorf("received invalid webhook response: %w", err)}
	}
	return resp, nil
}

// post sends body to h and returns the response body, read up to the
// dispatcher's bound. The request tells the webhook its timeout, as
// Kubernetes does, in whole seconds rounded up.
func (d *Dispatcher) post(ctx context.Context, h *hook, body []byte) ([]byte, error) {
	u := h.url
	if deadline, ok := ctx.Deadline(); ok {
		secs := int64((time.Until(deadline) + time.Second - 1) / time.Second)
		u += "?timeout=" + strconv.FormatInt(max(secs, 1), 10) + "s"
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(httpReq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, d.maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(b)) > d.maxResponse {
		return nil, fmt.Errorf("the response is larger than %d bytes", d.maxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("the server responded with status code %d", resp.StatusCode)
	}
	return b, nil
}

// reviewBody encodes the AdmissionReview sent for req, as the invocation
// says: objects converted to its version (only apiVersion differs).
func reviewBody(ctx context.Context, uid types.UID, inv *invocation, req *registry.AdmissionRequest, obj, old map[string]any) ([]byte, error) {
	res := req.Resource
	ar := &admissionv1.AdmissionRequest{
		UID:                uid,
		Kind:               metav1.GroupVersionKind(inv.kind),
		Resource:           metav1.GroupVersionResource(inv.resource),
		SubResource:        req.Subresource,
		RequestKind:        &metav1.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind},
		RequestResource:    &metav1.GroupVersionResource{Group: res.Group, Version: res.Version, Resource: res.Resource},
		Name:               req.Name,
		Namespace:          req.Namespace,
		Operation:          req.Operation,
		DryRun:             &req.DryRun,
		RequestSubResource: req.Subresource,
	}
	if u, ok := request.UserFrom(ctx); ok {
		ar.UserInfo = authenticationv1.UserInfo{Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}
		if extra := u.GetExtra(); len(extra) > 0 {
			ar.UserInfo.Extra = make(map[string]authenticationv1.ExtraValue, len(extra))
			for k, v := range extra {
				ar.UserInfo.Extra[k] = v
			}
		}
	}
	for _, p := range []struct {
		dst *runtime.RawExtension
		src map[string]any
	}{{&ar.Object, obj}, {&ar.OldObject, old}, {&ar.Options, req.Options}} {
		if p.src == nil {
			continue
		}
		b, err := json.Marshal(asVersion(p.src, inv))
		if err != nil {
			return nil, err
		}
		p.dst.Raw = b
	}
	return json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Request:  ar,
	})
}

// asVersion returns obj as the invocation's version: obj itself, or a
// shallow copy with that apiVersion. Options objects and Scales keep
// theirs.
func asVersion(obj map[string]any, inv *invocation) map[string]any {
	want := inv.kind.GroupVersion().String()
	if obj["kind"] != inv.kind.Kind || obj["apiVersion"] == want {
		return obj
	}
	cp := make(map[string]any, len(obj))
	for k, v := range obj {
		cp[k] = v
	}
	cp["apiVersion"] = want
	return cp
}

// reviewResponse is the part of an AdmissionReview read back, with
// allowed kept apart to tell a missing one from false.
type reviewResponse struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   *struct {
		admissionv1.AdmissionResponse
		Allowed *bool `json:"allowed"`
	} `json:"response"`
}

// parseResponse decodes and checks a webhook's AdmissionReview: an
// admission.k8s.io/v1 AdmissionReview, case-sensitive, with no key given
// twice, whose response carries the request's uid and allowed. A
// validating webhook may not send a patch; a mutating one sends a patch
// and patchType JSONPatch together or neither.
func parseResponse(body []byte, uid types.UID, mutating bool) (*admissionv1.AdmissionResponse, error) {
	var r reviewResponse
	strict, err := sigsjson.UnmarshalStrict(body, &r, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, errors.Join(strict...)
	}
	if r.APIVersion != admissionv1.SchemeGroupVersion.String() || r.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got %q, Kind=%q", r.APIVersion, r.Kind)
	}
	if r.Response == nil {
		return nil, errors.New("webhook response was absent")
	}
	out := r.Response.AdmissionResponse
	if out.UID != uid {
		return nil, fmt.Errorf("expected response.uid=%q, got %q", uid, out.UID)
	}
	if r.Response.Allowed == nil {
		return nil, errors.New("webhook response lacks response.allowed")
	}
	out.Allowed = *r.Response.Allowed
	switch {
	case !mutating && len(out.Patch) > 0:
		return nil, errors.New("validating webhook may not return response.patch")
	case !mutating && out.PatchType != nil:
		return nil, errors.New("validating webhook may not return response.patchType")
	case len(out.Patch) > 0 && out.PatchType == nil:
		return nil, errors.New("webhook returned response.patch but not response.patchType")
	case len(out.Patch) == 0 && out.PatchType != nil:
		return nil, errors.New("webhook returned response.patchType but not response.patch")
	case out.PatchType != nil && *out.PatchType != admissionv1.PatchTypeJSONPatch:
		return nil, fmt.Errorf("unsupported patch type %q", *out.PatchType)
	}
	return &out, nil
}
