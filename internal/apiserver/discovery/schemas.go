package discovery

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"

	apiextensionsopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	"k8s.io/kube-openapi/pkg/builder3/util"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/setpoint/setpoint/internal/registry"
)

// Model names of the shared apimachinery types, as Kubernetes names them
// in components.schemas.
const (
	objectMetaModel    = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
	listMetaModel      = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
	statusModel        = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
	deleteOptionsModel = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
	patchModel         = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
	namespaceModel     = "io.k8s.api.core.v1.Namespace"
)

// gvkExtension is the extension clients (kubectl explain, the field
// validation check, client-go's type converter) use to find the schema and
// the operations of a kind.
const gvkExtension = "x-kubernetes-group-version-kind"

// schemaRef is the JSON reference to a model in components.schemas.
func schemaRef(model string) spec.Ref {
	return spec.MustCreateRef("#/components/schemas/" + common.EscapeJsonPointer(model))
}

// refSchema is a schema that only refers to model.
func refSchema(model string) *spec.Schema {
	return &spec.Schema{SchemaProps: spec.SchemaProps{Ref: schemaRef(model)}}
}

// definitions are the generated schemas of the apimachinery and
// apiextensions types plus the core types served here, by model name,
// referring to each other through components.schemas. They are shared:
// copy before changing.
var definitions = sync.OnceValue(func() map[string]common.OpenAPIDefinition {
	defs := apiextensionsopenapi.GetOpenAPIDefinitions(func(model string) spec.Ref { return schemaRef(model) })
	var core map[string]spec.Schema
	if err := json.Unmarshal([]byte(coreSchemas), &core); err != nil {
		panic(fmt.Sprintf("discovery: core schemas: %v", err))
	}
	for model, s := range core {
		defs[model] = common.OpenAPIDefinition{Schema: s, Dependencies: dependencies(&s)}
	}
	return defs
})

// dependencies lists the models s refers to.
func dependencies(s *spec.Schema) []string {
	var deps []string
	var walk func(s *spec.Schema)
	walk = func(s *spec.Schema) {
		if ref := s.Ref.String(); ref != "" {
			deps = append(deps, strings.TrimPrefix(ref, "#/components/schemas/"))
		}
		for _, p := range s.Properties {
			walk(&p)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(s.Items.Schema)
		}
		for i := range s.AllOf {
			walk(&s.AllOf[i])
		}
	}
	walk(s)
	return deps
}

// builtinModels maps the kinds of the built-in resources, as
// "<group version>/<kind>", to their models.
var builtinModels = map[string]string{
	"v1/Namespace":     namespaceModel,
	"v1/NamespaceList": namespaceModel + "List",
	"apiextensions.k8s.io/v1/CustomResourceDefinition":     "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
	"apiextensions.k8s.io/v1/CustomResourceDefinitionList": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionList",
}

// v3Schema is a generated model in the form Kubernetes serves in OpenAPI
// v3: references with siblings wrapped in allOf and the embedded v2
// variant dropped.
func v3Schema(model string) (*spec.Schema, bool) {
	def, ok := definitions()[model]
	if !ok {
		return nil, false
	}
	schema := def.Schema
	if _, ok := schema.Extensions[common.ExtensionV2Schema]; ok {
		schema.Extensions = maps.Clone(schema.Extensions)
		delete(schema.Extensions, common.ExtensionV2Schema)
	}
	return util.WrapRefs(&schema), true
}

// encodedModels caches the JSON of generated models, which every document
// shares (model name to json.RawMessage).
var encodedModels sync.Map

// encodedModel is the JSON of a generated model's v3 schema.
func encodedModel(model string) (json.RawMessage, error) {
	if b, ok := encodedModels.Load(model); ok {
		return b.(json.RawMessage), nil
	}
	schema, ok := v3Schema(model)
	if !ok {
		return nil, fmt.Errorf("discovery: no model %s", model)
	}
	b, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("discovery: encode model %s: %w", model, err)
	}
	encodedModels.Store(model, json.RawMessage(b))
	return b, nil
}

// schemaSet is the components.schemas of one document under construction.
type schemaSet struct {
	// models are generated models, encoded once per process.
	models map[string]bool
	// built are the schemas built for this document; they take precedence
	// over models of the same name.
	built map[string]*spec.Schema
}

// newSchemaSet is an empty schemaSet.
func newSchemaSet() schemaSet {
	return schemaSet{models: map[string]bool{}, built: map[string]*spec.Schema{}}
}

// addModel adds the generated model and, recursively, the models it
// refers to.
func (s schemaSet) addModel(model string) {
	def, ok := definitions()[model]
	if !ok || s.models[model] {
		return
	}
	s.models[model] = true
	for _, dep := range def.Dependencies {
		s.addModel(dep)
	}
}

// addKind adds the model of kind (group, version, kind) and marks it with
// the kind's group-version-kind extension.
func (s schemaSet) addKind(model string, schema *spec.Schema, group, version, kind string) {
	schema.Extensions = maps.Clone(schema.Extensions)
	if schema.Extensions == nil {
		schema.Extensions = spec.Extensions{}
	}
	schema.Extensions[gvkExtension] = []any{gvkValue(group, version, kind)}
	s.built[model] = schema
}

// encode returns every schema of the set as JSON.
func (s schemaSet) encode() (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(s.models)+len(s.built))
	for model := range s.models {
		if s.built[model] == nil {
			b, err := encodedModel(model)
			if err != nil {
				return nil, err
			}
			out[model] = b
		}
	}
	for model, schema := range s.built {
		b, err := json.Marshal(schema)
		if err != nil {
			return nil, fmt.Errorf("discovery: encode schema %s: %w", model, err)
		}
		out[model] = b
	}
	return out, nil
}

// gvkValue is the value of the group-version-kind extension. Operations
// carry one such object, schemas a list of them; kubectl explain matches
// the two by deep equality, so both use the same keys and value types.
func gvkValue(group, version, kind string) map[string]any {
	return map[string]any{"group": group, "version": version, "kind": kind}
}

// kindModels adds the schemas of res's kind and list kind and returns
// their model names. Built-in kinds use their Kubernetes models; custom
// resources are named like Kubernetes names them (reversed group, version,
// kind: com.example.v1.Widget) and built from the CRD's schema.
func (s schemaSet) kindModels(res *registry.Resource) (kindModel, listModel string) {
	gv := groupVersion(res.Group, res.Version) + "/"
	model, ok := builtinModels[gv+res.Kind]
	list, listOK := builtinModels[gv+res.ListKind]
	if ok && listOK {
		k, kindOK := v3Schema(model)
		l, listOK := v3Schema(list)
		if kindOK && listOK {
			s.addModel(model)
			s.addModel(list)
			s.addKind(model, k, res.Group, res.Version, res.Kind)
			s.addKind(list, l, res.Group, res.Version, res.ListKind)
			return model, list
		}
	}
	prefix := reversedGroup(res.Group) + "." + res.Version + "."
	if res.BuiltIn() && strings.HasSuffix(res.Group, ".k8s.io") {
		// Kubernetes' own types: io.k8s.api.coordination.v1.Lease.
		prefix = "io.k8s.api." + strings.Split(res.Group, ".")[0] + "." + res.Version + "."
	}
	kindModel, listModel = prefix+res.Kind, prefix+res.ListKind
	s.addKind(kindModel, customKindSchema(res), res.Group, res.Version, res.Kind)
	s.addKind(listModel, listSchema(res, kindModel), res.Group, res.Version, res.ListKind)
	return kindModel, listModel
}

// reversedGroup turns "example.com" into "com.example"; the core group
// becomes "io.k8s.api.core" as for Kubernetes' own types.
func reversedGroup(group string) string {
	if group == "" {
		return "io.k8s.api.core"
	}
	parts := strings.Split(group, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}

// Descriptions of the fields every object has.
const (
	apiVersionDescription = "The group and version of the schema the object is written in, such as example.com/v1. " +
		"The server accepts the versions it serves and rejects the others."
	kindDescription         = "The type of the object in CamelCase, such as Widget. It cannot change once the object exists."
	metadataDescription     = "Name, namespace, labels, annotations and the fields the server maintains (uid, resourceVersion, generation, timestamps)."
	listMetadataDescription = "The list's resourceVersion, and the continue token when more items remain."
)

// typeMetaProperties adds apiVersion, kind and metadata (referring to
// metaModel) to s.
func typeMetaProperties(s *spec.Schema, metaModel, metaDescription string) {
	if s.Properties == nil {
		s.Properties = map[string]spec.Schema{}
	}
	s.Properties["apiVersion"] = spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}, Description: apiVersionDescription}}
	s.Properties["kind"] = spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}, Description: kindDescription}}
	s.Properties["metadata"] = spec.Schema{SchemaProps: spec.SchemaProps{
		Ref: schemaRef(metaModel), Description: metaDescription, Default: map[string]any{},
	}}
}

// customKindSchema is the schema of a custom resource: the CRD's schema
// with apiVersion, kind and metadata (the full ObjectMeta, as the CRD's
// schema may only restrict name and generateName) added. A CRD without a
// schema, or with one that does not convert, accepts any fields.
func customKindSchema(res *registry.Resource) *spec.Schema {
	s := convertSchema(res)
	if len(s.Type) == 0 {
		s.Type = []string{"object"}
	}
	typeMetaProperties(s, objectMetaModel, metadataDescription)
	addEmbeddedTypeMeta(s)
	return util.WrapRefs(s)
}

// addEmbeddedTypeMeta gives every object marked
// x-kubernetes-embedded-resource below s (a pod template, say) the
// apiVersion, kind and metadata fields the server accepts in it, as
// Kubernetes does in the schemas it publishes.
func addEmbeddedTypeMeta(s *spec.Schema) {
	walk := func(c *spec.Schema) {
		if embedded, _ := c.Extensions.GetBool("x-kubernetes-embedded-resource"); embedded {
			typeMetaProperties(c, objectMetaModel, metadataDescription)
		}
		addEmbeddedTypeMeta(c)
	}
	for name, p := range s.Properties {
		walk(&p)
		s.Properties[name] = p
	}
	if s.Items != nil && s.Items.Schema != nil {
		walk(s.Items.Schema)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		walk(s.AdditionalProperties.Schema)
	}
}

// convertSchema converts the CRD's openAPIV3Schema by a JSON round trip:
// both types follow the same JSON Schema subset and x-kubernetes-*
// extensions become vendor extensions.
func convertSchema(res *registry.Resource) *spec.Schema {
	permissive := &spec.Schema{VendorExtensible: spec.VendorExtensible{Extensions: spec.Extensions{
		"x-kubernetes-preserve-unknown-fields": true,
	}}}
	if res.OpenAPISchema == nil {
		return permissive
	}
	b, err := json.Marshal(res.OpenAPISchema)
	if err != nil {
		return permissive
	}
	s := &spec.Schema{}
	if err := json.Unmarshal(b, s); err != nil {
		return permissive
	}
	return s
}

// listSchema is the schema of a custom resource's list kind.
func listSchema(res *registry.Resource, kindModel string) *spec.Schema {
	s := &spec.Schema{SchemaProps: spec.SchemaProps{
		Description: res.ListKind + " is a list of " + res.Kind + ".",
		Type:        []string{"object"},
		Required:    []string{"items"},
	}}
	typeMetaProperties(s, listMetaModel, listMetadataDescription)
	s.Properties["items"] = spec.Schema{SchemaProps: spec.SchemaProps{
		Description: "List of " + res.Resource + ".",
		Type:        []string{"array"},
		Items:       &spec.SchemaOrArray{Schema: refSchema(kindModel)},
	}}
	return util.WrapRefs(s)
}

// coreSchemas are the models of the core types served, in the shape of
// Kubernetes' own (fields this server does not use are left out).
const coreSchemas = `{
  "io.k8s.api.core.v1.Namespace": {
    "description": "A Namespace groups namespaced objects; their names are unique within it.",
    "type": "object",
    "properties": {
      "apiVersion": {"type": "string", "description": "` + apiVersionDescription + `"},
      "kind": {"type": "string", "description": "` + kindDescription + `"},
      "metadata": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "description": "` + metadataDescription + `", "default": {}},
      "spec": {"$ref": "#/components/schemas/io.k8s.api.core.v1.NamespaceSpec", "description": "What the namespace should be.", "default": {}},
      "status": {"$ref": "#/components/schemas/io.k8s.api.core.v1.NamespaceStatus", "description": "What the namespace is, as observed by the server.", "default": {}}
    }
  },
  "io.k8s.api.core.v1.NamespaceList": {
    "description": "A list of Namespace objects.",
    "type": "object",
    "required": ["items"],
    "properties": {
      "apiVersion": {"type": "string", "description": "` + apiVersionDescription + `"},
      "kind": {"type": "string", "description": "` + kindDescription + `"},
      "metadata": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta", "description": "` + listMetadataDescription + `", "default": {}},
      "items": {"type": "array", "description": "The namespaces.",
        "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Namespace", "default": {}}}
    }
  },
  "io.k8s.api.core.v1.NamespaceSpec": {
    "description": "The desired state of a Namespace.",
    "type": "object",
    "properties": {
      "finalizers": {"type": "array", "description": "Values that must all be removed before the namespace is deleted from storage.",
        "items": {"type": "string", "default": ""}, "x-kubernetes-list-type": "atomic"}
    }
  },
  "io.k8s.api.core.v1.NamespaceStatus": {
    "description": "The observed state of a Namespace.",
    "type": "object",
    "properties": {
      "phase": {"type": "string", "description": "Active, or Terminating once deletion has begun.", "enum": ["Active", "Terminating"]},
      "conditions": {"type": "array", "description": "The latest observations of the namespace's state, one per type.",
        "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.NamespaceCondition", "default": {}},
        "x-kubernetes-list-map-keys": ["type"], "x-kubernetes-list-type": "map",
        "x-kubernetes-patch-merge-key": "type", "x-kubernetes-patch-strategy": "merge"}
    }
  },
  "io.k8s.api.core.v1.NamespaceCondition": {
    "description": "One observation of a namespace's state.",
    "type": "object",
    "required": ["type", "status"],
    "properties": {
      "type": {"type": "string", "description": "What the condition is about.", "default": ""},
      "status": {"type": "string", "description": "True, False or Unknown.", "default": ""},
      "lastTransitionTime": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time", "description": "When the status last changed."},
      "reason": {"type": "string", "description": "Why the status last changed, as one CamelCase word."},
      "message": {"type": "string", "description": "Why the status last changed, for people."}
    }
  }
}`
