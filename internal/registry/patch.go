package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// maxJSONPatchOperations bounds the operations of one JSON patch, as
// Kubernetes does.
const maxJSONPatchOperations = 10000

// Patch applies a JSON patch or merge patch to the current object and
// writes the result, reading again and reapplying the patch when another
// writer got there first, for as long as ctx lives. A patch that sets
// metadata.resourceVersion makes it a precondition: a stale one answers
// 409. Server-side apply is apply's. Strategic merge patch (and apply in
// CBOR) answers 415.
func (r *Registry) Patch(ctx context.Context, res *Resource, namespace, name string, pt types.PatchType, patch []byte, opts WriteOptions) (Result, error) {
	if err := checkSubresource(res, opts.Subresource); err != nil {
		return Result{}, err
	}
	switch pt {
	case types.ApplyYAMLPatchType:
		return r.apply(ctx, res, namespace, name, patch, opts)
	case types.JSONPatchType, types.MergePatchType:
		if err := checkPatch(pt, patch); err != nil {
			return Result{}, err
		}
	default:
		return Result{}, unsupportedPatch(types.JSONPatchType, types.MergePatchType, types.ApplyYAMLPatchType)
	}
	return r.update(ctx, res, namespace, name, opts, func(old map[string]any, rev int64) (map[string]any, error) {
		return applyPatch(pt, patch, servedMap(res, deepCopy(old), rev).Object)
	})
}

// checkPatch checks a JSON patch or merge patch before any object is read:
// a malformed one answers 400, a JSON patch with too many operations 413.
func checkPatch(pt types.PatchType, patch []byte) error {
	if err := CheckDepth(patch); err != nil {
		return err
	}
	if pt == types.MergePatchType {
		var doc map[string]any
		if err := json.Unmarshal(patch, &doc); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
		}
		return nil
	}
	ops, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	if len(ops) > maxJSONPatchOperations {
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf(
			"The allowed maximum operations in a JSON patch is %d, got %d", maxJSONPatchOperations, len(ops)))
	}
	return nil
}

// unsupportedPatch is the 415 answer to a patch type that is not offered.
func unsupportedPatch(accepted ...types.PatchType) error {
	names := make([]string, len(accepted))
	for i, pt := range accepted {
		names[i] = string(pt)
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: "the body of the request was in an unknown format - accepted media types include: " + strings.Join(names, ", "),
	}}
}

// applyPatch applies a JSON patch or merge patch, checked by checkPatch,
// to cur and decodes the result.
func applyPatch(pt types.PatchType, patch []byte, cur map[string]any) (map[string]any, error) {
	doc, err := json.Marshal(cur)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var out []byte
	switch pt {
	case types.JSONPatchType:
		ops, err := jsonpatch.DecodePatch(patch)
		if err == nil {
			out, err = ops.Apply(doc)
		}
		if err != nil {
			return nil, patchError(err)
		}
	default:
		out, err = jsonpatch.MergePatch(doc, patch)
		if err != nil {
			return nil, patchError(err)
		}
	}
	obj, err := decodeValue(out)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patched object is not a JSON object: %v", err))
	}
	return obj, nil
}

// patchError is the answer for a patch that cannot be applied: 422 for a
// well-formed patch that fails (a failed test, a missing path), as
// Kubernetes answers, 400 otherwise. Like Kubernetes' answer, the 422 names
// no kind or object (kubectl then prints "The request is invalid"); unlike
// it, the message says what failed.
func patchError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "test") || strings.Contains(msg, "missing") {
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
			Message: msg, Details: &metav1.StatusDetails{},
		}}
	}
	return apierrors.NewBadRequest(msg)
}
