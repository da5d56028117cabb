package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/setpoint/setpoint/internal/storage"
)

// Update replaces the object (or its status with opts.Subresource
// "status"); obj must carry the current resourceVersion, except for the
// built-in types that allow an unconditional update.
func (r *Registry) Update(ctx context.Context, res *Resource, namespace, name string, obj *unstructured.Unstructured, opts WriteOptions) (Result, error) {
	if obj == nil || obj.Object == nil {
		return Result{}, apierrors.NewBadRequest("the request body is empty")
	}
	if err := checkSubresource(res, opts.Subresource); err != nil {
		return Result{}, err
	}
	// The body is checked before the object is read, so a malformed
	// request answers 400 or 422 whether or not the object exists.
	body := deepCopy(obj.Object)
	if _, err := checkUpdateBody(res, namespace, name, body); err != nil {
		return Result{}, err
	}
	return r.update(ctx, res, namespace, name, opts, func(map[string]any, int64) (map[string]any, error) {
		return deepCopy(body), nil
	})
}

// checkSubresource accepts "", "status" when res has it, and "finalize"
// for namespaces.
func checkSubresource(res *Resource, sub string) error {
	if sub == "" || (sub == "status" && res.HasStatus) || (sub == "finalize" && res.StorageKey == namespaceResource().StorageKey) {
		return nil
	}
	return apierrors.NewNotFound(res.groupResource(), sub)
}

// nonSpecKeys are the top-level fields whose change does not bump
// metadata.generation.
var nonSpecKeys = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "status": true}

// specChanged reports whether anything outside metadata and status differs.
func specChanged(a, b map[string]any) bool {
	for k, v := range a {
		if !nonSpecKeys[k] && !reflect.DeepEqual(v, b[k]) {
			return true
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && !nonSpecKeys[k] {
			return true
		}
	}
	return false
}

// nextFunc builds the object to write from the current one (old, stored
// at revision rev, which it must not change). The result is the caller's
// own and carries the resourceVersion the write is conditional on: 0 for
// none, rev to follow what was read, or a client's precondition.
type nextFunc func(old map[string]any, rev int64) (map[string]any, error)

// update is the read-modify-write behind Update and Patch, as Kubernetes'
// GuaranteedUpdate: it reads the object, builds the new one with next and
// writes it on condition that nobody wrote in between. When somebody did,
// it reads again and retries for as long as ctx lives; each attempt makes
// progress against the latest object. A client's resourceVersion
// precondition is checked on every read, so a stale one still answers 409.
func (r *Registry) update(ctx context.Context, res *Resource, namespace, name string, opts WriteOptions, next nextFunc) (Result, error) {
	for {
		result, err := r.tryUpdate(ctx, res, namespace, name, opts, next)
		if !errors.Is(err, errWriteConflict) {
			return result, err
		}
		if ctx.Err() != nil {
			return Result{}, storageError(storage.ErrConflict, res, name)
		}
	}
}

// errWriteConflict is tryUpdate's answer when the object changed between
// its read and its write.
var errWriteConflict = errors.New("object changed since it was read")

// tryUpdate is one attempt of update. It returns errWriteConflict when the
// object changed between its read and its write, other errors as
// StatusErrors.
func (r *Registry) tryUpdate(ctx context.Context, res *Resource, namespace, name string, opts WriteOptions, next nextFunc) (Result, error) {
	cur, err := r.store.Get(ctx, r.key(res, namespace, name))
	if err != nil {
		return Result{}, storageError(err, res, name)
	}
	old, err := decodeValue(cur.Value)
	if err != nil {
		return Result{}, apierrors.NewInternalError(err)
	}
	obj, err := next(old, cur.Revision)
	if err != nil {
		return Result{}, err
	}
	rv, err := checkUpdateBody(res, namespace, name, obj)
	if err != nil {
		return Result{}, err
	}
	if rv != 0 && rv != cur.Revision {
		// The client's precondition failed: not retried.
		return Result{}, storageError(storage.ErrConflict, res, name)
	}
	if rv == 0 {
		// An unconditional update (built-in types) replaces what was read.
		metadata(obj)["resourceVersion"] = strconv.FormatInt(cur.Revision, 10)
	}
	hooks := r.webhooksApply(res)
	var hookWarnings []string
	if hooks {
		if obj, hookWarnings, err = r.mutateUpdate(ctx, res, namespace, name, obj, old, cur.Revision, opts); err != nil {
			return Result{}, err
		}
	}
	obj = mergeForUpdate(res, obj, old, opts.Subresource)
	if err := prepareBuiltin(r, res, obj, old); err != nil {
		return Result{}, err
	}
	if res.StorageKey == crdStorageKey {
		prepare := r.prepareCRD
		if opts.Subresource == "status" {
			prepare = r.prepareCRDStatus
		}
		if err := prepare(obj, old); err != nil {
			return Result{}, err
		}
	}
	warnings, errs, err := admit(ctx, res, obj, old, opts)
	if err != nil {
		return Result{}, err
	}
	warnings = append(hookWarnings, warnings...)
	if !opts.applied {
		obj = r.trackUpdate(res, old, obj, opts)
	}
	errs = append(errs, validateBuiltin(res, obj, old)...)
	if errs = append(validateMeta(res, obj, old), errs...); len(errs) > 0 {
		return Result{}, apierrors.NewInvalid(res.groupKind(), name, errs)
	}
	if err := r.checkEscalation(ctx, res, obj, old); err != nil {
		return Result{}, err
	}
	if hooks {
		w, err := r.validateUpdate(ctx, res, namespace, name, obj, old, cur.Revision, opts)
		if err != nil {
			return Result{}, err
		}
		warnings = append(warnings, w...)
	}
	value, err := encodeFor(res, obj)
	if err != nil {
		return Result{}, err
	}
	if err := r.checkStored(value); err != nil {
		return Result{}, err
	}
	if bytes.Equal(value, mustEncode(old)) || opts.DryRun {
		return Result{Object: servedMap(res, obj, cur.Revision), Warnings: warnings}, nil
	}
	if deletionTimestamp(obj) != "" && len(finalizers(obj)) == 0 && (res.StorageKey != namespaceResource().StorageKey || len(specFinalizers(obj)) == 0) {
		// The last finalizer went: as Kubernetes, delete the object
		// instead of writing it, so watchers see it deleted (with the
		// finalizers it had) and never without finalizers.
		var del storage.Object
		if res.StorageKey == crdStorageKey {
			del, err = r.deleteStoredCRD(ctx, cur)
		} else {
			del, err = r.store.Delete(ctx, cur.Key, storage.Precondition{Revision: cur.Revision})
		}
		if errors.Is(err, storage.ErrConflict) {
			return Result{}, errWriteConflict
		}
		if err != nil {
			return Result{}, storageError(err, res, name)
		}
		if isWebhookConfig(res) {
			r.applyWebhookConfig(webhookConfigKey{res.StorageKey, name}, del.Revision, nil)
		}
		if err := r.awaitViews(ctx, res, del.Revision); err != nil {
			return Result{}, err
		}
		if res.StorageKey == crdStorageKey {
			if err := r.waitForFeed(ctx, del.Revision); err != nil {
				return Result{}, err
			}
		}
		return Result{Object: servedMap(res, obj, del.Revision), Warnings: warnings}, nil
	}
	stored, err := r.store.Update(ctx, cur.Key, value, labelsOf(obj), storage.Precondition{Revision: cur.Revision})
	if errors.Is(err, storage.ErrConflict) {
		return Result{}, errWriteConflict
	}
	if err != nil {
		return Result{}, storageError(err, res, name)
	}
	if err := r.afterWrite(ctx, res, stored, obj); err != nil {
		return Result{}, err
	}
	return Result{Object: servedMap(res, obj, stored.Revision), Warnings: warnings}, nil
}

// checkUpdateBody checks the object of an update against the request:
// type, name and namespace, and a resourceVersion where the type requires
// one, which it returns (0 for none). It sets the name and namespace in
// obj's metadata.
func checkUpdateBody(res *Resource, namespace, name string, obj map[string]any) (int64, error) {
	if err := checkTypeMeta(res, obj); err != nil {
		return 0, err
	}
	md := metadata(obj)
	if n, _ := md["name"].(string); n != "" && n != name {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", n, name))
	}
	md["name"] = name
	if _, err := requestNamespace(res, namespace, md); err != nil {
		return 0, err
	}
	rvString, _ := md["resourceVersion"].(string)
	rv, err := parseRV(rvString)
	if err != nil {
		return 0, apierrors.NewInvalid(res.groupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "resourceVersion"), rvString, "must be a non-negative integer")})
	}
	if rv == 0 && builtinFor(res) == nil {
		return 0, apierrors.NewInvalid(res.groupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "resourceVersion"), "0x0", "must be specified for an update")})
	}
	return rv, nil
}

// mustEncode encodes a decoded stored object; it cannot fail.
func mustEncode(obj map[string]any) []byte {
	b, _ := encodeValue(obj)
	return b
}

// mergeForUpdate applies Kubernetes' update strategy: the status
// subresource changes only status, the main resource keeps the status when
// the subresource exists, system metadata is carried over and generation
// follows spec changes.
func mergeForUpdate(res *Resource, obj, old map[string]any, sub string) map[string]any {
	if sub == "status" {
		next := deepCopy(old)
		if status, ok := obj["status"]; ok {
			next["status"] = status
		} else {
			delete(next, "status")
		}
		if mf, ok := metadata(obj)["managedFields"]; ok {
			metadata(next)["managedFields"] = mf
		}
		metadata(next)["resourceVersion"] = metadata(obj)["resourceVersion"]
		obj = next
	} else if res.HasStatus {
		if status, ok := old["status"]; ok {
			obj["status"] = status
		} else {
			delete(obj, "status")
		}
	}
	if res.StorageKey == namespaceResource().StorageKey {
		// Only the finalize subresource writes spec.finalizers.
		spec := deepCopy(old)["spec"]
		if sub == "finalize" {
			next := deepCopy(old)
			sm, _ := next["spec"].(map[string]any)
			if sm == nil {
				sm = map[string]any{}
			}
			if list, ok := specOf(obj)["finalizers"]; ok {
				sm["finalizers"] = list
			} else {
				delete(sm, "finalizers")
			}
			next["spec"] = sm
			metadata(next)["resourceVersion"] = metadata(obj)["resourceVersion"]
			obj, spec = next, sm
		}
		obj["spec"] = spec
	}
	md, omd := metadata(obj), metadata(old)
	if uid, _ := md["uid"].(string); uid == "" {
		md["uid"] = omd["uid"]
	}
	md["creationTimestamp"] = omd["creationTimestamp"]
	for _, k := range []string{"deletionTimestamp", "deletionGracePeriodSeconds"} {
		if v, ok := omd[k]; ok {
			md[k] = v
		} else {
			delete(md, k)
		}
	}
	gen, _ := omd["generation"].(int64)
	if specChanged(obj, old) {
		gen++
	}
	md["generation"] = gen
	return obj
}
