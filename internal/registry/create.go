package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/setpoint/setpoint/internal/storage"
)

// generateNameChars are the characters Kubernetes appends to generateName.
const generateNameChars = "bcdfghjklmnpqrstvwxz2456789"

// generateNameAttempts bounds retries when a generated name is taken.
const generateNameAttempts = 8

// Create stores a new object (generateName, uid, creationTimestamp,
// generation 1, defaults, validation).
func (r *Registry) Create(ctx context.Context, res *Resource, namespace string, obj *unstructured.Unstructured, opts WriteOptions) (Result, error) {
	if obj == nil || obj.Object == nil {
		return Result{}, apierrors.NewBadRequest("the request body is empty")
	}
	if opts.Subresource != "" {
		return Result{}, apierrors.NewMethodNotSupported(res.groupResource(), "create")
	}
	if b := builtinFor(res); b != nil && b.review {
		return r.createReview(ctx, res, deepCopy(obj.Object))
	}
	return r.create(ctx, res, namespace, deepCopy(obj.Object), opts, true)
}

// create implements Create on a copy the caller gives up.
func (r *Registry) create(ctx context.Context, res *Resource, namespace string, obj map[string]any, opts WriteOptions, checkNamespace bool) (Result, error) {
	if err := checkTypeMeta(res, obj); err != nil {
		return Result{}, err
	}
	md := metadata(obj)
	ns, err := requestNamespace(res, namespace, md)
	if err != nil {
		return Result{}, err
	}
	if res.Namespaced && checkNamespace {
		if err := r.checkNamespaceOpen(ctx, ns); err != nil {
			return Result{}, err
		}
	}
	if r.crdTerminating(res) {
		e := apierrors.NewMethodNotSupported(res.groupResource(), "create")
		e.ErrStatus.Message = "create not allowed while custom resource definition is terminating"
		return Result{}, e
	}
	hooks := r.webhooksApply(res)
	var hookWarnings []string
	if hooks {
		if obj, hookWarnings, err = r.mutateCreate(ctx, res, ns, obj, opts); err != nil {
			return Result{}, err
		}
		md = metadata(obj)
	}
	for _, k := range []string{"uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"} {
		delete(md, k)
	}
	md["uid"] = string(uuid.NewUUID())
	md["creationTimestamp"] = r.now().UTC().Format(timeLayout)
	md["generation"] = int64(1)
	if res.HasStatus && builtinFor(res) == nil {
		delete(obj, "status")
	}
	if err := prepareBuiltin(r, res, obj, nil); err != nil {
		return Result{}, err
	}
	if res.StorageKey == crdStorageKey {
		if err := r.prepareCRD(obj, nil); err != nil {
			return Result{}, err
		}
	}
	warnings, errs, err := admit(ctx, res, obj, nil, opts)
	if err != nil {
		return Result{}, err
	}
	warnings = append(hookWarnings, warnings...)
	if !opts.applied {
		obj = r.trackCreate(res, obj, opts)
	}
	generate := metaString(obj, "name") == "" && metaString(obj, "generateName") != ""
	if generate {
		md["name"] = generatedName(metaString(obj, "generateName"))
	}
	errs = append(errs, validateBuiltin(res, obj, nil)...)
	if errs = append(validateMeta(res, obj, nil), errs...); len(errs) > 0 {
		return Result{}, apierrors.NewInvalid(res.groupKind(), metaString(obj, "name"), errs)
	}
	if err := r.checkEscalation(ctx, res, obj, nil); err != nil {
		return Result{}, err
	}
	if hooks {
		req := r.admissionRequest(res, admissionv1.Create, "", ns, metaString(obj, "name"), obj, nil, writeOptionsObject("CreateOptions", opts), opts.DryRun)
		w, err := r.webhooks.Validate(ctx, req)
		if err != nil {
			return Result{}, err
		}
		warnings = append(warnings, w...)
	}
	for attempt := 0; ; attempt++ {
		if generate && attempt > 0 {
			md["name"] = generatedName(metaString(obj, "generateName"))
		}
		name := metaString(obj, "name")
		value, err := encodeFor(res, obj)
		if err != nil {
			return Result{}, err
		}
		if err := r.checkStored(value); err != nil {
			return Result{}, err
		}
		if opts.DryRun {
			if !generate {
				if err := r.checkAbsent(ctx, storage.Key{Resource: res.StorageKey, Namespace: ns, Name: name}, res); err != nil {
					return Result{}, err
				}
			}
			return Result{Object: servedMap(res, obj, 0), Warnings: warnings, Created: true}, nil
		}
		stored, err := r.store.Create(ctx, storage.Key{Resource: res.StorageKey, Namespace: ns, Name: name}, value, labelsOf(obj))
		if err != nil {
			if generate && attempt < generateNameAttempts && isStorageExists(err) {
				continue
			}
			return Result{}, storageError(err, res, name)
		}
		if err := r.afterWrite(ctx, res, stored, obj); err != nil {
			return Result{}, err
		}
		return Result{Object: servedMap(res, obj, stored.Revision), Warnings: warnings, Created: true}, nil
	}
}

// checkAbsent answers AlreadyExists, as a real create would, when key is
// taken: a dry run writes nothing but must fail the same way.
func (r *Registry) checkAbsent(ctx context.Context, key storage.Key, res *Resource) error {
	_, err := r.store.Get(ctx, key)
	switch {
	case err == nil:
		return storageError(storage.ErrExists, res, key.Name)
	case errors.Is(err, storage.ErrNotFound):
		return nil
	}
	return storageError(err, res, key.Name)
}

// timeLayout is RFC 3339 with second precision, as metav1.Time encodes.
const timeLayout = "2006-01-02T15:04:05Z"

func generatedName(prefix string) string {
	const maxPrefix = 63 - 5
	if len(prefix) > maxPrefix {
		prefix = prefix[:maxPrefix]
	}
	var b strings.Builder
	b.WriteString(prefix)
	for range 5 {
		b.WriteByte(generateNameChars[rand.IntN(len(generateNameChars))])
	}
	return b.String()
}

// checkTypeMeta requires apiVersion and kind to name res and metadata to
// have the shape of ObjectMeta.
func checkTypeMeta(res *Resource, obj map[string]any) error {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if apiVersion != res.apiVersion() || kind != res.Kind {
		return apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s) or the kind in the data (%s) does not match %s",
			apiVersion, res.apiVersion(), kind, res.Kind))
	}
	md, ok := obj["metadata"]
	if !ok {
		return nil
	}
	if _, isMap := md.(map[string]any); !isMap {
		return apierrors.NewBadRequest("metadata must be an object")
	}
	rest := withoutPlainManagedFields(md.(map[string]any))
	if plainObjectMeta(rest) {
		return nil
	}
	b, err := json.Marshal(rest)
	if err == nil {
		err = json.Unmarshal(b, &metav1.ObjectMeta{})
	}
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid metadata: %v", err))
	}
	return nil
}

// objectMetaShapes are the fields of ObjectMeta (managedFields aside) by
// the shape of their values.
var objectMetaShapes = map[string]func(any) bool{
	"name": isString, "generateName": isString, "namespace": isString, "selfLink": isString,
	"uid": isString, "resourceVersion": isString, "clusterName": isString,
	"generation": isInt, "deletionGracePeriodSeconds": isInt,
	"creationTimestamp": isTime, "deletionTimestamp": isTime,
	"labels": isStringMap, "annotations": isStringMap,
	"finalizers":      isStringList,
	"ownerReferences": isOwnerReferences,
}

// plainObjectMeta reports whether md, without managedFields, decodes into
// ObjectMeta, where it can tell without decoding: fields of ObjectMeta
// spelled as they are, each null or of its type (integers as int64). It
// reports false for anything else, which checkTypeMeta decodes to find
// out.
func plainObjectMeta(md map[string]any) bool {
	for k, v := range md {
		shape, known := objectMetaShapes[k]
		if !known || (v != nil && !shape(v)) {
			return false
		}
	}
	return true
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

func isInt(v any) bool {
	_, ok := v.(int64)
	return ok
}

// isTime reports whether v is a time as metav1.Time decodes it.
func isTime(v any) bool {
	s, ok := v.(string)
	if !ok || !utf8.ValidString(s) {
		return false
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

func isStringMap(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, e := range m {
		if !isString(e) {
			return false
		}
	}
	return true
}

func isStringList(v any) bool {
	l, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range l {
		if !isString(e) {
			return false
		}
	}
	return true
}

// ownerReferenceShapes are the fields of OwnerReference by the shape of
// their values.
var ownerReferenceShapes = map[string]func(any) bool{
	"apiVersion": isString, "kind": isString, "name": isString, "uid": isString,
	"controller": isBool, "blockOwnerDeletion": isBool,
}

func isOwnerReferences(v any) bool {
	l, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range l {
		ref, ok := e.(map[string]any)
		if !ok {
			return false
		}
		for k, f := range ref {
			shape, known := ownerReferenceShapes[k]
			if !known || (f != nil && !shape(f)) {
				return false
			}
		}
	}
	return true
}

func isBool(v any) bool {
	_, ok := v.(bool)
	return ok
}

// requestNamespace reconciles the URL namespace with the body's and sets
// it in md.
func requestNamespace(res *Resource, namespace string, md map[string]any) (string, error) {
	if !res.Namespaced {
		delete(md, "namespace")
		return "", nil
	}
	bodyNS, _ := md["namespace"].(string)
	if bodyNS != "" && bodyNS != namespace {
		return "", apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if namespace == "" {
		return "", apierrors.NewBadRequest("a namespace is required for " + res.Resource)
	}
	md["namespace"] = namespace
	return namespace, nil
}

// validateMeta validates metadata (and, with old, its immutable fields).
func validateMeta(res *Resource, obj, old map[string]any) field.ErrorList {
	nameFn := apivalidation.NameIsDNSSubdomain
	if b := builtinFor(res); b != nil && b.validName != nil {
		nameFn = b.validName
	}
	u := newMetaObject(obj)
	errs := apivalidation.ValidateObjectMetaAccessor(u, res.Namespaced, nameFn, field.NewPath("metadata"))
	if old != nil {
		errs = append(errs, apivalidation.ValidateObjectMetaAccessorUpdate(u, &unstructured.Unstructured{Object: old}, field.NewPath("metadata"))...)
	}
	return errs
}

// admit prunes, defaults and validates obj against res.Schema and turns
// unknown and duplicate fields into an error or warnings as
// opts.FieldValidation asks. It returns the schema's field errors for the
// caller to report with the metadata errors. old is the stored object on
// update (nil on create), for the schema's transition rules.
func admit(ctx context.Context, res *Resource, obj, old map[string]any, opts WriteOptions) ([]string, field.ErrorList, error) {
	issues := append([]string(nil), opts.DecodeIssues...)
	if res.Schema != nil {
		for _, p := range res.Schema.Prune(obj) {
			issues = append(issues, fmt.Sprintf("unknown field %q", p))
		}
		res.Schema.Default(obj)
	}
	var warnings []string
	switch opts.FieldValidation {
	case "Strict":
		if len(issues) > 0 {
			return nil, nil, apierrors.NewBadRequest("strict decoding error: " + strings.Join(issues, ", "))
		}
	case "Ignore":
	default:
		warnings = issues
	}
	if res.Schema == nil {
		return warnings, nil, nil
	}
	errs, ruleWarnings := res.Schema.ValidateObject(ctx, obj, old)
	return append(warnings, ruleWarnings...), append(errs, validateScaleValues(res, obj)...), nil
}

func isStorageExists(err error) bool {
	return isReason(storageError(err, &Resource{}, ""), reasonAlreadyExists)
}

// afterWrite lets built-in types react to a committed write of obj.
func (r *Registry) afterWrite(ctx context.Context, res *Resource, stored storage.Object, obj map[string]any) error {
	if err := r.awaitViews(ctx, res, stored.Revision); err != nil {
		return err
	}
	switch res.StorageKey {
	case validatingWebhooksKey, mutatingWebhooksKey:
		r.applyWebhookConfig(webhookConfigKey{res.StorageKey, stored.Name}, stored.Revision, deepCopy(obj))
	case namespaceResource().StorageKey:
		r.namespaces.set(stored.Name, namespaceEntry{rev: stored.Revision, terminating: deletionTimestamp(obj) != ""})
	case crdStorageKey:
		r.applyCRD(stored.Name, stored.Revision, deepCopy(obj))
		return r.waitForFeed(ctx, stored.Revision)
	}
	return nil
}

// waitForFeed waits until the feed has dispatched rev, so that watchers
// and other readers of the feed have seen the write.
func (r *Registry) waitForFeed(ctx context.Context, rev int64) error {
	if r.feed == nil {
		return nil
	}
	if err := r.feed.WaitForRevision(ctx, rev); err != nil {
		return storageError(err, &Resource{}, "")
	}
	return nil
}
