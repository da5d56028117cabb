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
	case types.JSONPatchType:
		if _, err := jsonpatch.DecodePatch(patch); err != nil {
			return Result{}, apierrors.NewBadRequest(err.Error())
		}
	case types.ApplyYAMLPatchType:
		return r.apply(ctx, res, namespace, name, patch, opts)
	case types.MergePatchType:
		var doc map[string]any
		if err := json.Unmarshal(patch, &doc); err != nil {
			return Result{}, apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
		}
	default:
		return Result{}, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
			Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s", types.JSONPatchType, types.MergePatchType, types.ApplyYAMLPatchType),
		}}
	}
	return r.update(ctx, res, namespace, name, opts, func(old map[string]any, rev int64) (map[string]any, error) {
		return applyPatch(res, pt, patch, servedMap(res, deepCopy(old), rev).Object)
	})
}

// applyPatch applies patch to cur and decodes the result.
func applyPatch(res *Resource, pt types.PatchType, patch []byte, cur map[string]any) (map[string]any, error) {
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
			return nil, patchError(res, err)
		}
	default:
		out, err = jsonpatch.MergePatch(doc, patch)
		if err != nil {
			return nil, patchError(res, err)
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
// Kubernetes answers, 400 otherwise.
func patchError(res *Resource, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "test") || strings.Contains(msg, "missing") || strings.Contains(msg, "doc is missing") {
		e := apierrors.NewInvalid(res.groupKind(), "", nil)
		e.ErrStatus.Message = msg
		return e
	}
	return apierrors.NewBadRequest(msg)
}
