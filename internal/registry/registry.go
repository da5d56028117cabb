// Package registry gives stored objects their Kubernetes semantics: metadata
// (uid, resourceVersion, generation, timestamps, finalizers), the status
// subresource, CustomResourceDefinitions registered at runtime, namespaces,
// admission (validation, defaulting, pruning) and watch.
//
// Every error returned is a *apierrors.StatusError
// (k8s.io/apimachinery/pkg/api/errors) with the code, reason and details the
// Kubernetes API server would give, so the HTTP layer only serializes it.
package registry

import (
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

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
	// EventTTL is how long an Event is kept after it was last observed, as
	// Kubernetes' --event-ttl; 0 keeps Events until they are deleted.
	EventTTL time.Duration
	// Webhooks, when not nil, runs the admission webhooks of the stored
	// ValidatingWebhookConfigurations and MutatingWebhookConfigurations on
	// every write (package webhook). Default nil: configurations are stored
	// and served but no webhook is called.
	Webhooks WebhookAdmission
	// MaxObjectBytes bounds an object as stored (its JSON, managedFields
	// included): a create, update, patch or apply that would write a
	// larger one answers 413. Default DefaultMaxObjectBytes.
	MaxObjectBytes int
}

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
	// SelectableFields are dot paths like "spec.color" that field
	// selectors may use besides metadata.name and metadata.namespace.
	SelectableFields []string
	// DeprecationWarning, when not empty, is sent as a Warning header with
	// every response about this version (a deprecated CRD version).
	DeprecationWarning string
	// Scale, when not nil, enables the scale subresource.
	Scale *ScalePaths
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
	// StorageVersion is the version objects are stored in (the CRD's
	// storage version; Version for built-in types). With conversion None
	// only apiVersion differs between versions.
	StorageVersion string
	// fieldGetters compute, from the stored object, the value of those
	// SelectableFields that are not at their dot path there (fields of
	// a converted form, or derived ones).
	fieldGetters map[string]func(stored map[string]any) string
	// conv is set for a resource stored in another group's form
	// (events.k8s.io Events are stored as core Events).
	conv *conversion
}

// conversion converts objects of a resource between the form it serves
// and the form it is stored in, in place (apiVersion aside).
type conversion struct {
	storedAPIVersion string
	toStored         func(obj map[string]any)
	toServed         func(obj map[string]any)
}

// GroupVersions describes one API group for discovery.
type GroupVersions struct {
	Group string
	// Versions ordered by preference; the first is preferred.
	Versions []string
	// Resources per version.
	Resources map[string][]*Resource
}

// ListOptions are the list and watch query parameters, already parsed.
type ListOptions struct {
	Labels labels.Selector // never nil
	Fields fields.Selector // never nil; metadata.name, metadata.namespace, Resource.SelectableFields
	// ResourceVersion and ResourceVersionMatch as sent ("" = most recent).
	ResourceVersion      string
	ResourceVersionMatch metav1.ResourceVersionMatch
	Limit                int64
	Continue             string
	// Watch only:
	AllowWatchBookmarks bool
	SendInitialEvents   *bool
	// MetadataOnly says the watcher sends only metadata
	// (PartialObjectMetadata): events may then carry Metadata instead of
	// Object, which spares decoding the stored object.
	MetadataOnly bool
}

// WriteOptions are the query parameters of create, update and patch.
type WriteOptions struct {
	DryRun bool
	// FieldValidation is "Strict", "Warn" or "Ignore" ("" means Warn for
	// kubectl-compat, as Kubernetes defaults).
	FieldValidation string
	// FieldManager is the manager recorded in managedFields: the
	// fieldManager parameter, or what Kubernetes derives from the
	// User-Agent. Required for apply.
	FieldManager string
	// Force makes an apply take the fields other managers own.
	Force bool
	// Subresource is "" or "status" ("scale" inside the registry).
	Subresource string
	// DecodeIssues are strict-decoding problems found by the HTTP layer in
	// the body (duplicate fields). With unknown fields found by pruning they
	// become a 400 under Strict, warnings under Warn, nothing under Ignore.
	DecodeIssues []string
	// applied tells that the object is an apply's result, whose
	// managedFields are already computed.
	applied bool
}

// Result is a written object and the warnings to send as Warning headers.
type Result struct {
	Object   *unstructured.Unstructured
	Warnings []string
	// Created reports that the write created the object (201, not 200).
	Created bool
}

// WatchEvent is one event for a watch stream.
type WatchEvent struct {
	// Type is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
	Type string
	// Object is the object (resourceVersion set) or, for ERROR, a
	// *metav1.Status. For BOOKMARK it carries only apiVersion, kind and
	// metadata.resourceVersion (and the initial-events-end annotation).
	// It may be shared with other watchers and must not be modified.
	Object any
	// Metadata, on the ADDED, MODIFIED and DELETED events of a
	// MetadataOnly watch, may replace Object (then nil): the JSON of the
	// object's metadata exactly as encoding/json renders that of Object,
	// resourceVersion set. It may be shared and must not be modified.
	Metadata []byte
	// Cache, when not nil, lets the HTTP layer encode this event once for all
	// watchers.
	Cache *feed.EncodeCache
}
