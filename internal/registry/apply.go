package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/yaml"
)

// apply serves server-side apply (a patch of type
// application/apply-patch+yaml): it merges the applied configuration into
// the object with structured-merge-diff, as Kubernetes does, records
// opts.FieldManager as the owner of the fields it sets, and answers 409
// with one cause per field another manager owns unless opts.Force. An
// object that does not exist is created from the configuration (not
// through the status subresource, which answers 404).
func (r *Registry) apply(ctx context.Context, res *Resource, namespace, name string, patch []byte, opts WriteOptions) (Result, error) {
	applied, warnings, err := decodeApplyPatch(res, patch, opts.FieldValidation)
	if err != nil {
		return Result{}, err
	}
	fm, err := r.fieldManager(res, opts.Subresource)
	if err != nil {
		return Result{}, apierrors.NewInternalError(err)
	}
	opts.applied = true
	for {
		result, err := r.update(ctx, res, namespace, name, opts, func(old map[string]any, rev int64) (map[string]any, error) {
			live := servedMap(res, deepCopy(old), rev)
			return mergeApplied(fm, live, deepCopy(applied), opts)
		})
		if !apierrors.IsNotFound(err) || opts.Subresource != "" {
			result.Warnings = append(warnings, result.Warnings...)
			return result, err
		}
		obj, err := mergeApplied(fm, emptyObject(res), deepCopy(applied), opts)
		if err != nil {
			return Result{}, err
		}
		if err := checkAppliedName(res, obj, name); err != nil {
			return Result{}, err
		}
		result, err = r.create(ctx, res, namespace, obj, opts, true)
		if isReason(err, reasonAlreadyExists) {
			// Created meanwhile: apply to what was created.
			continue
		}
		result.Warnings = append(warnings, result.Warnings...)
		return result, err
	}
}

// decodeApplyPatch decodes an apply configuration (YAML, or JSON which is
// YAML too), keeping integers as int64. Its apiVersion must be the one
// of the URL, as Kubernetes requires, and its kind res's. Duplicate fields
// fail under Strict field validation and are warnings under Warn.
func decodeApplyPatch(res *Resource, patch []byte, validation string) (map[string]any, []string, error) {
	var warnings []string
	js, err := yaml.YAMLToJSONStrict(patch)
	if err != nil {
		strictErr := err
		if js, err = yaml.YAMLToJSON(patch); err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
		}
		switch validation {
		case "Strict":
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("error strict decoding YAML: %v", strictErr))
		case "Ignore":
		default:
			warnings = append(warnings, strictErr.Error())
		}
	}
	if err := CheckDepth(js); err != nil {
		return nil, nil, err
	}
	obj, err := decodeValue(js)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
	}
	if v, _ := obj["apiVersion"].(string); v != res.apiVersion() {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("Incorrect version specified in apply patch. Specified patch version: %s, expected: %s", v, res.apiVersion()))
	}
	if err := checkTypeMeta(res, obj); err != nil {
		return nil, nil, err
	}
	return obj, warnings, nil
}

// mergeApplied merges the applied configuration into live with the
// FieldManager. Conflicts answer 409 with their causes; a configuration
// that does not fit the schema answers 400 (Kubernetes answers 500, an
// open bug: kubernetes/kubernetes#139253).
func mergeApplied(fm *managedfields.FieldManager, live *unstructured.Unstructured, applied map[string]any, opts WriteOptions) (map[string]any, error) {
	out, err := fm.Apply(live, &unstructured.Unstructured{Object: applied}, opts.FieldManager, opts.Force)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return nil, err
		}
		if strings.HasPrefix(err.Error(), "failed to create typed patch object") {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return nil, apierrors.NewInternalError(err)
	}
	u, ok := out.(*unstructured.Unstructured)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("apply produced %T", out))
	}
	// The FieldManager answers in the storage version.
	u.Object["apiVersion"] = live.GetAPIVersion()
	return u.Object, nil
}

// checkAppliedName requires the object an apply creates to carry the name
// of the URL (an apply cannot generate one) and no uid, as Kubernetes does.
func checkAppliedName(res *Resource, obj map[string]any, name string) error {
	if n := metaString(obj, "name"); n != name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", n, name))
	}
	if uid := metaString(obj, "uid"); uid != "" {
		return apierrors.NewConflict(res.groupResource(), name, fmt.Errorf("uid mismatch: the provided object specified uid %s, and no existing object was found", uid))
	}
	return nil
}

// scaleResource is autoscaling/v1 Scale, the kind of apply configurations
// sent to the scale subresource.
var scaleResource = &Resource{Group: scaleGroupKind.Group, Version: "v1", Resource: "scale", Kind: scaleGroupKind.Kind}

// scaleFieldManager is the FieldManager of Scales: their fields are
// deduced (a Scale's replicas are a scalar either way).
var scaleFieldManager = sync.OnceValues(func() (*managedfields.FieldManager, error) {
	gvk := schema.GroupVersionKind{Group: scaleResource.Group, Version: scaleResource.Version, Kind: scaleResource.Kind}
	conv := versionConverter{}
	return managedfields.NewDefaultFieldManager(managedfields.NewDeducedTypeConverter(), conv, noDefaulter{}, conv, gvk, gvk.GroupVersion(), "scale", nil)
})

// applyScale serves apply on the scale subresource as Kubernetes does: the
// configuration is a Scale, merged into the object's Scale whose managers
// are those of the object's spec replicas (managedfields.ScaleHandler
// maps them both ways), so that an apply of the replicas conflicts with
// whoever set them through the object, and the other way round.
func (r *Registry) applyScale(ctx context.Context, res *Resource, namespace, name string, patch []byte, opts WriteOptions) (Result, error) {
	applied, warnings, err := decodeApplyPatch(scaleResource, patch, opts.FieldValidation)
	if err != nil {
		return Result{}, err
	}
	fm, err := scaleFieldManager()
	if err != nil {
		return Result{}, apierrors.NewInternalError(err)
	}
	mappings := r.replicasPaths(res)
	gv := schema.GroupVersion{Group: res.Group, Version: res.Version}
	opts.applied = true
	result, err := r.scaleWrite(ctx, res, namespace, name, opts, func(cur, parent map[string]any) (map[string]any, error) {
		handler := managedfields.NewScaleHandler((&unstructured.Unstructured{Object: parent}).GetManagedFields(), gv, mappings)
		entries, err := handler.ToSubresource()
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		live := &unstructured.Unstructured{Object: cur}
		live.SetManagedFields(entries)
		scale, err := mergeApplied(fm, live, deepCopy(applied), opts)
		if err != nil {
			return nil, err
		}
		if entries, err = handler.ToParent((&unstructured.Unstructured{Object: scale}).GetManagedFields()); err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		(&unstructured.Unstructured{Object: parent}).SetManagedFields(entries)
		return scale, nil
	})
	result.Warnings = append(warnings, result.Warnings...)
	return result, err
}

// replicasPaths maps every served version of res to the path of its spec
// replicas (nil for versions without the scale subresource), for
// managedfields.ScaleHandler.
func (r *Registry) replicasPaths(res *Resource) managedfields.ResourcePathMappings {
	out := managedfields.ResourcePathMappings{}
	for _, g := range r.Groups() {
		if g.Group != res.Group {
			continue
		}
		for _, v := range g.Versions {
			for _, other := range g.Resources[v] {
				if other.Resource != res.Resource {
					continue
				}
				gv := schema.GroupVersion{Group: res.Group, Version: v}.String()
				out[gv] = nil
				if other.Scale != nil {
					var path fieldpath.Path
					for _, p := range splitPath(other.Scale.SpecReplicas) {
						path = append(path, fieldpath.PathElement{FieldName: &p})
					}
					out[gv] = path
				}
			}
		}
	}
	return out
}
