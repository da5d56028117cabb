package registry

import (
	"errors"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/kube-openapi/pkg/schemaconv"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/merge"
	smdschema "sigs.k8s.io/structured-merge-diff/v6/schema"
	smdtyped "sigs.k8s.io/structured-merge-diff/v6/typed"
)

// The FieldManager's update costs mostly in round trips of managedFields
// through metav1.ManagedFieldsEntry, JSON and back. trackUpdateFast runs
// the same steps (the managers of k8s.io/apimachinery's
// managedfields/internal, in their order) on the decoded object's maps
// with the same merge engine, and gives up, leaving the work to the
// FieldManager, wherever it cannot be sure to compute the same result:
// managedFields of another version, sent in the body unlike the stored
// ones, malformed or more than the cap of update managers.

// maxUpdateManagers is the FieldManager's cap on Update entries, beyond
// which it merges the oldest: trackUpdateFast leaves that to it.
const maxUpdateManagers = 10

// currentOperation is the name under which the FieldManager records what
// the update at hand changed before crediting its manager.
const currentOperation = "current-operation"

// errOtherVersion is sameVersion's answer for other versions, which
// trackUpdateFast never asks for.
var errOtherVersion = errors.New("conversion to another version")

// sameVersion is the merge engine's converter of trackUpdateFast, whose
// managers all use the resource's own version: conversion to it is the
// identity.
type sameVersion fieldpath.APIVersion

func (v sameVersion) Convert(o *smdtyped.TypedValue, version fieldpath.APIVersion) (*smdtyped.TypedValue, error) {
	if version != fieldpath.APIVersion(v) {
		return nil, errOtherVersion
	}
	return o, nil
}

func (sameVersion) IsMissingVersionError(error) bool { return false }

// managerInfo is what identifies a managedFields entry, with its time.
type managerInfo struct {
	manager, operation, apiVersion, subresource string
	time                                        *time.Time
	// fields is the entry's fieldsV1 as read, where it is what
	// fieldsFromSet makes of set, the set read from it: an entry whose
	// set the update leaves alone keeps it instead of encoding the set
	// again.
	fields map[string]any
	set    *fieldpath.Set
}

// managerID identifies an entry as the FieldManager does: by manager,
// operation, subresource and, for updates, apiVersion. (The
// FieldManager's identifiers are JSON; only their order would matter,
// when it merges the oldest of too many update entries, which
// trackUpdateFast leaves to it.)
func managerID(manager, operation, apiVersion, subresource string) string {
	if operation == string(metav1.ManagedFieldsOperationApply) {
		apiVersion = ""
	}
	return strconv.Quote(manager) + strconv.Quote(operation) + strconv.Quote(apiVersion) + strconv.Quote(subresource)
}

// managedFieldsPath is where managedFields live; sets that name it are
// left to the FieldManager, which keeps them in the objects it compares.
var (
	metadataElement      = fieldpath.PathElement{FieldName: ptrTo("metadata")}
	managedFieldsElement = fieldpath.PathElement{FieldName: ptrTo("managedFields")}
)

func ptrTo[T any](v T) *T { return &v }

// namesManagedFields reports whether s has paths at or below
// metadata.managedFields.
func namesManagedFields(s *fieldpath.Set) bool {
	md, ok := s.Children.Get(metadataElement)
	if !ok {
		return false
	}
	_, child := md.Children.Get(managedFieldsElement)
	return child || md.Members.Has(managedFieldsElement)
}

// decodeManaged decodes a managedFields list of version as the
// FieldManager does, into sets by manager identifier, or reports false
// when it cannot vouch for the same result.
func decodeManaged(list any, version string) (fieldpath.ManagedFields, map[string]managerInfo, bool) {
	entries, ok := list.([]any)
	if !ok || len(entries) == 0 {
		return nil, nil, false
	}
	managed := make(fieldpath.ManagedFields, len(entries))
	infos := make(map[string]managerInfo, len(entries))
	for _, e := range entries {
		entry, ok := e.(map[string]any)
		if !ok {
			return nil, nil, false
		}
		var info managerInfo
		var fields map[string]any
		for k, v := range entry {
			if k == "fieldsV1" {
				if fields, ok = v.(map[string]any); !ok {
					return nil, nil, false
				}
				continue
			}
			s, ok := v.(string)
			if !ok {
				return nil, nil, false
			}
			switch k {
			case "manager":
				info.manager = s
			case "operation":
				info.operation = s
			case "apiVersion":
				info.apiVersion = s
			case "subresource":
				info.subresource = s
			case "fieldsType":
				if s != "FieldsV1" {
					return nil, nil, false
				}
			case "time":
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					return nil, nil, false
				}
				info.time = &t
			default:
				return nil, nil, false
			}
		}
		if _, ok := entry["fieldsType"]; !ok || fields == nil || info.apiVersion != version {
			return nil, nil, false
		}
		if info.operation != string(metav1.ManagedFieldsOperationApply) && info.operation != string(metav1.ManagedFieldsOperationUpdate) {
			return nil, nil, false
		}
		id := managerID(info.manager, info.operation, info.apiVersion, info.subresource)
		if _, dup := infos[id]; dup {
			return nil, nil, false
		}
		set, ok := setFromFields(fields)
		if !ok || namesManagedFields(set) {
			return nil, nil, false
		}
		managed[id] = fieldpath.NewVersionedSet(set, fieldpath.APIVersion(version), info.operation == string(metav1.ManagedFieldsOperationApply))
		if canonicalFields(fields, true) {
			info.fields, info.set = fields, set
		}
		infos[id] = info
	}
	return managed, infos, true
}

// setFromFields is fieldpath's Set.FromJSON on a decoded fieldsV1 map:
// "." marks its parent a member, as does an empty object; keys of unknown
// kinds are dropped.
func setFromFields(fields map[string]any) (*fieldpath.Set, bool) {
	children, _, ok := readFields(fields)
	if children == nil {
		children = fieldpath.NewSet()
	}
	return children, ok
}

func readFields(fields map[string]any) (children *fieldpath.Set, isMember, ok bool) {
	for key, v := range fields {
		if key == "." {
			isMember = true
			continue
		}
		if !utf8.ValidString(key) {
			return nil, false, false
		}
		pe, err := fieldpath.DeserializePathElement(key)
		if errors.Is(err, fieldpath.ErrUnknownPathElementType) {
			continue
		}
		sub, isMap := v.(map[string]any)
		if err != nil || !isMap {
			return nil, false, false
		}
		grandchildren, childIsMember, ok := readFields(sub)
		if !ok {
			return nil, false, false
		}
		if children == nil {
			children = &fieldpath.Set{}
		}
		if childIsMember {
			children.Members.Insert(pe)
		}
		if grandchildren != nil {
			// Two keys naming one element: which wins depends on
			// their order in JSON, which a map does not keep.
			if _, dup := children.Children.Get(pe); dup {
				return nil, false, false
			}
			*children.Children.Descend(pe) = *grandchildren
		}
	}
	if children == nil {
		isMember = true
	}
	return children, isMember, true
}

// canonicalFields reports whether fieldsFromSet gives back fields (a
// fieldsV1 map setFromFields accepts) from the set setFromFields reads of
// it: every key in its serialized form and of a known kind, "." only as
// an empty object beside other keys, never at the top.
func canonicalFields(fields map[string]any, top bool) bool {
	for key, v := range fields {
		sub, isMap := v.(map[string]any)
		if !isMap {
			return false
		}
		if key == "." {
			if top || len(sub) > 0 || len(fields) == 1 {
				return false
			}
			continue
		}
		if !strings.HasPrefix(key, "f:") {
			pe, err := fieldpath.DeserializePathElement(key)
			if err != nil {
				return false
			}
			if again, err := fieldpath.SerializePathElement(pe); err != nil || again != key {
				return false
			}
		}
		if !canonicalFields(sub, false) {
			return false
		}
	}
	return true
}

// fieldsFromSet is fieldpath's Set.ToJSON as a decoded fieldsV1 map.
func fieldsFromSet(s *fieldpath.Set) (map[string]any, error) {
	out := make(map[string]any, s.Members.Size())
	var err error
	s.Members.Iterate(func(pe fieldpath.PathElement) {
		if _, child := s.Children.Get(pe); child || err != nil {
			return
		}
		var key string
		if key, err = fieldpath.SerializePathElement(pe); err == nil {
			out[key] = map[string]any{}
		}
	})
	s.Children.Iterate(func(pe fieldpath.PathElement) {
		if err != nil {
			return
		}
		child, _ := s.Children.Get(pe)
		var key string
		if key, err = fieldpath.SerializePathElement(pe); err != nil {
			return
		}
		var sub map[string]any
		if sub, err = fieldsFromSet(child); err != nil {
			return
		}
		if s.Members.Has(pe) && len(sub) > 0 {
			sub["."] = map[string]any{}
		}
		out[key] = sub
	})
	return out, err
}

// withoutManagedFields is obj, shallow, without its managedFields.
func withoutManagedFields(obj map[string]any) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	if md, ok := obj["metadata"].(map[string]any); ok {
		if _, has := md["managedFields"]; has {
			m := make(map[string]any, len(md))
			for k, v := range md {
				if k != "managedFields" {
					m[k] = v
				}
			}
			out["metadata"] = m
		}
	}
	return out
}

// trackUpdateFast is trackUpdate's result for an update of live (not a
// create) computed without the FieldManager's conversions of
// managedFields, or false where it leaves the update to the FieldManager.
func (r *Registry) trackUpdateFast(res *Resource, live, obj map[string]any, sub, manager string) (map[string]any, bool) {
	fm := r.managersOf(res)
	updater := fm.updaters[sub]
	if fm.err != nil || updater == nil {
		return nil, false
	}
	version := res.apiVersion()
	liveMD, _ := live["metadata"].(map[string]any)
	liveMF, ok := liveMD["managedFields"]
	if !ok {
		return nil, false
	}
	if mf, sent := metadata(obj)["managedFields"]; sent && sub == "" && !reflect.DeepEqual(mf, liveMF) {
		return nil, false
	}
	if live["apiVersion"] != version || live["kind"] != res.Kind || obj["kind"] != res.Kind || obj["apiVersion"] != version {
		return nil, false
	}
	managed, infos, ok := decodeManaged(liveMF, version)
	if !ok {
		return nil, false
	}
	apiVersion := fieldpath.APIVersion(version)
	liveBare, objBare := withoutManagedFields(live), withoutManagedFields(obj)
	updated, ok := fm.create.update(updater, liveBare, objBare, apiVersion, managed)
	if !ok {
		if updated, ok = engineUpdate(fm, updater, liveBare, objBare, apiVersion, managed); !ok {
			return nil, false
		}
	}
	managed = updated
	// What the update changed, but the fields of every object, goes to
	// the manager, with the time of the change.
	if vs, ok := managed[currentOperation]; ok {
		delete(managed, currentOperation)
		if set := vs.Set().Difference(metaFields); !set.Empty() {
			if manager == "" {
				manager = "unknown"
			}
			id := managerID(manager, string(metav1.ManagedFieldsOperationUpdate), version, sub)
			if prev, ok := managed[id]; ok {
				set = set.Union(prev.Set())
			}
			managed[id] = fieldpath.NewVersionedSet(set, vs.APIVersion(), vs.Applied())
			now := time.Now().UTC()
			prev := infos[id]
			infos[id] = managerInfo{manager: manager, operation: string(metav1.ManagedFieldsOperationUpdate), apiVersion: version, subresource: sub, time: &now, fields: prev.fields, set: prev.set}
		}
	}
	updaters := 0
	for _, vs := range managed {
		if !vs.Applied() {
			updaters++
		}
	}
	if updaters > maxUpdateManagers {
		return nil, false
	}
	entries, ok := encodeManaged(managed, infos)
	if !ok {
		return nil, false
	}
	md := metadata(obj)
	if len(entries) == 0 {
		delete(md, "managedFields")
	} else {
		md["managedFields"] = entries
	}
	return obj, true
}

// engineUpdate is the merge engine's Update of managed by the update of
// live to obj (both without managedFields), recorded under
// currentOperation; false when it fails.
func engineUpdate(fm *fieldManagers, updater *merge.Updater, live, obj map[string]any, version fieldpath.APIVersion, managed fieldpath.ManagedFields) (fieldpath.ManagedFields, bool) {
	newTyped, err := fm.types.ObjectToTyped(&unstructured.Unstructured{Object: obj}, smdtyped.AllowDuplicates)
	if err != nil {
		return nil, false
	}
	liveTyped, err := fm.types.ObjectToTyped(&unstructured.Unstructured{Object: live}, smdtyped.AllowDuplicates)
	if err != nil {
		return nil, false
	}
	if _, managed, err = updater.Update(liveTyped, newTyped, version, managed, currentOperation); err != nil {
		return nil, false
	}
	return managed, true
}

// encodeManaged is managedFields as the FieldManager writes them: sorted
// by operation, time (to the second), manager, apiVersion and
// subresource.
func encodeManaged(managed fieldpath.ManagedFields, infos map[string]managerInfo) ([]any, bool) {
	type entry struct {
		info managerInfo
		m    map[string]any
	}
	list := make([]entry, 0, len(managed))
	for id, vs := range managed {
		info := infos[id]
		info.apiVersion = string(vs.APIVersion())
		info.operation = string(metav1.ManagedFieldsOperationUpdate)
		if vs.Applied() {
			info.operation = string(metav1.ManagedFieldsOperationApply)
		}
		fields := info.fields
		if fields == nil || !vs.Set().Equals(info.set) {
			var err error
			if fields, err = fieldsFromSet(vs.Set()); err != nil {
				return nil, false
			}
		}
		m := map[string]any{"operation": info.operation, "apiVersion": info.apiVersion, "fieldsType": "FieldsV1", "fieldsV1": fields}
		if info.manager != "" {
			m["manager"] = info.manager
		}
		if info.subresource != "" {
			m["subresource"] = info.subresource
		}
		if info.time != nil {
			m["time"] = info.time.UTC().Format(time.RFC3339)
		}
		list = append(list, entry{info, m})
	}
	seconds := func(t *time.Time) int64 {
		if t == nil {
			return 0
		}
		return t.Unix()
	}
	sort.Slice(list, func(i, j int) bool {
		p, q := list[i].info, list[j].info
		if p.operation != q.operation {
			return p.operation < q.operation
		}
		if ps, qs := seconds(p.time), seconds(q.time); ps != qs {
			return ps < qs
		}
		if p.manager != q.manager {
			return p.manager < q.manager
		}
		if p.apiVersion != q.apiVersion {
			return p.apiVersion < q.apiVersion
		}
		return p.subresource < q.subresource
	})
	out := make([]any, len(list))
	for i, e := range list {
		out[i] = e.m
	}
	return out, true
}

// createSchema is the structured-merge-diff schema of a resource's
// objects and the name of their type, for its fields method.
type createSchema struct {
	schema smdschema.Schema
	root   string
}

// newCreateSchema builds res's schema as managedfields.NewTypeConverter
// does; nil when res has none (its fields are then deduced).
func newCreateSchema(res *Resource) *createSchema {
	if res.OpenAPISchema == nil {
		return nil
	}
	models, err := applyModels(res)
	if err != nil {
		return nil
	}
	s, err := schemaconv.ToSchemaFromOpenAPI(models, false)
	if err != nil {
		return nil
	}
	return &createSchema{schema: smdschema.Schema{Types: s.Types}, root: kindModelName(res)}
}

// unownedMeta are the fields of metadata nobody owns (metaFields).
var unownedMeta = map[string]bool{
	"name": true, "namespace": true, "creationTimestamp": true, "selfLink": true, "uid": true,
	"clusterName": true, "generation": true, "managedFields": true, "resourceVersion": true,
}

// fields is the fieldsV1 a create of obj records for its manager, what
// trackCreate computes with the merge engine, read straight from the
// object with the schema: every field the object sets, containers
// marked "." but metadata, list items by their keys (k:) or values (v:),
// atomic lists and maps as leaves; apiVersion, kind, the fields of
// metadata nobody owns, and status where a subresource sets it left out.
// It reports false where it cannot vouch for the merge engine's answer:
// no schema, a value the schema does not admit, null, duplicates in a
// list of keys or values, an item without its key.
func (s *createSchema) fields(res *Resource, obj map[string]any) (map[string]any, bool) {
	if s == nil {
		return nil, false
	}
	atom, ok := s.schema.Resolve(smdschema.TypeRef{NamedType: &s.root})
	if !ok || atom.Map == nil {
		return nil, false
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		t, ok := fieldType(atom.Map, k)
		if !ok {
			return nil, false
		}
		switch {
		case k == "apiVersion" || k == "kind" || (k == "status" && res.HasStatus):
			if _, ok := s.child(v, t); !ok {
				return nil, false
			}
		case k == "metadata":
			md, isMap := v.(map[string]any)
			mdAtom, ok := s.schema.Resolve(t)
			if !isMap || !ok || mdAtom.Map == nil || mdAtom.Map.ElementRelationship == smdschema.Atomic {
				return nil, false
			}
			fields := map[string]any{}
			for mk, mv := range md {
				mt, ok := fieldType(mdAtom.Map, mk)
				if !ok {
					return nil, false
				}
				if unownedMeta[mk] {
					sub, ok := s.child(mv, mt)
					if !ok || sub != nil {
						return nil, false
					}
					continue
				}
				if !s.add(fields, "f:"+mk, mv, mt) {
					return nil, false
				}
			}
			if len(fields) > 0 {
				out["f:metadata"] = fields
			}
		default:
			if !s.add(out, "f:"+k, v, t) {
				return nil, false
			}
		}
	}
	return out, true
}

// fieldType is the type of m's field name.
func fieldType(m *smdschema.Map, name string) (smdschema.TypeRef, bool) {
	if f, ok := m.FindField(name); ok {
		return f.Type, true
	}
	return m.ElementType, m.ElementType != (smdschema.TypeRef{})
}

// add records v, of type t, under key in out: a leaf as {}, a container
// with what it holds and "." for itself.
func (s *createSchema) add(out map[string]any, key string, v any, t smdschema.TypeRef) bool {
	sub, ok := s.child(v, t)
	if !ok {
		return false
	}
	if len(sub) == 0 {
		out[key] = map[string]any{}
		return true
	}
	sub["."] = map[string]any{}
	out[key] = sub
	return true
}

// child is the fields within v, of type t: nil for a leaf.
func (s *createSchema) child(v any, t smdschema.TypeRef) (map[string]any, bool) {
	atom, ok := s.schema.Resolve(t)
	if !ok {
		return nil, false
	}
	switch x := v.(type) {
	case map[string]any:
		if atom.Map == nil {
			return nil, false
		}
		switch atom.Map.ElementRelationship {
		case smdschema.Atomic:
			return s.atomic(x, atom.Map)
		case "", smdschema.Separable:
		default:
			return nil, false
		}
		out := make(map[string]any, len(x))
		for k, cv := range x {
			ct, ok := fieldType(atom.Map, k)
			if !ok || !s.add(out, "f:"+k, cv, ct) {
				return nil, false
			}
		}
		return out, true
	case []any:
		if atom.List == nil {
			return nil, false
		}
		switch atom.List.ElementRelationship {
		case smdschema.Atomic:
			for _, item := range x {
				if _, ok := s.child(item, atom.List.ElementType); !ok {
					return nil, false
				}
			}
			return nil, true
		case smdschema.Associative:
			return s.associative(x, atom.List)
		}
		return nil, false
	case string, int64, float64, bool:
		return nil, atom.Scalar != nil && scalarFits(*atom.Scalar, x)
	}
	return nil, false
}

// atomic checks the items of an atomic map, a leaf.
func (s *createSchema) atomic(m map[string]any, atom *smdschema.Map) (map[string]any, bool) {
	for k, cv := range m {
		ct, ok := fieldType(atom, k)
		if !ok {
			return nil, false
		}
		if _, ok := s.child(cv, ct); !ok {
			return nil, false
		}
	}
	return nil, true
}

// associative is the items of a list of keys (k:) or of values (v:).
func (s *createSchema) associative(items []any, list *smdschema.List) (map[string]any, bool) {
	out := make(map[string]any, len(items))
	for _, item := range items {
		pe, ok := itemElement(list, item)
		if !ok {
			return nil, false
		}
		key, err := fieldpath.SerializePathElement(pe)
		if err != nil {
			return nil, false
		}
		if _, dup := out[key]; dup {
			return nil, false
		}
		if !s.add(out, key, item, list.ElementType) {
			return nil, false
		}
	}
	return out, true
}

// isScalar reports whether v is a string, number or boolean.
func isScalar(v any) bool {
	switch v.(type) {
	case string, int64, float64, bool:
		return true
	}
	return false
}

// scalarFits reports whether v is a value of scalar type t.
func scalarFits(t smdschema.Scalar, v any) bool {
	switch t {
	case smdschema.Numeric:
		switch v.(type) {
		case int64, float64:
			return true
		}
		return false
	case smdschema.String:
		_, ok := v.(string)
		return ok
	case smdschema.Boolean:
		_, ok := v.(bool)
		return ok
	}
	return t == smdschema.Untyped
}

// managedEntryKeys are the fields of a managedFields entry.
var managedEntryKeys = map[string]bool{
	"manager": true, "operation": true, "apiVersion": true, "time": true,
	"fieldsType": true, "fieldsV1": true, "subresource": true,
}

// plainManagedFields reads a managedFields list of plain entries (maps
// of the entry's fields only, strings where they are strings, times in
// RFC 3339, fieldsV1 maps) without the reflection of the unstructured
// converter: what the metadata checks read (fieldsV1 left out). It
// reports false for anything else, which the converter reads.
func plainManagedFields(list []any) ([]metav1.ManagedFieldsEntry, bool) {
	out := make([]metav1.ManagedFieldsEntry, len(list))
	for i, e := range list {
		entry, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		for k, v := range entry {
			if !managedEntryKeys[k] {
				return nil, false
			}
			if k == "fieldsV1" {
				if _, ok := v.(map[string]any); !ok {
					return nil, false
				}
				continue
			}
			s, ok := v.(string)
			if !ok {
				return nil, false
			}
			switch k {
			case "manager":
				out[i].Manager = s
			case "operation":
				out[i].Operation = metav1.ManagedFieldsOperationType(s)
			case "apiVersion":
				out[i].APIVersion = s
			case "fieldsType":
				out[i].FieldsType = s
			case "subresource":
				out[i].Subresource = s
			case "time":
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					return nil, false
				}
				out[i].Time = &metav1.Time{Time: t.Local()}
			}
		}
	}
	return out, true
}

// metaObject is an object for the metadata checks, whose managedFields
// are read once, cheaply where they are plain.
type metaObject struct {
	*unstructured.Unstructured
	managed []metav1.ManagedFieldsEntry
}

func newMetaObject(obj map[string]any) *metaObject {
	u := &unstructured.Unstructured{Object: obj}
	list, isList := metadata(obj)["managedFields"].([]any)
	managed, ok := plainManagedFields(list)
	if !isList || !ok {
		managed = u.GetManagedFields()
	}
	return &metaObject{Unstructured: u, managed: managed}
}

func (o *metaObject) GetManagedFields() []metav1.ManagedFieldsEntry { return o.managed }

// checkManagedFieldsShape checks what decoding metadata into ObjectMeta
// checks of managedFields, for plain entries; false for the others,
// which the decoding checks.
func checkManagedFieldsShape(v any) bool {
	list, ok := v.([]any)
	if !ok {
		return false
	}
	_, ok = plainManagedFields(list)
	return ok
}

// withoutPlainManagedFields is md without its managedFields where they
// are plain, whose checks as part of ObjectMeta would pass: the rest of
// md is what is left to decode.
func withoutPlainManagedFields(md map[string]any) map[string]any {
	mf, ok := md["managedFields"]
	if !ok || !checkManagedFieldsShape(mf) {
		return md
	}
	out := make(map[string]any, len(md))
	for k, v := range md {
		if k != "managedFields" {
			out[k] = v
		}
	}
	return out
}
