// Package registry gives stored objects their Kubernetes semantics: metadata
// (uid, resourceVersion, generation, timestamps, finalizers), the status
// subresource, CustomResourceDefinitions registered at runtime, namespaces,
// admission (validation, defaulting, pruning) and watch.
//
// API CONTRACT (skeleton written by the lead; the registry owner fills it in
// and may add to it, but must not change these signatures without telling the
// apiserver owner). Every error returned is a *apierrors.StatusError
// (k8s.io/apimachinery/pkg/api/errors) with the code, reason and details the
// Kubernetes API server would give, so the HTTP layer only serializes it.
package registry

import (
	"context"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/admission"
	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/storage"
)

// Options configures a Registry.
type Options struct {
	Store storage.Store
	Feed  *feed.Feed
	// Now returns the current time; tests may replace it. Default time.Now.
	Now func() time.Time
}

// Registry serves resources over a Store.
type Registry struct{}

// New builds a Registry. Start must be called before serving.
func New(opts Options) (*Registry, error) { panic("unimplemented") }

// Start creates the default namespaces ("default", "kube-system",
// "kube-public") if missing, loads the stored CRDs, and starts background
// work (CRD and namespace cleanup). It returns once the registry can serve.
func (r *Registry) Start(ctx context.Context) error { panic("unimplemented") }

// Close stops background work and waits for it.
func (r *Registry) Close() error { panic("unimplemented") }

// Resource describes one served group/version/resource.
type Resource struct {
	Group        string
	Version      string
	Resource     string // plural, lower case
	SingularName string
	Kind         string
	ListKind     string
	Namespaced   bool
	ShortNames   []string
	Categories   []string
	Verbs        []string
	// HasStatus reports whether the status subresource is enabled.
	HasStatus bool
	// PrinterColumns are the CRD's additionalPrinterColumns (without Name
	// and Age, which the Table writer adds).
	PrinterColumns []apiextensionsv1.CustomResourceColumnDefinition
	// Schema validates, defaults and prunes objects; nil for built-in types.
	Schema *admission.Schema
	// OpenAPISchema is the version's openAPIV3Schema for /openapi; nil for
	// built-in types.
	OpenAPISchema *apiextensionsv1.JSONSchemaProps
	// StorageKey is storage.Key.Resource for objects of this resource.
	StorageKey string
}

// GroupVersions describes one API group for discovery.
type GroupVersions struct {
	Group string
	// Versions ordered by preference; the first is preferred.
	Versions []string
	// Resources per version.
	Resources map[string][]*Resource
}

// Lookup returns the resource served at group/version/resource. The core
// group is "". It returns false if it is not served.
func (r *Registry) Lookup(group, version, resource string) (*Resource, bool) {
	panic("unimplemented")
}

// Groups returns every served group, the core group ("") first, then the
// others sorted by name. The result is a snapshot the caller may keep.
func (r *Registry) Groups() []GroupVersions { panic("unimplemented") }

// ListOptions are the list and watch query parameters, already parsed.
type ListOptions struct {
	Labels labels.Selector // never nil
	Fields fields.Selector // never nil; only metadata.name / metadata.namespace
	// ResourceVersion and ResourceVersionMatch as sent ("" = most recent).
	ResourceVersion      string
	ResourceVersionMatch metav1.ResourceVersionMatch
	Limit                int64
	Continue             string
	// Watch only:
	AllowWatchBookmarks bool
	SendInitialEvents   *bool
}

// WriteOptions are the query parameters of create, update and patch.
type WriteOptions struct {
	DryRun bool
	// FieldValidation is "Strict", "Warn" or "Ignore" ("" means Warn for
	// kubectl-compat, as Kubernetes defaults).
	FieldValidation string
	FieldManager    string
	// Subresource is "" or "status".
	Subresource string
	// DecodeIssues are strict-decoding problems found by the HTTP layer in
	// the body (duplicate fields). With unknown fields found by pruning they
	// become a 400 under Strict, warnings under Warn, nothing under Ignore.
	DecodeIssues []string
}

// Result is a written object and the warnings to send as Warning headers.
type Result struct {
	Object   *unstructured.Unstructured
	Warnings []string
	// Created reports that the write created the object (201, not 200).
	Created bool
}

// Get returns the current object.
func (r *Registry) Get(ctx context.Context, res *Resource, namespace, name string) (*unstructured.Unstructured, error) {
	panic("unimplemented")
}

// List returns a consistent page of objects (kind <Kind>List with
// metadata.resourceVersion and continue).
func (r *Registry) List(ctx context.Context, res *Resource, namespace string, opts ListOptions) (*unstructured.UnstructuredList, error) {
	panic("unimplemented")
}

// Create stores a new object (generateName, uid, creationTimestamp,
// generation 1, defaults, validation).
func (r *Registry) Create(ctx context.Context, res *Resource, namespace string, obj *unstructured.Unstructured, opts WriteOptions) (Result, error) {
	panic("unimplemented")
}

// Update replaces the object (or its status with opts.Subresource
// "status"); obj must carry the current resourceVersion.
func (r *Registry) Update(ctx context.Context, res *Resource, namespace, name string, obj *unstructured.Unstructured, opts WriteOptions) (Result, error) {
	panic("unimplemented")
}

// Patch applies a JSON patch or merge patch to the current object, retrying
// on conflicts. Strategic merge patch answers 415.
func (r *Registry) Patch(ctx context.Context, res *Resource, namespace, name string, pt types.PatchType, patch []byte, opts WriteOptions) (Result, error) {
	panic("unimplemented")
}

// Delete deletes the object, or marks it with deletionTimestamp while it has
// finalizers. It returns the last state and whether it is gone now.
func (r *Registry) Delete(ctx context.Context, res *Resource, namespace, name string, opts *metav1.DeleteOptions) (obj *unstructured.Unstructured, gone bool, err error) {
	panic("unimplemented")
}

// DeleteCollection deletes every object the list options select and returns
// them.
func (r *Registry) DeleteCollection(ctx context.Context, res *Resource, namespace string, lopts ListOptions, dopts *metav1.DeleteOptions) (*unstructured.UnstructuredList, error) {
	panic("unimplemented")
}

// WatchEvent is one event for a watch stream.
type WatchEvent struct {
	// Type is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
	Type string
	// Object is the object (resourceVersion set) or, for ERROR, a
	// *metav1.Status. For BOOKMARK it carries only apiVersion, kind and
	// metadata.resourceVersion (and the initial-events-end annotation).
	Object any
	// Cache, when not nil, lets the HTTP layer encode this event once for all
	// watchers.
	Cache *feed.EncodeCache
}

// Watch streams events after opts.ResourceVersion (or, with
// SendInitialEvents, the current state first, then a BOOKMARK with the
// k8s.io/initial-events-end annotation). The channel closes when ctx ends or
// the watch fails; a failure is sent first as an ERROR event.
func (r *Registry) Watch(ctx context.Context, res *Resource, namespace string, opts ListOptions) (<-chan WatchEvent, error) {
	panic("unimplemented")
}
