// Package admission checks and completes objects before they are stored:
// OpenAPI v3 schema validation, defaulting and pruning for custom resources,
// and Kubernetes name and metadata validation.
//
// The validator is a compact one of our own rather than kube-openapi's: it
// walks a tree compiled once per CRD version (regexps, enum and default
// values decoded up front), works directly on the map[string]any objects the
// registry holds, and produces field.Errors worded as Kubernetes words them.
//
// Structural checks done by NewSchema: $ref, missing or unknown type, root
// type object, items only with array and required with array, properties and
// additionalProperties only with object and not together,
// additionalProperties false, x-kubernetes-preserve-unknown-fields false,
// x-kubernetes-int-or-string without type, x-kubernetes-embedded-resource
// only on objects that declare or preserve fields, bad patterns, and inside
// allOf/anyOf/oneOf/not: no type, nullable, default, additionalProperties or
// x-kubernetes-* extensions (except the int-or-string anyOf/allOf idiom) or
// x-kubernetes-validations, and
// properties/items that have a counterpart in the structural schema.
// Defaults must validate against their own schema and must not contain
// fields that pruning would drop; the root has no default.
// x-kubernetes-validations rules are not checked here but by ValidateCRD
// (see cel.go), once the rest of the schema is valid, and so are the
// root metadata (only name and generateName constraints), the types of
// kind, apiVersion and metadata at the root and in embedded resources, and
// the list-type/map-keys/map-type extensions (see structural.go). Not
// checked: the type of enum values, and the metadata of embedded resources
// (kept whole by Prune, not validated by Validate).
package admission

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// Schema is a compiled openAPIV3Schema of one CRD version. It is immutable
// and safe for concurrent use.
type Schema struct {
	root  *node
	rules *celRules
}

// node is one compiled schema. Structural nodes carry the shape (props,
// additional, items); nodes under allOf/anyOf/oneOf/not carry only value
// validations but may also declare props and items to reach nested values.
type node struct {
	typ         string
	nullable    bool
	intOrString bool
	preserve    bool
	embedded    bool

	props      map[string]*node
	additional *node
	items      *node

	required []string
	enum     []any
	pattern  *regexp.Regexp
	format   string

	minimum, maximum           *float64
	exclusiveMin, exclusiveMax bool
	multipleOf                 *float64
	minLength, maxLength       *int64
	minItems, maxItems         *int64
	minProps, maxProps         *int64
	uniqueItems                bool

	allOf, anyOf, oneOf []*node
	not                 *node

	hasDefault bool
	def        any
}

var knownTypes = []string{"object", "array", "string", "integer", "number", "boolean"}

// NewSchema compiles props. It fails with a list of field errors (paths
// under spec.versions[i].schema.openAPIV3Schema, as the caller gives in
// path) when the schema is not structural or uses unsupported features.
func NewSchema(props *apiextensionsv1.JSONSchemaProps, path *field.Path) (*Schema, field.ErrorList) {
	return newSchema(props, path, celconfig.PerCallLimit)
}

// newSchema is NewSchema with the runtime cost limit of one call of a CEL
// rule, which tests lower.
func newSchema(props *apiextensionsv1.JSONSchemaProps, path *field.Path, perCallLimit uint64) (*Schema, field.ErrorList) {
	if path == nil {
		path = field.NewPath("openAPIV3Schema")
	}
	if props == nil {
		return nil, field.ErrorList{field.Required(path, "must be specified")}
	}
	var errs field.ErrorList
	if props.Type != "object" {
		errs = append(errs, field.Invalid(path.Child("type"), props.Type, "must be object at the root"))
	}
	if props.Default != nil {
		errs = append(errs, field.Forbidden(path.Child("default"), "must not be set at the root"))
	}
	c := compiler{}
	root := c.compile(props, path, nil, structuralNode)
	errs = append(errs, c.errs...)
	if len(errs) > 0 {
		return nil, errs
	}
	rules, err := newRules(props, perCallLimit)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(path, "", err.Error())}
	}
	return &Schema{root: root, rules: rules}, nil
}

type compiler struct {
	errs field.ErrorList
}

func (c *compiler) add(err *field.Error) { c.errs = append(c.errs, err) }

// mode says where a schema sits: in the structural tree or under a junctor
// (allOf, anyOf, oneOf, not), where only value validations are allowed.
type mode int

const (
	structuralNode mode = iota
	junctorMember
	// intOrStringMember is a member of allOf/anyOf directly under
	// x-kubernetes-int-or-string; it may name type integer or string.
	intOrStringMember
)

// compile turns p into a node. structural is the node of the structural
// schema at the same place when p is inside a junctor (nil otherwise).
func (c *compiler) compile(p *apiextensionsv1.JSONSchemaProps, path *field.Path, structural *node, m mode) *node {
	n := &node{
		typ:         p.Type,
		nullable:    p.Nullable,
		intOrString: p.XIntOrString,
		embedded:    p.XEmbeddedResource,
		format:      p.Format,
		required:    p.Required,
		uniqueItems: p.UniqueItems,
		minimum:     p.Minimum,
		maximum:     p.Maximum,
		multipleOf:  p.MultipleOf,
		minLength:   p.MinLength,
		maxLength:   p.MaxLength,
		minItems:    p.MinItems,
		maxItems:    p.MaxItems,
		minProps:    p.MinProperties,
		maxProps:    p.MaxProperties,

		exclusiveMin: p.ExclusiveMinimum,
		exclusiveMax: p.ExclusiveMaximum,
	}
	if p.XPreserveUnknownFields != nil {
		n.preserve = *p.XPreserveUnknownFields
		if !n.preserve {
			c.add(field.Invalid(path.Child("x-kubernetes-preserve-unknown-fields"), false, "must be true or undefined"))
		}
	}
	if p.Ref != nil {
		c.add(field.Forbidden(path.Child("$ref"), "$ref is not supported"))
	}
	if m != structuralNode {
		c.checkJunctorMember(p, path, structural, m)
	} else {
		c.checkStructural(p, path)
	}
	if p.Pattern != "" {
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			c.add(field.Invalid(path.Child("pattern"), p.Pattern, fmt.Sprintf("must be a valid regular expression: %v", err)))
		} else {
			n.pattern = re
		}
	}
	if p.MultipleOf != nil && *p.MultipleOf <= 0 {
		c.add(field.Invalid(path.Child("multipleOf"), *p.MultipleOf, "must be greater than zero"))
	}
	for i, e := range p.Enum {
		v, err := decodeJSON(e.Raw)
		if err != nil {
			c.add(field.Invalid(path.Child("enum").Index(i), string(e.Raw), fmt.Sprintf("must be valid JSON: %v", err)))
			continue
		}
		n.enum = append(n.enum, v)
	}

	if len(p.Properties) > 0 {
		n.props = make(map[string]*node, len(p.Properties))
		for _, name := range sortedKeys(p.Properties) {
			sub := p.Properties[name]
			var st *node
			if structural != nil && structural.props != nil {
				st = structural.props[name]
				if st == nil {
					c.add(field.Forbidden(path.Child("properties").Key(name), "must have a corresponding property in the structural schema"))
				}
			}
			n.props[name] = c.compile(&sub, path.Child("properties").Key(name), st, subMode(m))
		}
	}
	if p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil {
		var st *node
		if structural != nil {
			st = structural.additional
		}
		n.additional = c.compile(p.AdditionalProperties.Schema, path.Child("additionalProperties"), st, subMode(m))
	}
	if p.Items != nil {
		ip := path.Child("items")
		switch {
		case p.Items.Schema != nil:
			var st *node
			if structural != nil {
				st = structural.items
			}
			n.items = c.compile(p.Items.Schema, ip, st, subMode(m))
		case len(p.Items.JSONSchemas) > 0:
			c.add(field.Forbidden(ip, "items must be a schema object and not an array"))
		}
	}

	// Junctor members validate the value at the same place, so they are
	// checked against the structural node compiled so far.
	self := n
	if structural != nil {
		self = structural
	}
	junctor := func(name string, list []apiextensionsv1.JSONSchemaProps, m mode) []*node {
		var out []*node
		for i := range list {
			out = append(out, c.compile(&list[i], path.Child(name).Index(i), self, m))
		}
		return out
	}
	// Under x-kubernetes-int-or-string, Kubernetes allows the idiom
	// anyOf: [{type: integer}, {type: string}], also nested in allOf.
	idiom := junctorMember
	if (p.XIntOrString && m == structuralNode) || m == intOrStringMember {
		idiom = intOrStringMember
	}
	n.allOf = junctor("allOf", p.AllOf, idiom)
	n.anyOf = junctor("anyOf", p.AnyOf, idiom)
	n.oneOf = junctor("oneOf", p.OneOf, junctorMember)
	if p.Not != nil {
		n.not = c.compile(p.Not, path.Child("not"), self, junctorMember)
	}

	if p.Default != nil {
		c.compileDefault(n, p.Default, path.Child("default"), m)
	}
	return n
}

const junctorTypeDetail = "must be empty to be structural"

func (c *compiler) checkStructural(p *apiextensionsv1.JSONSchemaProps, path *field.Path) {
	preserve := p.XPreserveUnknownFields != nil && *p.XPreserveUnknownFields
	switch {
	case p.XIntOrString:
		if p.Type != "" {
			c.add(field.Invalid(path.Child("type"), p.Type, "must be empty if x-kubernetes-int-or-string is true"))
		}
	case p.Type == "":
		if !preserve {
			c.add(field.Required(path.Child("type"), "must not be empty for specified fields"))
		}
	case !slices.Contains(knownTypes, p.Type):
		c.add(field.NotSupported(path.Child("type"), p.Type, knownTypes))
	}
	if p.Type == "array" && p.Items == nil {
		c.add(field.Required(path.Child("items"), "must be specified"))
	}
	if p.Items != nil && p.Type != "array" && p.Type != "" {
		c.add(field.Forbidden(path.Child("items"), "must be empty if type is not array"))
	}
	if len(p.Properties) > 0 && p.Type != "object" && p.Type != "" {
		c.add(field.Forbidden(path.Child("properties"), "must be empty if type is not object"))
	}
	if p.AdditionalProperties != nil {
		ap := path.Child("additionalProperties")
		switch {
		case len(p.Properties) > 0:
			c.add(field.Forbidden(ap, "additionalProperties and properties are mutual exclusive"))
		case !p.AdditionalProperties.Allows:
			c.add(field.Forbidden(ap, "must not be false"))
		case p.Type != "object" && p.Type != "":
			c.add(field.Forbidden(ap, "must be empty if type is not object"))
		}
	}
	if p.XEmbeddedResource {
		if p.Type != "object" {
			c.add(field.Invalid(path.Child("type"), p.Type, "must be object if x-kubernetes-embedded-resource is true"))
		}
		if p.Type == "object" && len(p.Properties) == 0 && !preserve {
			c.add(field.Required(path.Child("properties"), "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"))
		}
	}
}

// subMode is the mode of the schemas nested in one of mode m.
func subMode(m mode) mode {
	if m == structuralNode {
		return structuralNode
	}
	return junctorMember
}

func (c *compiler) checkJunctorMember(p *apiextensionsv1.JSONSchemaProps, path *field.Path, structural *node, m mode) {
	if p.Type != "" && (m != intOrStringMember || (p.Type != "integer" && p.Type != "string")) {
		c.add(field.Forbidden(path.Child("type"), junctorTypeDetail+": "+strconv.Quote(p.Type)))
	}
	if p.Nullable {
		c.add(field.Forbidden(path.Child("nullable"), "must be false to be structural"))
	}
	if p.Default != nil {
		c.add(field.Forbidden(path.Child("default"), "must be undefined to be structural"))
	}
	if p.AdditionalProperties != nil {
		c.add(field.Forbidden(path.Child("additionalProperties"), "must be undefined to be structural"))
	}
	if p.XPreserveUnknownFields != nil {
		c.add(field.Forbidden(path.Child("x-kubernetes-preserve-unknown-fields"), "must be undefined to be structural"))
	}
	if p.XEmbeddedResource {
		c.add(field.Forbidden(path.Child("x-kubernetes-embedded-resource"), "must be false to be structural"))
	}
	if p.XIntOrString {
		c.add(field.Forbidden(path.Child("x-kubernetes-int-or-string"), "must be false to be structural"))
	}
	if len(p.XValidations) > 0 {
		c.add(field.Forbidden(path.Child("x-kubernetes-validations"), "must be empty to be structural"))
	}
	if structural == nil {
		return
	}
	if len(p.Properties) > 0 && structural.props == nil && !structural.preserve && structural.additional == nil {
		c.add(field.Forbidden(path.Child("properties"), "must have a corresponding property in the structural schema"))
	}
	if p.Items != nil && structural.items == nil {
		c.add(field.Forbidden(path.Child("items"), "must have a corresponding items schema in the structural schema"))
	}
}

// compileDefault decodes a default, and checks that pruning leaves it
// unchanged and that it validates against the node it belongs to.
func (c *compiler) compileDefault(n *node, raw *apiextensionsv1.JSON, path *field.Path, m mode) {
	if m != structuralNode {
		return
	}
	v, err := decodeJSON(raw.Raw)
	if err != nil {
		c.add(field.Invalid(path, string(raw.Raw), fmt.Sprintf("must be valid JSON: %v", err)))
		return
	}
	if len(c.errs) > 0 {
		// The node itself is broken; validating against it says nothing.
		n.hasDefault, n.def = true, v
		return
	}
	pruned := deepCopy(v)
	if unknown := prune(n, pruned, path, false); len(unknown) > 0 {
		c.add(field.Invalid(path, string(raw.Raw), fmt.Sprintf("must not have unknown fields: %v", unknown)))
	}
	if v == nil && n.nullable {
		n.hasDefault, n.def = true, v
		return
	}
	var verrs field.ErrorList
	validate(n, v, path, &verrs)
	c.errs = append(c.errs, verrs...)
	n.hasDefault, n.def = true, v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// decodeJSON decodes raw into the value model of unstructured objects:
// integers as int64, other numbers as float64.
func decodeJSON(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("decode: trailing data after the value")
	}
	return fromNumbers(v), nil
}

func fromNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = fromNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = fromNumbers(e)
		}
	}
	return v
}

// deepCopy copies a JSON value so that defaults are never shared.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}
