package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/storage"
)

// checkDeleteOptions validates the options Kubernetes validates.
func checkDeleteOptions(opts *metav1.DeleteOptions) error {
	if opts == nil {
		return nil
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy: Unsupported value: %q: supported values: \"Foreground\", \"Background\", \"Orphan\"", *p))
		}
		if opts.OrphanDependents != nil {
			return apierrors.NewBadRequest("orphanDependents and propagationPolicy cannot both be set")
		}
	}
	for _, d := range opts.DryRun {
		if d != metav1.DryRunAll {
			return apierrors.NewBadRequest(fmt.Sprintf("dryRun: Unsupported value: %q: supported values: \"All\"", d))
		}
	}
	return nil
}

// checkPreconditions enforces DeleteOptions.Preconditions.
func checkPreconditions(res *Resource, name string, opts *metav1.DeleteOptions, obj map[string]any, rev int64) error {
	if opts == nil || opts.Preconditions == nil {
		return nil
	}
	p := opts.Preconditions
	if p.UID != nil && string(*p.UID) != metaString(obj, "uid") {
		return apierrors.NewConflict(res.groupResource(), name,
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, metaString(obj, "uid")))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != strconv.FormatInt(rev, 10) {
		return apierrors.NewConflict(res.groupResource(), name,
			fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, rev))
	}
	return nil
}

// Delete deletes the object, or marks it with deletionTimestamp while it has
// finalizers. It returns the last state and whether it is gone now.
//
// The options' propagation policy is recorded as Kubernetes records it, in
// finalizers the garbage collector acts on: Foreground adds
// foregroundDeletion (the object stays until its dependents are gone),
// Orphan (or orphanDependents=true) adds orphan (the object stays until its
// dependents no longer reference it), Background deletes at once and leaves
// the dependents to the collector. A later delete may switch the policy of
// an object already being deleted.
func (r *Registry) Delete(ctx context.Context, res *Resource, namespace, name string, opts *metav1.DeleteOptions) (*unstructured.Unstructured, bool, error) {
	return r.delete(ctx, res, namespace, name, opts, true)
}

// delete implements Delete; admitted asks for the admission webhooks,
// which the registry's own clean-up of a deleted CRD's objects skips, as
// Kubernetes' does.
func (r *Registry) delete(ctx context.Context, res *Resource, namespace, name string, opts *metav1.DeleteOptions, admitted bool) (*unstructured.Unstructured, bool, error) {
	if err := checkDeleteOptions(opts); err != nil {
		return nil, false, err
	}
	if res.StorageKey == namespaceResource().StorageKey && slices.Contains(protectedNamespaces, name) {
		return nil, false, apierrors.NewForbidden(res.groupResource(), name, errors.New("this namespace may not be deleted"))
	}
	dryRun := opts != nil && len(opts.DryRun) > 0
	key := r.key(res, namespace, name)
	// A conflict means another writer changed the object since it was
	// read: read again, for as long as the request lives.
	for ctx.Err() == nil {
		cur, err := r.store.Get(ctx, key)
		if err != nil {
			return nil, false, storageError(err, res, name)
		}
		obj, err := decodeValue(cur.Value)
		if err != nil {
			return nil, false, apierrors.NewInternalError(err)
		}
		if err := checkPreconditions(res, name, opts, obj, cur.Revision); err != nil {
			return nil, false, err
		}
		if admitted && r.webhooksApply(res) {
			if err := r.admitDelete(ctx, res, namespace, name, obj, cur.Revision, opts); err != nil {
				return nil, false, err
			}
		}
		fs, changed := propagationFinalizers(finalizers(obj), opts)
		if changed {
			setFinalizers(obj, fs)
		}
		pending, err := r.prepareDeletion(res, obj)
		if err != nil {
			return nil, false, err
		}
		if pending {
			if deletionTimestamp(obj) != "" && !changed {
				// A second delete returns the object unchanged.
				return servedMap(res, obj, cur.Revision), false, nil
			}
			if deletionTimestamp(obj) == "" {
				metadata(obj)["deletionTimestamp"] = r.now().UTC().Format(timeLayout)
				metadata(obj)["deletionGracePeriodSeconds"] = int64(0)
			}
			if dryRun {
				return servedMap(res, obj, cur.Revision), false, nil
			}
			value, err := encodeValue(obj)
			if err != nil {
				return nil, false, err
			}
			stored, err := r.store.Update(ctx, key, value, labelsOf(obj), storage.Precondition{Revision: cur.Revision})
			if errors.Is(err, storage.ErrConflict) {
				continue
			}
			if err != nil {
				return nil, false, storageError(err, res, name)
			}
			if err := r.afterWrite(ctx, res, stored, obj); err != nil {
				return nil, false, err
			}
			r.wake()
			return servedMap(res, obj, stored.Revision), false, nil
		}
		if dryRun {
			return servedMap(res, obj, cur.Revision), true, nil
		}
		del, err := r.store.Delete(ctx, key, storage.Precondition{Revision: cur.Revision})
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, false, storageError(err, res, name)
		}
		if isWebhookConfig(res) {
			r.applyWebhookConfig(webhookConfigKey{res.StorageKey, name}, del.Revision, nil)
		}
		if err := r.awaitViews(ctx, res, del.Revision); err != nil {
			return nil, false, err
		}
		return servedMap(res, obj, del.Revision), true, nil
	}
	return nil, false, storageError(ctx.Err(), res, name)
}

// propagationFinalizers returns the finalizers of an object being deleted
// with opts: current without the orphan and foregroundDeletion finalizers,
// plus the one the options ask for, and whether that differs from current.
// Without an explicit policy a finalizer already present is kept, and
// otherwise the type's default applies: Background for every type served
// here (Kubernetes defaults to orphan only for the legacy workload API
// versions, which are not served).
func propagationFinalizers(current []string, opts *metav1.DeleteOptions) ([]string, bool) {
	orphan := slices.Contains(current, metav1.FinalizerOrphanDependents)
	foreground := !orphan && slices.Contains(current, metav1.FinalizerDeleteDependents)
	switch {
	case opts == nil:
	case opts.OrphanDependents != nil: //nolint:staticcheck // still sent by clients
		orphan, foreground = *opts.OrphanDependents, false //nolint:staticcheck // still sent by clients
	case opts.PropagationPolicy != nil:
		orphan = *opts.PropagationPolicy == metav1.DeletePropagationOrphan
		foreground = *opts.PropagationPolicy == metav1.DeletePropagationForeground
	}
	out := slices.DeleteFunc(slices.Clone(current), func(f string) bool {
		return f == metav1.FinalizerOrphanDependents || f == metav1.FinalizerDeleteDependents
	})
	if orphan {
		out = append(out, metav1.FinalizerOrphanDependents)
	}
	if foreground {
		out = append(out, metav1.FinalizerDeleteDependents)
	}
	changed := len(out) != len(current)
	for _, f := range out {
		changed = changed || !slices.Contains(current, f)
	}
	return out, changed
}

// prepareDeletion adds what the type's deletion needs to obj (CRD cleanup
// finalizer, namespace phase) and reports whether the deletion must wait
// for finalizers.
func (r *Registry) prepareDeletion(res *Resource, obj map[string]any) (bool, error) {
	switch res.StorageKey {
	case crdStorageKey:
		if deletionTimestamp(obj) != "" {
			return true, nil
		}
		m, err := r.markCRDTerminating(obj)
		if err != nil {
			return false, err
		}
		clear(obj)
		for k, v := range m {
			obj[k] = v
		}
		return true, nil
	case namespaceResource().StorageKey:
		markNamespaceTerminating(obj)
		return len(specFinalizers(obj)) > 0 || len(finalizers(obj)) > 0, nil
	}
	return len(finalizers(obj)) > 0, nil
}

// DeleteCollection deletes every object the list options select and returns
// them.
func (r *Registry) DeleteCollection(ctx context.Context, res *Resource, namespace string, lopts ListOptions, dopts *metav1.DeleteOptions) (*unstructured.UnstructuredList, error) {
	if err := checkDeleteOptions(dopts); err != nil {
		return nil, err
	}
	objs, rev, _, err := r.list(ctx, res, namespace, lopts, nil)
	if err != nil {
		return nil, err
	}
	out := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": res.apiVersion(), "kind": res.ListKind}}
	out.SetResourceVersion(strconv.FormatInt(rev, 10))
	for _, o := range objs {
		u, _, err := r.Delete(ctx, res, o.Namespace, o.Name, dopts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, *u)
	}
	return out, nil
}

// cleanupInterval is how often terminating CRDs are
// rechecked when nothing wakes the worker (objects waiting for others'
// finalizers).
const cleanupInterval = time.Second

// cleanupLoop deletes the content of terminating CRDs.
func (r *Registry) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(cleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		}
		r.cleanupOnce(ctx)
	}
}

// cleanupOnce makes one pass over terminating CRDs. Errors
// are retried on the next pass.
func (r *Registry) cleanupOnce(ctx context.Context) {
	r.mu.RLock()
	var terminating []crdEntry
	for _, e := range r.crds {
		if e.crd != nil && e.crd.DeletionTimestamp != nil {
			terminating = append(terminating, e)
		}
	}
	r.mu.RUnlock()
	for _, e := range terminating {
		_ = r.cleanCRD(ctx, e)
	}
}

// cleanCRD deletes every object of a terminating CRD, then removes its
// cleanup finalizer (and the CRD when no other finalizer is left).
func (r *Registry) cleanCRD(ctx context.Context, e crdEntry) error {
	if len(e.resources) > 0 {
		left, err := r.deleteAll(ctx, e.resources[0], "")
		if err != nil || left > 0 {
			return err
		}
	}
	res := crdResource()
	for ctx.Err() == nil {
		cur, err := r.store.Get(ctx, storage.Key{Resource: crdStorageKey, Name: e.crd.Name})
		if err != nil {
			return ignoreNotFound(err)
		}
		obj, err := decodeValue(cur.Value)
		if err != nil {
			return err
		}
		fs := slices.DeleteFunc(finalizers(obj), func(f string) bool { return f == crdCleanupFinalizer })
		setFinalizers(obj, fs)
		if len(fs) == 0 {
			_, err := r.deleteStoredCRD(ctx, cur)
			if errors.Is(err, storage.ErrConflict) {
				continue
			}
			return err
		}
		value, err := encodeValue(obj)
		if err != nil {
			return err
		}
		stored, err := r.store.Update(ctx, cur.Key, value, labelsOf(obj), storage.Precondition{Revision: cur.Revision})
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		return r.afterWrite(ctx, res, stored, obj)
	}
	return ctx.Err()
}

func ignoreConflict(err error) error {
	if errors.Is(err, storage.ErrConflict) {
		return nil
	}
	return err
}
