package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/warning"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/storage"
)

// WebhookAdmission runs the admission webhooks of ValidatingWebhookConfigurations
// and MutatingWebhookConfigurations on the writes the registry serves.
// Package webhook implements it; the registry only calls it.
type WebhookAdmission interface {
	// Configure replaces the configurations in force, each list sorted by
	// name. The registry calls it whenever a stored configuration changes,
	// written through this replica or (seen on the change feed) another,
	// never concurrently. The callee keeps the slices.
	Configure(mutating []*admissionregistrationv1.MutatingWebhookConfiguration, validating []*admissionregistrationv1.ValidatingWebhookConfiguration)
	// Mutate runs the mutating webhooks that match req, one after the
	// other, and returns the object to admit: req.Object itself when no
	// webhook changed it, a new map otherwise. It returns the webhooks'
	// warnings. An error, a *StatusError, rejects the write.
	Mutate(ctx context.Context, req *AdmissionRequest) (map[string]any, []string, error)
	// Validate runs the validating webhooks that match req and returns
	// their warnings. An error, a *StatusError, rejects the write.
	Validate(ctx context.Context, req *AdmissionRequest) ([]string, error)
}

// AdmissionRequest describes one write for admission webhooks. Its
// objects are in the served form of Resource (of Kind) and must not be
// modified.
type AdmissionRequest struct {
	// Resource is the resource the request names.
	Resource *Resource
	// Kind is the kind of Object and OldObject: Resource's kind, or
	// autoscaling/v1 Scale for the scale subresource.
	Kind schema.GroupVersionKind
	// Subresource is "", "status", "scale" or "finalize".
	Subresource string
	// Operation is CREATE, UPDATE or DELETE.
	Operation admissionv1.Operation
	// Name and Namespace of the object. For a Namespace, Namespace is its
	// name, as Kubernetes sets it.
	Name, Namespace string
	// Object is the new object (nil on DELETE); OldObject the stored one
	// (nil on CREATE).
	Object, OldObject map[string]any
	// Options is the CreateOptions, UpdateOptions or DeleteOptions object.
	Options map[string]any
	// DryRun tells that nothing will be written.
	DryRun bool
	// Equivalents returns the other served versions of Resource, for
	// matchPolicy Equivalent (their objects differ only in apiVersion).
	Equivalents func() []*Resource
	// NamespaceLabels returns the labels of the namespace of the request:
	// those of Object when it is a Namespace being created or updated,
	// otherwise those of the stored namespace (a 404 StatusError when it
	// does not exist). Only namespaced requests and Namespaces call it.
	NamespaceLabels func(ctx context.Context) (map[string]string, error)
}

// webhookConfigs mirrors the stored webhook configurations for the
// WebhookAdmission.
type webhookConfigs struct {
	// mu serialises changes and the Configure calls they make.
	mu      sync.Mutex
	entries map[webhookConfigKey]webhookConfigEntry
	// active is set while any configuration holds a webhook: writes skip
	// all webhook work otherwise.
	active atomic.Bool
	// progress of the two mirrors (validating, mutating); nil without a
	// feed.
	progress [2]*mirrorProgress
}

type webhookConfigKey struct{ storageKey, name string }

// webhookConfigEntry is one configuration as of rev; both pointers are nil
// once it is deleted.
type webhookConfigEntry struct {
	rev        int64
	validating *admissionregistrationv1.ValidatingWebhookConfiguration
	mutating   *admissionregistrationv1.MutatingWebhookConfiguration
}

// webhookResources are the two configuration resources.
var webhookResources = []*Resource{&validatingWebhookBuiltin.Resource, &mutatingWebhookBuiltin.Resource}

// applyWebhookConfig records the configuration stored under key as of rev
// (obj nil = deleted) and, when that is news, hands every configuration to
// the WebhookAdmission. A configuration that does not decode is ignored
// (validation keeps such objects out).
func (r *Registry) applyWebhookConfig(key webhookConfigKey, rev int64, obj map[string]any) {
	if r.webhooks == nil {
		return
	}
	e := webhookConfigEntry{rev: rev}
	if obj != nil {
		var err error
		if key.storageKey == validatingWebhooksKey {
			e.validating = new(admissionregistrationv1.ValidatingWebhookConfiguration)
			err = remarshal(obj, e.validating)
		} else {
			e.mutating = new(admissionregistrationv1.MutatingWebhookConfiguration)
			err = remarshal(obj, e.mutating)
		}
		if err != nil {
			return
		}
	}
	c := &r.webhookConfigs
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.entries[key]; ok && cur.rev >= rev {
		return
	}
	c.entries[key] = e
	var mutating []*admissionregistrationv1.MutatingWebhookConfiguration
	var validating []*admissionregistrationv1.ValidatingWebhookConfiguration
	hooks := 0
	for _, e := range c.entries {
		if e.mutating != nil {
			mutating = append(mutating, e.mutating)
			hooks += len(e.mutating.Webhooks)
		}
		if e.validating != nil {
			validating = append(validating, e.validating)
			hooks += len(e.validating.Webhooks)
		}
	}
	slices.SortFunc(mutating, func(a, b *admissionregistrationv1.MutatingWebhookConfiguration) int {
		return cmp.Compare(a.Name, b.Name)
	})
	slices.SortFunc(validating, func(a, b *admissionregistrationv1.ValidatingWebhookConfiguration) int {
		return cmp.Compare(a.Name, b.Name)
	})
	r.webhooks.Configure(mutating, validating)
	c.active.Store(hooks > 0)
}

// webhookMirrors keep the configurations current from the feed, one
// mirror per resource.
func (r *Registry) webhookMirrors() []mirror {
	out := make([]mirror, len(webhookResources))
	for i, res := range webhookResources {
		sk := res.StorageKey
		out[i] = mirror{resource: sk, progress: r.webhookConfigs.progress[i], apply: func(ev *feed.Event) {
			key := webhookConfigKey{sk, ev.Object.Name}
			if ev.Type == storage.Deleted {
				r.applyWebhookConfig(key, ev.Revision, nil)
				return
			}
			if m, err := decodeValue(ev.Object.Value); err == nil {
				r.applyWebhookConfig(key, ev.Revision, m)
			}
		}, reset: func(objs []storage.Object, rev int64) error {
			present := map[string]bool{}
			for _, o := range objs {
				if m, err := decodeValue(o.Value); err == nil {
					present[o.Name] = true
					r.applyWebhookConfig(webhookConfigKey{sk, o.Name}, o.Revision, m)
				}
			}
			r.webhookConfigs.mu.Lock()
			var gone []string
			for k := range r.webhookConfigs.entries {
				if k.storageKey == sk && !present[k.name] {
					gone = append(gone, k.name)
				}
			}
			r.webhookConfigs.mu.Unlock()
			for _, name := range gone {
				r.applyWebhookConfig(webhookConfigKey{sk, name}, rev, nil)
			}
			return nil
		}}
	}
	return out
}

// isWebhookConfig reports whether res is one of the configuration
// resources.
func isWebhookConfig(res *Resource) bool {
	return res.StorageKey == validatingWebhooksKey || res.StorageKey == mutatingWebhooksKey
}

// webhooksApply reports whether admission webhooks may apply to a write of
// res: some are configured and res is neither a webhook configuration (as
// in Kubernetes, those are never sent to webhooks, so that a broken webhook
// cannot lock away its own repair) nor a review that stores nothing.
func (r *Registry) webhooksApply(res *Resource) bool {
	if r.webhooks == nil || !r.webhookConfigs.active.Load() {
		return false
	}
	switch res.Group {
	case admissionRegistrationGroup:
		return false
	case "authorization.k8s.io", "authentication.k8s.io":
		return false
	}
	return true
}

// admissionRequest describes a write of res for the webhooks.
func (r *Registry) admissionRequest(res *Resource, op admissionv1.Operation, sub, namespace, name string, obj, old map[string]any, opts map[string]any, dryRun bool) *AdmissionRequest {
	isNamespace := res.StorageKey == namespaceResource().StorageKey
	if isNamespace {
		namespace = name
	}
	req := &AdmissionRequest{
		Resource: res, Kind: schema.GroupVersionKind{Group: res.Group, Version: res.Version, Kind: res.Kind},
		Subresource: sub, Operation: op, Name: name, Namespace: namespace,
		Object: obj, OldObject: old, Options: opts, DryRun: dryRun,
		Equivalents: func() []*Resource { return r.equivalents(res) },
	}
	if sub == "scale" {
		req.Kind = scaleGroupKind.WithVersion("v1")
	}
	var once sync.Once
	var labels map[string]string
	var err error
	req.NamespaceLabels = func(ctx context.Context) (map[string]string, error) {
		once.Do(func() {
			if isNamespace && sub == "" && obj != nil {
				labels = labelsOf(obj)
				return
			}
			var o storage.Object
			if o, err = r.store.Get(ctx, storage.Key{Resource: namespaceResource().StorageKey, Name: namespace}); err != nil {
				err = storageError(err, namespaceResource(), namespace)
				return
			}
			var m map[string]any
			if m, err = decodeValue(o.Value); err != nil {
				err = apierrors.NewInternalError(err)
				return
			}
			labels = labelsOf(m)
		})
		return labels, err
	}
	return req
}

// equivalents returns the served versions of res's group and resource
// other than res's own.
func (r *Registry) equivalents(res *Resource) []*Resource {
	var out []*Resource
	for _, g := range r.Groups() {
		if g.Group != res.Group {
			continue
		}
		for _, v := range g.Versions {
			for _, other := range g.Resources[v] {
				if other.Resource == res.Resource && v != res.Version {
					out = append(out, other)
				}
			}
		}
	}
	return out
}

// writeOptionsObject is the CreateOptions or UpdateOptions object
// webhooks receive for a write with opts.
func writeOptionsObject(kind string, opts WriteOptions) map[string]any {
	m := map[string]any{"apiVersion": "meta.k8s.io/v1", "kind": kind}
	if opts.DryRun {
		m["dryRun"] = []any{"All"}
	}
	if opts.FieldManager != "" {
		m["fieldManager"] = opts.FieldManager
	}
	if opts.FieldValidation != "" {
		m["fieldValidation"] = opts.FieldValidation
	}
	return m
}

// mutateCreate runs the mutating webhooks on an object being created,
// after checking that it decodes as its type (a body that does not is
// refused before any webhook sees it), and checks that what they return
// still names the request's type and namespace.
func (r *Registry) mutateCreate(ctx context.Context, res *Resource, namespace string, obj map[string]any, opts WriteOptions) (map[string]any, []string, error) {
	if b := builtinFor(res); b != nil && b.decodes != nil {
		if err := b.decodes(obj); err != nil {
			return nil, nil, err
		}
	}
	req := r.admissionRequest(res, admissionv1.Create, "", namespace, metaString(obj, "name"), obj, nil, writeOptionsObject("CreateOptions", opts), opts.DryRun)
	out, warnings, err := r.webhooks.Mutate(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if err := checkTypeMeta(res, out); err != nil {
		return nil, nil, err
	}
	if _, err := requestNamespace(res, namespace, metadata(out)); err != nil {
		return nil, nil, err
	}
	return out, warnings, nil
}

// updateRequest describes an update of the stored object old (at rev) to
// obj for the webhooks: with the objects themselves, or their Scales for
// the scale subresource.
func (r *Registry) updateRequest(res *Resource, namespace, name string, obj, old map[string]any, rev int64, opts WriteOptions) (*AdmissionRequest, error) {
	oldServed := servedMap(res, deepCopy(old), rev).Object
	if opts.Subresource == "scale" {
		var err error
		if obj, _, err = scaleOf(res, obj); err == nil {
			oldServed, _, err = scaleOf(res, oldServed)
		}
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
	}
	return r.admissionRequest(res, admissionv1.Update, opts.Subresource, namespace, name, obj, oldServed, writeOptionsObject("UpdateOptions", opts), opts.DryRun), nil
}

// mutateUpdate runs the mutating webhooks on obj, the new state of the
// stored object old (at rev), and checks what they return as the body of
// an update: a resourceVersion they set is a precondition. Through the
// scale subresource they see Scales, and what they change in spec.replicas
// is written to the object.
func (r *Registry) mutateUpdate(ctx context.Context, res *Resource, namespace, name string, obj, old map[string]any, rev int64, opts WriteOptions) (map[string]any, []string, error) {
	req, err := r.updateRequest(res, namespace, name, obj, old, rev, opts)
	if err != nil {
		return nil, nil, err
	}
	out, warnings, err := r.webhooks.Mutate(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if opts.Subresource == "scale" {
		replicas, _, err := checkScale(out, namespace, name)
		if err == nil {
			err = unstructured.SetNestedField(obj, replicas, splitPath(res.Scale.SpecReplicas)...)
		}
		if err != nil {
			return nil, nil, apierrors.NewBadRequest(err.Error())
		}
		return obj, warnings, nil
	}
	rv, err := checkUpdateBody(res, namespace, name, out)
	if err != nil {
		return nil, nil, err
	}
	if rv != 0 && rv != rev {
		return nil, nil, storageError(storage.ErrConflict, res, name)
	}
	metadata(out)["resourceVersion"] = strconv.FormatInt(rev, 10)
	return out, warnings, nil
}

// validateUpdate runs the validating webhooks on an update of old (at rev)
// to obj.
func (r *Registry) validateUpdate(ctx context.Context, res *Resource, namespace, name string, obj, old map[string]any, rev int64, opts WriteOptions) ([]string, error) {
	req, err := r.updateRequest(res, namespace, name, obj, old, rev, opts)
	if err != nil {
		return nil, err
	}
	return r.webhooks.Validate(ctx, req)
}

// admitDelete runs the mutating, then the validating webhooks on the
// deletion of obj, stored at rev. Mutating webhooks may not change
// anything here (there is no new object); their warnings and those of the
// validating webhooks go to the request's warning recorder.
func (r *Registry) admitDelete(ctx context.Context, res *Resource, namespace, name string, obj map[string]any, rev int64, opts *metav1.DeleteOptions) error {
	optsObj := map[string]any{}
	if opts != nil {
		b, err := json.Marshal(opts)
		if err == nil {
			err = json.Unmarshal(b, &optsObj)
		}
		if err != nil {
			return apierrors.NewInternalError(err)
		}
	}
	optsObj["apiVersion"], optsObj["kind"] = "meta.k8s.io/v1", "DeleteOptions"
	old := servedMap(res, deepCopy(obj), rev).Object
	req := r.admissionRequest(res, admissionv1.Delete, "", namespace, name, nil, old, optsObj, opts != nil && len(opts.DryRun) > 0)
	_, warnings, err := r.webhooks.Mutate(ctx, req)
	if err != nil {
		return err
	}
	more, err := r.webhooks.Validate(ctx, req)
	if err != nil {
		return err
	}
	for _, w := range append(warnings, more...) {
		warning.AddWarning(ctx, "", w)
	}
	return nil
}
