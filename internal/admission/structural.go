package admission

import (
	"reflect"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// checkSchemaExtras applies the structural-schema rules NewSchema leaves
// to CRD validation, with Kubernetes' field paths and messages: metadata
// at the root may only constrain name and generateName; kind, apiVersion
// and metadata of the root and of embedded resources have their types;
// x-kubernetes-list-type, x-kubernetes-list-map-keys and
// x-kubernetes-map-type are consistent (map lists have object items whose
// keys are scalar properties, required or defaulted and not nullable; set
// items are scalars or atomic; set and map items are not nullable).
// NewSchema has accepted p.
func checkSchemaExtras(p *apiextensionsv1.JSONSchemaProps, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	walkExtras(p, path, true, &errs)
	return errs
}

func walkExtras(p *apiextensionsv1.JSONSchemaProps, path *field.Path, root bool, errs *field.ErrorList) {
	for _, k := range sortedKeys(p.Properties) {
		sub := p.Properties[k]
		walkExtras(&sub, path.Child("properties").Key(k), false, errs)
	}
	if p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil {
		walkExtras(p.AdditionalProperties.Schema, path.Child("additionalProperties"), false, errs)
	}
	if p.Items != nil && p.Items.Schema != nil {
		walkExtras(p.Items.Schema, path.Child("items"), false, errs)
	}
	if root || p.XEmbeddedResource {
		checkResourceMeta(p, path, root, errs)
	}
	checkListType(p, path, errs)
}

// metadataMessage is Kubernetes' error for root metadata schemas that
// specify more than name and generateName.
const metadataMessage = "must not specify anything other than name and generateName, but metadata is implicitly specified"

// checkResourceMeta checks the kind, apiVersion and metadata properties of
// the root or of an embedded resource.
func checkResourceMeta(p *apiextensionsv1.JSONSchemaProps, path *field.Path, root bool, errs *field.ErrorList) {
	props := path.Child("properties")
	for _, k := range []string{"kind", "apiVersion"} {
		if s, ok := p.Properties[k]; ok && s.Type != "string" {
			*errs = append(*errs, field.Invalid(props.Key(k).Child("type"), s.Type, "must be string"))
		}
	}
	md, ok := p.Properties["metadata"]
	if !ok {
		return
	}
	if md.Type != "object" {
		*errs = append(*errs, field.Invalid(props.Key("metadata").Child("type"), md.Type, "must be object"))
	}
	if !root {
		return
	}
	rest := md
	rest.Type, rest.Default = "", nil
	// What the structural schema does not keep.
	rest.ID, rest.Schema, rest.Example, rest.ExternalDocs, rest.Definitions, rest.Dependencies = "", "", nil, nil, nil, nil
	_, name := md.Properties["name"]
	_, generateName := md.Properties["generateName"]
	if n := len(md.Properties); n > 0 && (name && generateName && n == 2 || (name || generateName) && n == 1) {
		rest.Properties = nil
	}
	if !reflect.DeepEqual(rest, apiextensionsv1.JSONSchemaProps{}) {
		*errs = append(*errs, field.Forbidden(props.Key("metadata"), metadataMessage))
	}
}

var (
	listTypes = []string{"atomic", "set", "map"}
	mapTypes  = []string{"atomic", "granular"}
)

// checkListType checks the list and map type extensions of one schema.
func checkListType(p *apiextensionsv1.JSONSchemaProps, path *field.Path, errs *field.ErrorList) {
	add := func(e *field.Error) { *errs = append(*errs, e) }
	if p.XMapType != nil {
		if p.Type != "object" {
			add(typeError(path, p.Type, "must be object if x-kubernetes-map-type is specified"))
		}
		if !slices.Contains(mapTypes, *p.XMapType) {
			add(field.NotSupported(path.Child("x-kubernetes-map-type"), *p.XMapType, mapTypes))
		}
	}
	var items *apiextensionsv1.JSONSchemaProps
	if p.Items != nil {
		items = p.Items.Schema
	}
	lt := p.XListType
	if lt != nil && p.Type != "array" {
		add(typeError(path, p.Type, "must be array if x-kubernetes-list-type is specified"))
	} else if lt != nil && *lt == "set" && items != nil {
		switch items.Type {
		case "array":
			if items.XListType != nil && *items.XListType != "atomic" {
				add(field.Invalid(path.Child("items", "x-kubernetes-list-type"), items.XListType, "must be atomic as item of a list with x-kubernetes-list-type=set"))
			}
		case "object":
			if items.XMapType == nil || *items.XMapType != "atomic" {
				// Kubernetes reports the items' list type here.
				add(field.Invalid(path.Child("items", "x-kubernetes-map-type"), items.XListType, "must be atomic as item of a list with x-kubernetes-list-type=set"))
			}
		}
	}
	if lt != nil && !slices.Contains(listTypes, *lt) {
		add(field.NotSupported(path.Child("x-kubernetes-list-type"), *lt, listTypes))
	}
	if len(p.XListMapKeys) > 0 {
		if lt == nil {
			add(field.Required(path.Child("x-kubernetes-list-type"), "must be map if x-kubernetes-list-map-keys is non-empty"))
		} else if *lt != "map" {
			add(field.Invalid(path.Child("x-kubernetes-list-type"), *lt, "must be map if x-kubernetes-list-map-keys is non-empty"))
		}
	}
	if lt == nil || *lt != "map" && *lt != "set" {
		return
	}
	if *lt == "map" {
		checkMapList(p, path, add)
	}
	if items != nil && items.Nullable {
		add(field.Forbidden(path.Child("items", "nullable"), "cannot be nullable when x-kubernetes-list-type is "+*lt))
	}
	if *lt == "map" && items != nil {
		for _, k := range p.XListMapKeys {
			s, ok := items.Properties[k]
			if !ok {
				continue
			}
			kp := path.Child("items", "properties").Key(k)
			if !slices.Contains(items.Required, k) && s.Default == nil {
				add(field.Required(kp.Child("default"), "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"))
			}
			if s.Nullable {
				add(field.Forbidden(kp.Child("nullable"), "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"))
			}
		}
	}
}

// checkMapList checks a list with x-kubernetes-list-type map: keys, a
// single items schema of type object, and keys naming scalar properties.
func checkMapList(p *apiextensionsv1.JSONSchemaProps, path *field.Path, add func(*field.Error)) {
	if len(p.XListMapKeys) == 0 {
		add(field.Required(path.Child("x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map"))
	}
	switch {
	case p.Items == nil:
		add(field.Required(path.Child("items"), "must have a schema if x-kubernetes-list-type is map"))
		return
	case p.Items.Schema == nil:
		add(field.Invalid(path.Child("items"), p.Items, "must only have a single schema if x-kubernetes-list-type is map"))
		return
	}
	items := p.Items.Schema
	if items.Type != "object" {
		add(field.Invalid(path.Child("items", "type"), items.Type, "must be object if parent array's x-kubernetes-list-type is map"))
		return
	}
	seen := map[string]bool{}
	for _, k := range p.XListMapKeys {
		if s, ok := items.Properties[k]; !ok {
			add(field.Invalid(path.Child("x-kubernetes-list-map-keys"), p.XListMapKeys, "entries must all be names of item properties"))
		} else if s.Type == "array" || s.Type == "object" {
			// Kubernetes reports the items' type as the value.
			add(field.Invalid(path.Child("items", "properties").Key(k).Child("type"), items.Type, "must be a scalar type if parent array's x-kubernetes-list-type is map"))
		}
		if seen[k] {
			add(field.Invalid(path.Child("x-kubernetes-list-map-keys"), p.XListMapKeys, "must not contain duplicate entries"))
		}
		seen[k] = true
	}
}

// typeError is Kubernetes' error for a type an extension needs: Required
// when the type is missing, Invalid otherwise.
func typeError(path *field.Path, typ, msg string) *field.Error {
	if typ == "" {
		return field.Required(path.Child("type"), msg)
	}
	return field.Invalid(path.Child("type"), typ, msg)
}
