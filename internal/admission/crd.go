package admission

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/jsonpath"
)

var (
	crdScopes = []apiextensionsv1.ResourceScope{apiextensionsv1.NamespaceScoped, apiextensionsv1.ClusterScoped}
	// printerTypes and printerFormats are the types and formats a printer
	// column may have, sorted as Kubernetes lists them in its errors.
	printerTypes    = []string{"boolean", "date", "integer", "number", "string"}
	printerFormats  = []string{"byte", "date", "date-time", "double", "float", "int32", "int64", "password"}
	conversionNone  = []apiextensionsv1.ConversionStrategyType{apiextensionsv1.NoneConverter}
	crdSpecPath     = field.NewPath("spec")
	crdVersionsPath = crdSpecPath.Child("versions")
	crdMetadataPath = field.NewPath("metadata")
	crdNamesPath    = crdSpecPath.Child("names")
)

// DefaultCRD fills in what Kubernetes defaults in a CRD: names.singular
// (the lower-case kind), names.listKind (kind + "List") and the None
// conversion strategy.
func DefaultCRD(crd *apiextensionsv1.CustomResourceDefinition) {
	names := &crd.Spec.Names
	if names.Singular == "" {
		names.Singular = strings.ToLower(names.Kind)
	}
	if names.ListKind == "" && names.Kind != "" {
		names.ListKind = names.Kind + "List"
	}
	if crd.Spec.Conversion == nil {
		crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{}
	}
	if crd.Spec.Conversion.Strategy == "" {
		crd.Spec.Conversion.Strategy = apiextensionsv1.NoneConverter
	}
}

// ValidateCRD checks a (defaulted) CRD: its name is plural.group, group,
// names, scope and versions are valid, exactly one version is stored and at
// least one served, and every version has a structural schema with type
// object at the root and valid printer columns. Only the None conversion
// strategy is supported.
func ValidateCRD(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	return validateCRD(crd, ruleOptions{})
}

// validateCRD implements ValidateCRD; opts carry what an update keeps from
// the old CRD for the checks of x-kubernetes-validations rules.
func validateCRD(crd *apiextensionsv1.CustomResourceDefinition, opts ruleOptions) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaAccessor(crd, false, apivalidation.NameIsDNSSubdomain, crdMetadataPath)
	spec := &crd.Spec
	if want := spec.Names.Plural + "." + spec.Group; crd.Name != want {
		errs = append(errs, field.Invalid(crdMetadataPath.Child("name"), crd.Name, fmt.Sprintf(`must be spec.names.plural+"."+spec.group (%q)`, want)))
	}
	errs = append(errs, validateGroup(spec.Group)...)
	errs = append(errs, validateNames(&spec.Names)...)
	if !slices.Contains(crdScopes, spec.Scope) {
		errs = append(errs, field.NotSupported(crdSpecPath.Child("scope"), spec.Scope, crdScopes))
	}
	errs = append(errs, validateVersions(spec.Versions, opts)...)
	if spec.Conversion == nil || spec.Conversion.Strategy != apiextensionsv1.NoneConverter {
		var got apiextensionsv1.ConversionStrategyType
		if spec.Conversion != nil {
			got = spec.Conversion.Strategy
		}
		errs = append(errs, field.NotSupported(crdSpecPath.Child("conversion", "strategy"), got, conversionNone))
	}
	return errs
}

// ValidateCRDUpdate checks newCRD as ValidateCRD does and the update rules:
// metadata update rules, immutable scope and group, and the stored
// versions. newCRD carries the status.storedVersions it is to be stored
// with (the old list, plus the storage version when that is new): each of
// them must still appear in spec.versions, or the objects stored in it
// could no longer be read, and the storage version must be among them.
//
// As in Kubernetes, rules and message expressions the old CRD has compile
// with the libraries of stored expressions, and the estimated cost of each
// rule of a version whose schema did not change is not checked again.
func ValidateCRDUpdate(newCRD, oldCRD *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	opts := ruleOptions{
		stored:    &storedExpressions{rules: map[string]bool{}, messages: map[string]bool{}},
		unchanged: map[string]bool{},
	}
	for _, v := range oldCRD.Spec.Versions {
		if v.Schema != nil {
			opts.stored.add(v.Schema.OpenAPIV3Schema)
		}
	}
	for _, v := range newCRD.Spec.Versions {
		for _, o := range oldCRD.Spec.Versions {
			if o.Name == v.Name && equality.Semantic.DeepEqual(o.Schema, v.Schema) {
				opts.unchanged[v.Name] = true
			}
		}
	}
	errs := validateCRD(newCRD, opts)
	errs = append(errs, apivalidation.ValidateObjectMetaAccessorUpdate(newCRD, oldCRD, crdMetadataPath)...)
	errs = append(errs, apivalidation.ValidateImmutableField(newCRD.Spec.Scope, oldCRD.Spec.Scope, crdSpecPath.Child("scope"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(newCRD.Spec.Group, oldCRD.Spec.Group, crdSpecPath.Child("group"))...)
	return append(errs, validateStoredVersions(newCRD)...)
}

// validateStoredVersions checks status.storedVersions against spec.versions
// with Kubernetes' field paths and messages.
func validateStoredVersions(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	path := field.NewPath("status", "storedVersions")
	stored := crd.Status.StoredVersions
	if len(stored) == 0 {
		return field.ErrorList{field.Invalid(path, stored, "must have at least one stored version")}
	}
	var errs field.ErrorList
	for _, v := range crd.Spec.Versions {
		if v.Storage && !slices.Contains(stored, v.Name) {
			errs = append(errs, field.Invalid(path, stored, "must have the storage version "+v.Name))
		}
	}
	for i, name := range stored {
		if !slices.ContainsFunc(crd.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Name == name }) {
			errs = append(errs, field.Invalid(path.Index(i), name, "must appear in spec.versions"))
		}
	}
	return errs
}

func validateGroup(group string) field.ErrorList {
	path := crdSpecPath.Child("group")
	if group == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(group) {
		errs = append(errs, field.Invalid(path, group, msg))
	}
	if !strings.Contains(group, ".") {
		errs = append(errs, field.Invalid(path, group, "should be a domain with at least one dot"))
	}
	return errs
}

func validateNames(names *apiextensionsv1.CustomResourceDefinitionNames) field.ErrorList {
	var errs field.ErrorList
	label := func(path *field.Path, v string) {
		if v == "" {
			errs = append(errs, field.Required(path, ""))
			return
		}
		for _, msg := range validation.IsDNS1035Label(v) {
			errs = append(errs, field.Invalid(path, v, msg))
		}
	}
	kind := func(path *field.Path, v string) {
		if v == "" {
			errs = append(errs, field.Required(path, ""))
			return
		}
		for _, msg := range validation.IsDNS1035Label(strings.ToLower(v)) {
			errs = append(errs, field.Invalid(path, v, msg))
		}
	}
	label(crdNamesPath.Child("plural"), names.Plural)
	label(crdNamesPath.Child("singular"), names.Singular)
	kind(crdNamesPath.Child("kind"), names.Kind)
	kind(crdNamesPath.Child("listKind"), names.ListKind)
	if names.Kind != "" && names.Kind == names.ListKind {
		errs = append(errs, field.Invalid(crdNamesPath.Child("listKind"), names.ListKind, "kind and listKind may not be the same"))
	}
	for i, s := range names.ShortNames {
		label(crdNamesPath.Child("shortNames").Index(i), s)
	}
	for i, c := range names.Categories {
		label(crdNamesPath.Child("categories").Index(i), c)
	}
	return errs
}

func validateVersions(versions []apiextensionsv1.CustomResourceDefinitionVersion, opts ruleOptions) field.ErrorList {
	if len(versions) == 0 {
		return field.ErrorList{field.Required(crdVersionsPath, "must have at least one version")}
	}
	var errs field.ErrorList
	storage, served := 0, 0
	seen := map[string]bool{}
	for i := range versions {
		v := &versions[i]
		path := crdVersionsPath.Index(i)
		if v.Storage {
			storage++
		}
		if v.Served {
			served++
		}
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(path.Child("name"), ""))
		case seen[v.Name]:
			errs = append(errs, field.Duplicate(path.Child("name"), v.Name))
		default:
			for _, msg := range validation.IsDNS1035Label(v.Name) {
				errs = append(errs, field.Invalid(path.Child("name"), v.Name, msg))
			}
		}
		seen[v.Name] = true
		errs = append(errs, validateVersion(v, path, opts)...)
	}
	if storage != 1 {
		errs = append(errs, field.Invalid(crdVersionsPath, storage, "must have exactly one version marked as storage version"))
	}
	if served == 0 {
		errs = append(errs, field.Invalid(crdVersionsPath, served, "must have at least one version marked as served"))
	}
	return errs
}

func validateVersion(v *apiextensionsv1.CustomResourceDefinitionVersion, path *field.Path, opts ruleOptions) field.ErrorList {
	var errs field.ErrorList
	schemaPath := path.Child("schema", "openAPIV3Schema")
	if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		errs = append(errs, field.Required(schemaPath, "schemas are required"))
	} else if _, serrs := NewSchema(v.Schema.OpenAPIV3Schema, schemaPath); len(serrs) > 0 {
		errs = append(errs, serrs...)
	} else {
		errs = append(errs, checkRules(v.Schema.OpenAPIV3Schema, schemaPath, opts.stored, opts.unchanged[v.Name])...)
		if !opts.unchanged[v.Name] {
			// An update keeps what an older server accepted.
			errs = append(errs, checkSchemaExtras(v.Schema.OpenAPIV3Schema, schemaPath)...)
		}
	}
	errs = append(errs, validateDeprecationWarning(v, path.Child("deprecationWarning"))...)
	if sub := v.Subresources; sub != nil && sub.Scale != nil {
		errs = append(errs, validateScale(sub.Scale, path.Child("subresources"))...)
	}
	for i, col := range v.AdditionalPrinterColumns {
		errs = append(errs, validatePrinterColumn(&col, path.Child("additionalPrinterColumns").Index(i))...)
	}
	if len(v.SelectableFields) > 0 {
		sp := path.Child("selectableFields")
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			// Kubernetes' message, negation included.
			errs = append(errs, field.Invalid(sp, "", "may only be set when `version.schema.openAPIV3Schema` is not included"))
		} else {
			errs = append(errs, validateSelectableFields(v.SelectableFields, v.Schema.OpenAPIV3Schema, sp)...)
		}
	}
	return errs
}

// validateDeprecationWarning checks a version's deprecationWarning with
// Kubernetes' messages.
func validateDeprecationWarning(v *apiextensionsv1.CustomResourceDefinitionVersion, path *field.Path) field.ErrorList {
	w := v.DeprecationWarning
	if w == nil {
		return nil
	}
	var msgs []string
	if !v.Deprecated {
		msgs = append(msgs, "can only be set for deprecated versions")
	} else {
		if len(*w) > 256 {
			msgs = append(msgs, "must be <= 256 characters long")
		}
		if len(*w) == 0 {
			msgs = append(msgs, "must not be an empty string")
		}
		for i, r := range *w {
			if !unicode.IsPrint(r) {
				msgs = append(msgs, fmt.Sprintf("must only contain printable UTF-8 characters; non-printable character found at index %d", i))
				break
			}
			if unicode.IsControl(r) {
				msgs = append(msgs, fmt.Sprintf("must only contain printable UTF-8 characters; control character found at index %d", i))
				break
			}
		}
		if !utf8.ValidString(*w) {
			msgs = append(msgs, "must only contain printable UTF-8 characters")
		}
	}
	var errs field.ErrorList
	for _, m := range msgs {
		errs = append(errs, field.Invalid(path, *w, m))
	}
	return errs
}

// validateScale checks the scale subresource's paths with Kubernetes'
// field paths and messages.
func validateScale(sc *apiextensionsv1.CustomResourceSubresourceScale, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	check := func(name, value string, under ...string) {
		p := path.Child("scale." + name)
		if value == "" {
			errs = append(errs, field.Required(p, ""))
			return
		}
		if value[0] != '.' {
			errs = append(errs, field.Invalid(p, value, "must be a simple json path starting with ."))
			return
		}
		for _, u := range under {
			if strings.HasPrefix(value, "."+u+".") {
				return
			}
		}
		msg := "should be a json path under ." + under[0]
		if len(under) > 1 {
			msg = "should be a json path under either .spec or .status"
		}
		errs = append(errs, field.Invalid(p, value, msg))
	}
	check("specReplicasPath", sc.SpecReplicasPath, "spec")
	check("statusReplicasPath", sc.StatusReplicasPath, "status")
	if sc.LabelSelectorPath != nil && *sc.LabelSelectorPath != "" {
		check("labelSelectorPath", *sc.LabelSelectorPath, "spec", "status")
	}
	return errs
}

// MaxSelectableFields is how many selectable fields a CRD version may have.
const MaxSelectableFields = 8

// validateSelectableFields checks a version's selectableFields against its
// schema as Kubernetes does: each a simple path (no array notation) to a
// string, boolean or integer field outside metadata, no duplicates, at
// most MaxSelectableFields.
func validateSelectableFields(sfs []apiextensionsv1.SelectableField, schema *apiextensionsv1.JSONSchemaProps, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, sf := range sfs {
		jp := path.Index(i).Child("jsonPath")
		if sf.JSONPath == "" {
			errs = append(errs, field.Required(jp, ""))
			continue
		}
		steps, leaf, err := schemaFieldPath(sf.JSONPath, schema)
		if err != nil {
			errs = append(errs, field.Invalid(jp, sf.JSONPath, fmt.Sprintf("is an invalid path: %v", err)))
			continue
		}
		if steps[0] == "metadata" {
			errs = append(errs, field.Invalid(jp, sf.JSONPath, "must not point to fields in metadata"))
		}
		switch leaf.Type {
		case "string", "boolean", "integer":
		default:
			errs = append(errs, field.Invalid(jp, sf.JSONPath, "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."))
		}
		key := strings.Join(steps, ".")
		if seen[key] {
			errs = append(errs, field.Duplicate(jp, sf.JSONPath))
		}
		seen[key] = true
	}
	if len(seen) > MaxSelectableFields {
		errs = append(errs, field.TooMany(path, len(seen), MaxSelectableFields))
	}
	return errs
}

// schemaFieldPath resolves a simple JSON path such as ".spec.color"
// against schema and returns its steps and the schema it points to, with
// Kubernetes' errors for what it rejects.
func schemaFieldPath(jsonPath string, schema *apiextensionsv1.JSONSchemaProps) ([]string, *apiextensionsv1.JSONSchemaProps, error) {
	var steps []string
	for rest := jsonPath; rest != ""; {
		switch rest[0] {
		case '[':
			return nil, nil, fmt.Errorf("array notation is not allowed")
		case '.':
		default:
			tok := rest[:strings.IndexAny(rest+".", ".[]")]
			if tok == "" {
				tok = rest[:1]
			}
			return nil, nil, fmt.Errorf("expected [ or . but got: %s", tok)
		}
		rest = rest[1:]
		end := strings.IndexAny(rest+".", ".[]")
		step := rest[:end]
		if end == 0 {
			if rest == "" {
				return nil, nil, fmt.Errorf("unexpected end of JSON path")
			}
			step, end = rest[:1], 1
		}
		rest = rest[end:]
		switch {
		case len(schema.Properties) > 0:
			next, ok := schema.Properties[step]
			if !ok {
				return nil, nil, fmt.Errorf("does not refer to a valid field")
			}
			schema = &next
		case schema.AdditionalProperties != nil && schema.AdditionalProperties.Schema != nil:
			schema = schema.AdditionalProperties.Schema
		default:
			return nil, nil, fmt.Errorf("does not refer to a valid field")
		}
		steps = append(steps, step)
	}
	if len(steps) == 0 {
		return nil, nil, fmt.Errorf("does not refer to a valid field")
	}
	return steps, schema, nil
}

// validatePrinterColumn checks one additionalPrinterColumns entry with
// Kubernetes' messages. Its field path for the JSONPath is Kubernetes'
// too: "JSONPath", the name in its internal types. Beyond Kubernetes' check
// that the path starts with ".", the path must parse as a JSONPath:
// Kubernetes accepts ".spec[" and then cannot print the resource as a
// table.
func validatePrinterColumn(col *apiextensionsv1.CustomResourceColumnDefinition, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if col.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), ""))
	}
	oneOf := func(values []string) string { return "must be one of " + strings.Join(values, ",") }
	switch {
	case col.Type == "":
		errs = append(errs, field.Required(path.Child("type"), oneOf(printerTypes)))
	case !slices.Contains(printerTypes, col.Type):
		errs = append(errs, field.Invalid(path.Child("type"), col.Type, oneOf(printerTypes)))
	}
	if col.Format != "" && !slices.Contains(printerFormats, col.Format) {
		errs = append(errs, field.Invalid(path.Child("format"), col.Format, oneOf(printerFormats)))
	}
	jp := path.Child("JSONPath")
	switch {
	case col.JSONPath == "":
		errs = append(errs, field.Required(jp, ""))
	case !strings.HasPrefix(col.JSONPath, "."):
		errs = append(errs, field.Invalid(jp, col.JSONPath, "must be a simple json path starting with ."))
	default:
		if err := jsonpath.New(col.Name).Parse("{" + col.JSONPath + "}"); err != nil {
			errs = append(errs, field.Invalid(jp, col.JSONPath, fmt.Sprintf("must be a valid JSONPath: %v", err)))
		}
	}
	return errs
}
