package registry

import (
	"context"
	"fmt"
	"math"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ScalePaths are a CRD version's scale subresource: simple JSON paths
// (".spec.replicas") of the replica counts and of the label selector
// ("" when the CRD sets none).
type ScalePaths struct {
	SpecReplicas, StatusReplicas, LabelSelector string
}

// scaleGroupKind is the Scale's kind for errors about Scale bodies.
var scaleGroupKind = schema.GroupKind{Group: "autoscaling", Kind: "Scale"}

func splitPath(p string) []string { return strings.Split(strings.TrimPrefix(p, "."), ".") }

// scaleOf builds the autoscaling/v1 Scale of a served object, and reports
// whether the spec replicas field is set.
func scaleOf(res *Resource, obj map[string]any) (map[string]any, bool, error) {
	sp := res.Scale
	spec, found, err := unstructured.NestedInt64(obj, splitPath(sp.SpecReplicas)...)
	if err != nil {
		return nil, false, err
	}
	status, _, err := unstructured.NestedInt64(obj, splitPath(sp.StatusReplicas)...)
	if err != nil {
		return nil, false, err
	}
	st := map[string]any{"replicas": status}
	if sp.LabelSelector != "" {
		sel, _, err := unstructured.NestedString(obj, splitPath(sp.LabelSelector)...)
		if err != nil {
			return nil, false, err
		}
		if sel != "" {
			st["selector"] = sel
		}
	}
	md := metadata(obj)
	smd := map[string]any{}
	for _, k := range []string{"name", "namespace", "uid", "resourceVersion", "creationTimestamp"} {
		if v, ok := md[k]; ok && v != "" {
			smd[k] = v
		}
	}
	return map[string]any{
		"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": smd,
		"spec": map[string]any{"replicas": spec}, "status": st,
	}, found, nil
}

// GetScale returns the autoscaling/v1 Scale of an object of a resource
// with the scale subresource.
func (r *Registry) GetScale(ctx context.Context, res *Resource, namespace, name string) (*unstructured.Unstructured, error) {
	if res.Scale == nil {
		return nil, apierrors.NewNotFound(res.groupResource(), "scale")
	}
	u, err := r.Get(ctx, res, namespace, name)
	if err != nil {
		return nil, err
	}
	s, found, err := scaleOf(res, u.Object)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if !found {
		return nil, apierrors.NewInternalError(fmt.Errorf("the spec replicas field %q does not exist", res.Scale.SpecReplicas))
	}
	return &unstructured.Unstructured{Object: s}, nil
}

// UpdateScale sets the object's spec replicas from an autoscaling/v1 Scale
// (PUT .../scale). A resourceVersion in the Scale is a precondition.
func (r *Registry) UpdateScale(ctx context.Context, res *Resource, namespace, name string, scale *unstructured.Unstructured, opts WriteOptions) (Result, error) {
	if res.Scale == nil {
		return Result{}, apierrors.NewNotFound(res.groupResource(), "scale")
	}
	if scale == nil || scale.Object == nil {
		return Result{}, apierrors.NewBadRequest("the request body is empty")
	}
	body := deepCopy(scale.Object)
	return r.scaleWrite(ctx, res, namespace, name, opts, func(_, _ map[string]any) (map[string]any, error) {
		return deepCopy(body), nil
	})
}

// PatchScale applies a JSON or merge patch to the object's Scale and sets
// the spec replicas from the result.
func (r *Registry) PatchScale(ctx context.Context, res *Resource, namespace, name string, pt types.PatchType, patch []byte, opts WriteOptions) (Result, error) {
	if res.Scale == nil {
		return Result{}, apierrors.NewNotFound(res.groupResource(), "scale")
	}
	if pt == types.ApplyYAMLPatchType {
		return r.applyScale(ctx, res, namespace, name, patch, opts)
	}
	if pt != types.JSONPatchType && pt != types.MergePatchType {
		// As for custom resources themselves, strategic merge patch is
		// not offered (kubectl scale sends a merge patch).
		return Result{}, unsupportedPatch(types.JSONPatchType, types.MergePatchType, types.ApplyYAMLPatchType)
	}
	if err := checkPatch(pt, patch); err != nil {
		return Result{}, err
	}
	return r.scaleWrite(ctx, res, namespace, name, opts, func(cur, _ map[string]any) (map[string]any, error) {
		return applyPatch(pt, patch, cur)
	})
}

// scaleWrite is the read-modify-write of the scale subresource: next
// returns the new Scale from the current one (spec.replicas is
// math.MinInt32 when the object has no spec replicas) and may change the
// object about to be written (parent); the Scale's spec.replicas goes to
// the object's spec replicas path and the result is the Scale of the
// written object.
func (r *Registry) scaleWrite(ctx context.Context, res *Resource, namespace, name string, opts WriteOptions, next func(cur, parent map[string]any) (map[string]any, error)) (Result, error) {
	// The manager owns the replicas it sets through the scale subresource.
	opts.Subresource = "scale"
	result, err := r.update(ctx, res, namespace, name, opts, func(old map[string]any, rev int64) (map[string]any, error) {
		obj := servedMap(res, deepCopy(old), rev).Object
		cur, found, err := scaleOf(res, obj)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		if !found {
			cur["spec"] = map[string]any{"replicas": int64(math.MinInt32)}
		}
		scale, err := next(cur, obj)
		if err != nil {
			return nil, err
		}
		replicas, rv, err := checkScale(scale, namespace, name)
		if err != nil {
			return nil, err
		}
		if replicas == math.MinInt32 {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the spec replicas field %q cannot be empty", res.Scale.SpecReplicas))
		}
		if err := unstructured.SetNestedField(obj, replicas, splitPath(res.Scale.SpecReplicas)...); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if rv != "" {
			metadata(obj)["resourceVersion"] = rv
		}
		return obj, nil
	})
	if err != nil {
		return Result{}, err
	}
	s, _, err := scaleOf(res, result.Object.Object)
	if err != nil {
		return Result{}, apierrors.NewBadRequest(err.Error())
	}
	result.Object = &unstructured.Unstructured{Object: s}
	return result, nil
}

// checkScale checks a Scale body as Kubernetes does and returns its
// spec.replicas (math.MinInt32 passes through: scaleWrite's marker of an
// object without replicas) and metadata.resourceVersion.
func checkScale(scale map[string]any, namespace, name string) (int64, string, error) {
	if k, _ := scale["kind"].(string); k != "" && k != "Scale" {
		return 0, "", apierrors.NewBadRequest(fmt.Sprintf("wrong object passed to Scale update: kind %q", k))
	}
	md, _ := scale["metadata"].(map[string]any)
	if n, _ := md["name"].(string); n != "" && n != name {
		return 0, "", apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", n, name))
	}
	if ns, _ := md["namespace"].(string); ns != "" && ns != namespace {
		return 0, "", apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	rv, _ := md["resourceVersion"].(string)
	if _, err := parseRV(rv); err != nil {
		return 0, "", err
	}
	var replicas int64
	switch v := nestedValue(scale, "spec", "replicas").(type) {
	case nil:
	case int64:
		replicas = v
	default:
		return 0, "", apierrors.NewBadRequest(fmt.Sprintf("unable to decode Scale: spec.replicas: %v is not an integer", v))
	}
	if replicas < 0 && replicas != math.MinInt32 { // the caller's marker of no replicas
		return 0, "", apierrors.NewInvalid(scaleGroupKind, name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "replicas"), replicas, "must be greater than or equal to 0")})
	}
	if replicas > math.MaxInt32 {
		return 0, "", apierrors.NewBadRequest(fmt.Sprintf("unable to decode Scale: spec.replicas: %d overflows int32", replicas))
	}
	return replicas, rv, nil
}

func nestedValue(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

// validateScaleValues checks, for a resource with the scale subresource,
// the replica counts and the label selector of an object being written, as
// Kubernetes does (with its field paths, the JSON paths themselves).
func validateScaleValues(res *Resource, obj map[string]any) field.ErrorList {
	sp := res.Scale
	if sp == nil {
		return nil
	}
	var errs field.ErrorList
	count := func(p string) {
		v, _, err := unstructured.NestedInt64(obj, splitPath(p)...)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(field.NewPath(p), v, err.Error()))
		case v < 0:
			errs = append(errs, field.Invalid(field.NewPath(p), v, "should be a non-negative integer"))
		case v > math.MaxInt32:
			errs = append(errs, field.Invalid(field.NewPath(p), v, fmt.Sprintf("should be less than or equal to %v", math.MaxInt32)))
		}
	}
	count(sp.SpecReplicas)
	count(sp.StatusReplicas)
	if sp.LabelSelector != "" {
		if v, _, err := unstructured.NestedString(obj, splitPath(sp.LabelSelector)...); err != nil {
			errs = append(errs, field.Invalid(field.NewPath(sp.LabelSelector), v, err.Error()))
		}
	}
	return errs
}
