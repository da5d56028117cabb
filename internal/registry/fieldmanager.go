package registry

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	apiextensionsopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/merge"
	smdtyped "sigs.k8s.io/structured-merge-diff/v6/typed"
)

// objectMetaModel is the model name of ObjectMeta, as Kubernetes names it
// in its OpenAPI documents and as custom resource schemas refer to it.
var objectMetaModel = metav1.ObjectMeta{}.OpenAPIModelName()

// fieldManagers are the FieldManagers of one Resource, built on first use:
// the main resource's and the status and scale subresources'.
type fieldManagers struct {
	once sync.Once
	// types converts objects of res's own version.
	types  managedfields.TypeConverter
	main   *managedfields.FieldManager
	status *managedfields.FieldManager
	// scale records writes through the scale subresource.
	scale *managedfields.FieldManager
	// creates and empty serve trackCreate: the main resource's merge
	// engine and the typed empty object a create starts from.
	creates *merge.Updater
	empty   *smdtyped.TypedValue
	// updaters are the merge engines of trackUpdateFast, by
	// subresource, configured as the FieldManagers' own.
	updaters map[string]*merge.Updater
	// create reads a create's fields straight from the object; nil for
	// resources without a schema.
	create *createSchema
	err    error
}

// fieldManagerKey identifies what a Resource's FieldManagers depend on.
// Resources are immutable and a CRD change makes new schemas, so the
// schema's address tells versions of a CRD apart; built-in Resources,
// copied on every rebuild of the served set, share theirs.
type fieldManagerKey struct {
	group, version, resource, kind, storageVersion string
	hasStatus                                      bool
	schema                                         any
}

// keyOf is the key of res's FieldManagers.
func keyOf(res *Resource) fieldManagerKey {
	k := fieldManagerKey{group: res.Group, version: res.Version, resource: res.Resource, kind: res.Kind, storageVersion: res.StorageVersion, hasStatus: res.HasStatus}
	if res.OpenAPISchema != nil {
		k.schema = res.OpenAPISchema
	}
	return k
}

// fieldManager returns the FieldManager of res for subresource sub ("",
// "status" or "scale"), building and caching it on first use.
func (r *Registry) fieldManager(res *Resource, sub string) (*managedfields.FieldManager, error) {
	fm := r.managersOf(res)
	if fm.err != nil {
		return nil, fm.err
	}
	switch sub {
	case "status":
		return fm.status, nil
	case "scale":
		return fm.scale, nil
	}
	return fm.main, nil
}

// managersOf returns the FieldManagers of res, built on first use.
func (r *Registry) managersOf(res *Resource) *fieldManagers {
	key := keyOf(res)
	v, ok := r.managers.Load(key)
	if !ok {
		v, _ = r.managers.LoadOrStore(key, &fieldManagers{})
	}
	fm := v.(*fieldManagers)
	fm.once.Do(func() { r.buildFieldManagers(res, fm) })
	return fm
}

// pruneFieldManagersLocked forgets the FieldManagers of Resources no longer
// served. The caller holds r.mu.
func (r *Registry) pruneFieldManagersLocked() {
	live := make(map[fieldManagerKey]bool, len(r.served))
	for _, res := range r.served {
		live[keyOf(res)] = true
	}
	r.managers.Range(func(k, _ any) bool {
		if !live[k.(fieldManagerKey)] {
			r.managers.Delete(k)
		}
		return true
	})
}

// buildFieldManagers builds the FieldManagers of res as Kubernetes builds
// those of a custom resource: the status and scale subresources' own, the
// fields each one resets (status for the main resource, spec for the
// status subresource) left out of what its managers own.
func (r *Registry) buildFieldManagers(res *Resource, fm *fieldManagers) {
	gvk := schema.GroupVersionKind{Group: res.Group, Version: res.Version, Kind: res.Kind}
	hub := schema.GroupVersion{Group: res.Group, Version: res.StorageVersion}
	if hub.Version == "" {
		hub.Version = res.Version
	}
	fm.types = newTypeConverter(res)
	tc := &typeConverter{reg: r, res: res, own: fm.types}
	conv := versionConverter{}
	resetFilter := func(reset string) map[fieldpath.APIVersion]fieldpath.Filter {
		var resetFields map[fieldpath.APIVersion]*fieldpath.Set
		if res.HasStatus && reset != "" {
			resetFields = map[fieldpath.APIVersion]*fieldpath.Set{
				fieldpath.APIVersion(res.apiVersion()): fieldpath.NewSet(fieldpath.MakePathOrDie(reset)),
			}
		}
		return fieldpath.NewExcludeFilterSetMap(resetFields)
	}
	build := func(sub string, reset string) (*managedfields.FieldManager, error) {
		return managedfields.NewDefaultCRDFieldManager(tc, conv, noDefaulter{}, conv, gvk, hub, sub, resetFilter(reset))
	}
	fm.creates = (&merge.UpdaterBuilder{IgnoreFilter: resetFilter("status")}).BuildUpdater()
	fm.create = newCreateSchema(res)
	same := sameVersion(res.apiVersion())
	fm.updaters = map[string]*merge.Updater{
		"":      {Converter: same, IgnoreFilter: resetFilter("status")},
		"scale": {Converter: same, IgnoreFilter: resetFilter("")},
	}
	if res.HasStatus {
		fm.updaters["status"] = &merge.Updater{Converter: same, IgnoreFilter: resetFilter("spec")}
	}
	if fm.empty, fm.err = fm.types.ObjectToTyped(emptyObject(res)); fm.err != nil {
		return
	}
	if fm.main, fm.err = build("", "status"); fm.err != nil {
		return
	}
	if fm.scale, fm.err = build("scale", ""); fm.err != nil || !res.HasStatus {
		return
	}
	fm.status, fm.err = build("status", "spec")
}

// trackUpdate records in obj's managedFields the fields that manager
// changed from live (nil on create) to obj, as an Update operation, the
// way Kubernetes does on every create, update and non-apply patch. A
// failure leaves live's managedFields in place, as Kubernetes does.
func (r *Registry) trackUpdate(res *Resource, live, obj map[string]any, opts WriteOptions) map[string]any {
	if live != nil {
		if out, ok := r.trackUpdateFast(res, live, obj, opts.Subresource, opts.FieldManager); ok {
			return out
		}
	}
	return r.trackUpdateLibrary(res, live, obj, opts)
}

// trackUpdateLibrary is trackUpdate computed by the FieldManager.
func (r *Registry) trackUpdateLibrary(res *Resource, live, obj map[string]any, opts WriteOptions) map[string]any {
	fm, err := r.fieldManager(res, opts.Subresource)
	if err != nil {
		return obj
	}
	liveObj := &unstructured.Unstructured{Object: live}
	if live == nil {
		liveObj = emptyObject(res)
	}
	out := fm.UpdateNoErrors(liveObj, &unstructured.Unstructured{Object: obj}, opts.FieldManager)
	if u, ok := out.(*unstructured.Unstructured); ok {
		return u.Object
	}
	return obj
}

// metaFields are the fields of every object nobody owns, which the
// FieldManager leaves out of managedFields.
var metaFields = fieldpath.NewSet(
	fieldpath.MakePathOrDie("apiVersion"),
	fieldpath.MakePathOrDie("kind"),
	fieldpath.MakePathOrDie("metadata"),
	fieldpath.MakePathOrDie("metadata", "name"),
	fieldpath.MakePathOrDie("metadata", "namespace"),
	fieldpath.MakePathOrDie("metadata", "creationTimestamp"),
	fieldpath.MakePathOrDie("metadata", "selfLink"),
	fieldpath.MakePathOrDie("metadata", "uid"),
	fieldpath.MakePathOrDie("metadata", "clusterName"),
	fieldpath.MakePathOrDie("metadata", "generation"),
	fieldpath.MakePathOrDie("metadata", "managedFields"),
	fieldpath.MakePathOrDie("metadata", "resourceVersion"),
)

// trackCreate is trackUpdate for a create: the same result (the
// manager's Update entry owning every field the object sets, but
// status where a subresource sets it), read straight from the object
// with the schema (createSchema.fields) or, where that declines,
// computed with the merge engine, without the FieldManager's round trips
// of managedFields through their typed form. A body that carries
// managedFields of its own takes the FieldManager's path;
// TestCreateManagedFieldsMatchFieldManager and
// TestRandomCreateManagedFieldsMatchFieldManager hold them all to the
// same result.
func (r *Registry) trackCreate(res *Resource, obj map[string]any, opts WriteOptions) map[string]any {
	if _, ok := metadata(obj)["managedFields"]; ok {
		return r.trackUpdateLibrary(res, nil, obj, opts)
	}
	fm := r.managersOf(res)
	if fm.err != nil {
		return obj
	}
	fields, ok := fm.create.fields(res, obj)
	if !ok {
		if fields, ok = r.engineCreateFields(res, fm, obj, opts.FieldManager); !ok {
			return obj
		}
	}
	if len(fields) == 0 {
		return obj
	}
	manager := opts.FieldManager
	if manager == "" {
		manager = "unknown"
	}
	metadata(obj)["managedFields"] = []any{map[string]any{
		"manager":    manager,
		"operation":  string(metav1.ManagedFieldsOperationUpdate),
		"apiVersion": res.apiVersion(),
		"time":       time.Now().UTC().Format(timeLayout),
		"fieldsType": "FieldsV1",
		"fieldsV1":   fields,
	}}
	return obj
}

// engineCreateFields is the fieldsV1 of a create of obj by manager,
// computed by the merge engine; false when it fails.
func (r *Registry) engineCreateFields(res *Resource, fm *fieldManagers, obj map[string]any, manager string) (map[string]any, bool) {
	created, err := fm.types.ObjectToTyped(&unstructured.Unstructured{Object: obj}, smdtyped.AllowDuplicates)
	if err != nil {
		return nil, false
	}
	version := fieldpath.APIVersion(res.apiVersion())
	_, managed, err := fm.creates.Update(fm.empty, created, version, fieldpath.ManagedFields{}, manager)
	if err != nil {
		return nil, false
	}
	owned, ok := managed[manager]
	if !ok {
		return nil, true
	}
	set := owned.Set().Difference(metaFields)
	if set.Empty() {
		return nil, true
	}
	fields, err := fieldsFromSet(set)
	return fields, err == nil
}

// emptyObject is the live object of a create: nothing but its type.
func emptyObject(res *Resource) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": res.apiVersion(), "kind": res.Kind}}
}

// typeConverter is the TypeConverter of one Resource. Objects of the
// other versions of the same resource, which the managedFields of an
// object may refer to, are converted with those versions' schemas.
type typeConverter struct {
	reg *Registry
	res *Resource
	own managedfields.TypeConverter
}

func (c *typeConverter) ObjectToTyped(obj runtime.Object, opts ...smdtyped.ValidationOptions) (*smdtyped.TypedValue, error) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Version == c.res.Version || gvk.Group != c.res.Group || gvk.Kind != c.res.Kind {
		return c.own.ObjectToTyped(obj, opts...)
	}
	other, ok := c.reg.Lookup(c.res.Group, gvk.Version, c.res.Resource)
	if !ok || other.Kind != c.res.Kind {
		return nil, runtime.NewNotRegisteredErrForKind("setpoint", gvk)
	}
	return c.reg.managersOf(other).types.ObjectToTyped(obj, opts...)
}

func (c *typeConverter) TypedToObject(v *smdtyped.TypedValue) (runtime.Object, error) {
	return c.own.TypedToObject(v)
}

// newTypeConverter builds the TypeConverter of res from its OpenAPI schema
// as Kubernetes builds a custom resource's: the schema's list and map
// types, preserved unknown fields, int-or-string and embedded resources,
// with metadata typed as ObjectMeta. Without a usable schema every field
// is deduced from the object (maps merge key by key, lists are atomic).
func newTypeConverter(res *Resource) managedfields.TypeConverter {
	if res.OpenAPISchema == nil {
		return managedfields.NewDeducedTypeConverter()
	}
	models, err := applyModels(res)
	if err != nil {
		return managedfields.NewDeducedTypeConverter()
	}
	tc, err := managedfields.NewTypeConverter(models, false)
	if err != nil {
		return managedfields.NewDeducedTypeConverter()
	}
	return tc
}

// modelRef refers to a model of the map applyModels returns.
func modelRef(model string) spec.Ref {
	return spec.MustCreateRef("#/definitions/" + model)
}

// metaModels are ObjectMeta's model and those it refers to, by name.
var metaModels = sync.OnceValue(func() map[string]*spec.Schema {
	defs := apiextensionsopenapi.GetOpenAPIDefinitions(modelRef)
	out := map[string]*spec.Schema{}
	var add func(model string)
	add = func(model string) {
		if _, done := out[model]; done {
			return
		}
		def, ok := defs[model]
		if !ok {
			return
		}
		s := def.Schema
		out[model] = &s
		for _, dep := range def.Dependencies {
			add(dep)
		}
	}
	add(objectMetaModel)
	return out
})

// applyModels are the models the TypeConverter of res is built from: the
// kind's, tagged with its group, version and kind, and ObjectMeta's.
func applyModels(res *Resource) (map[string]*spec.Schema, error) {
	b, err := json.Marshal(res.OpenAPISchema)
	if err != nil {
		return nil, err
	}
	kind := &spec.Schema{}
	if err := json.Unmarshal(b, kind); err != nil {
		return nil, err
	}
	if len(kind.Type) == 0 {
		kind.Type = spec.StringOrArray{"object"}
	}
	typeMeta(kind)
	embeddedTypeMeta(kind)
	kind.AddExtension("x-kubernetes-group-version-kind", []any{
		map[string]any{"group": res.Group, "version": res.Version, "kind": res.Kind},
	})
	models := map[string]*spec.Schema{}
	for k, v := range metaModels() {
		models[k] = v
	}
	name := kindModelName(res)
	if _, taken := models[name]; taken {
		return nil, fmt.Errorf("model %s clashes with a built-in model", name)
	}
	models[name] = kind
	return models, nil
}

// kindModelName names the model of res's kind as Kubernetes does: the
// group reversed, then version and kind.
func kindModelName(res *Resource) string {
	parts := strings.Split(res.Group, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".") + "." + res.Version + "." + res.Kind
}

// typeMeta gives s the fields of every object: apiVersion and kind
// (strings) and metadata (ObjectMeta, whatever the schema says of it).
func typeMeta(s *spec.Schema) {
	s.SetProperty("apiVersion", *spec.StringProperty())
	s.SetProperty("kind", *spec.StringProperty())
	s.SetProperty("metadata", *spec.RefSchema("#/definitions/" + objectMetaModel))
}

// embeddedTypeMeta gives every object marked x-kubernetes-embedded-resource
// below s the fields of an object.
func embeddedTypeMeta(s *spec.Schema) {
	visit := func(c *spec.Schema) {
		embeddedTypeMeta(c)
		if embedded, _ := c.Extensions.GetBool("x-kubernetes-embedded-resource"); embedded {
			typeMeta(c)
		}
	}
	for name, p := range s.Properties {
		visit(&p)
		s.Properties[name] = p
	}
	if s.Items != nil && s.Items.Schema != nil {
		visit(s.Items.Schema)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		visit(s.AdditionalProperties.Schema)
	}
}

// versionConverter converts objects between the versions of a resource:
// conversion None, only apiVersion differs. It also creates the empty
// objects the FieldManager starts from.
type versionConverter struct{}

func (versionConverter) Convert(in, out, _ any) error {
	src, ok1 := in.(*unstructured.Unstructured)
	dst, ok2 := out.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return fmt.Errorf("cannot convert %T to %T", in, out)
	}
	dst.Object = src.DeepCopy().Object
	return nil
}

func (versionConverter) ConvertToVersion(in runtime.Object, gv runtime.GroupVersioner) (runtime.Object, error) {
	u, ok := in.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("cannot convert %T", in)
	}
	from := u.GroupVersionKind()
	to, ok := gv.KindForGroupVersionKinds([]schema.GroupVersionKind{from})
	if !ok {
		return nil, runtime.NewNotRegisteredErrForKind("setpoint", from)
	}
	if to == from {
		return u, nil
	}
	out := u.DeepCopy()
	out.SetGroupVersionKind(to)
	return out, nil
}

func (versionConverter) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

func (versionConverter) New(kind schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kind)
	return u, nil
}

// noDefaulter leaves objects alone: the registry defaults them after the
// merge, on every write.
type noDefaulter struct{}

func (noDefaulter) Default(runtime.Object) {}
