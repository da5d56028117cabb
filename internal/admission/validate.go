package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/warning"
)

// Validate checks obj against the schema and returns one error per
// offending field (types, required, enum, pattern, formats, minimum/maximum,
// lengths, items, ...), with paths like "spec.replicas". The messages follow
// Kubernetes: "spec.replicas in body must be of type integer: \"string\"".
func (s *Schema) Validate(obj map[string]any) field.ErrorList {
	var errs field.ErrorList
	validate(s.root, obj, nil, &errs)
	return errs
}

// ValidateObject checks obj as Validate does and then evaluates the
// schema's x-kubernetes-validations rules, with old the stored object on
// update (nil on create). As in Kubernetes, the rules are not evaluated
// when obj has errors that make them meaningless (wrong types, missing
// required fields, unsupported values, too long or too many); one error
// then says so. On update, a rule that fails on a value that did not
// change gives a warning instead of an error (ratcheting); the warnings
// are returned for the response.
func (s *Schema) ValidateObject(ctx context.Context, obj, old map[string]any) (field.ErrorList, []string) {
	errs := s.Validate(obj)
	if s.rules == nil {
		return errs, nil
	}
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return append(errs, field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")), nil
		}
	}
	var w warnings
	errs = append(errs, s.rules.validate(warning.WithWarningRecorder(ctx, &w), obj, old)...)
	return errs, w
}

// warnings collects the warnings Kubernetes' validators add to a context.
type warnings []string

func (w *warnings) AddWarning(_, text string) { *w = append(*w, text) }

// validate appends the errors of v against n to errs. A value of the wrong
// type gets one error and no further checks.
func validate(n *node, v any, path *field.Path, errs *field.ErrorList) {
	if v == nil {
		if !n.nullable && !n.preserve {
			*errs = append(*errs, field.TypeInvalid(path, nil, fmt.Sprintf("%s in body must be of type %s: \"null\"", name(path), typeName(n))))
		}
		return
	}
	if !checkType(n, v, path, errs) {
		return
	}
	if len(n.enum) > 0 && !slices.ContainsFunc(n.enum, func(e any) bool { return jsonEqual(e, v) }) {
		*errs = append(*errs, field.NotSupported(path, v, enumStrings(n.enum)))
	}
	switch v := v.(type) {
	case map[string]any:
		validateObject(n, v, path, errs)
	case []any:
		validateArray(n, v, path, errs)
	case string:
		validateString(n, v, path, errs)
	case bool:
	default:
		if f, ok := toFloat(v); ok {
			validateNumber(n, f, v, path, errs)
		}
	}
	validateJunctors(n, v, path, errs)
}

// checkType reports a value whose JSON type is not the node's type.
func checkType(n *node, v any, path *field.Path, errs *field.ErrorList) bool {
	var ok bool
	switch n.typ {
	case "":
		_, isStr := v.(string)
		ok = !n.intOrString || isStr || isInteger(v)
	case "object":
		_, ok = v.(map[string]any)
	case "array":
		_, ok = v.([]any)
	case "string":
		_, ok = v.(string)
	case "boolean":
		_, ok = v.(bool)
	case "integer":
		ok = isInteger(v)
	case "number":
		_, ok = toFloat(v)
	default:
		ok = true
	}
	if !ok {
		*errs = append(*errs, field.TypeInvalid(path, v, fmt.Sprintf("%s in body must be of type %s: %q", name(path), typeName(n), jsonTypeOf(v))))
	}
	return ok
}

func validateObject(n *node, v map[string]any, path *field.Path, errs *field.ErrorList) {
	for _, r := range n.required {
		if _, ok := v[r]; !ok {
			*errs = append(*errs, field.Required(path.Child(r), ""))
		}
	}
	if n.minProps != nil && int64(len(v)) < *n.minProps {
		*errs = append(*errs, field.Invalid(path, len(v), fmt.Sprintf("%s in body should have at least %d properties", name(path), *n.minProps)))
	}
	if n.maxProps != nil && int64(len(v)) > *n.maxProps {
		*errs = append(*errs, field.TooMany(path, len(v), int(*n.maxProps)))
	}
	if n.embedded {
		for _, k := range []string{"apiVersion", "kind"} {
			if s, _ := v[k].(string); s == "" {
				*errs = append(*errs, field.Required(path.Child(k), "must not be empty"))
			}
		}
	}
	if len(n.props) == 0 && n.additional == nil {
		return
	}
	for _, k := range sortedKeys(v) {
		sub := n.props[k]
		if sub == nil {
			sub = n.additional
		}
		if sub != nil {
			validate(sub, v[k], path.Child(k), errs)
		}
	}
}

func validateArray(n *node, v []any, path *field.Path, errs *field.ErrorList) {
	if n.minItems != nil && int64(len(v)) < *n.minItems {
		*errs = append(*errs, field.Invalid(path, len(v), fmt.Sprintf("%s in body should have at least %d items", name(path), *n.minItems)))
	}
	if n.maxItems != nil && int64(len(v)) > *n.maxItems {
		*errs = append(*errs, field.TooMany(path, len(v), int(*n.maxItems)))
	}
	if n.uniqueItems {
		for i := 1; i < len(v); i++ {
			if slices.ContainsFunc(v[:i], func(e any) bool { return jsonEqual(e, v[i]) }) {
				*errs = append(*errs, field.Duplicate(path.Index(i), v[i]))
			}
		}
	}
	if n.items == nil {
		return
	}
	for i, e := range v {
		validate(n.items, e, path.Index(i), errs)
	}
}

func validateString(n *node, v string, path *field.Path, errs *field.ErrorList) {
	if n.maxLength != nil || n.minLength != nil {
		l := int64(utf8.RuneCountInString(v))
		if n.maxLength != nil && l > *n.maxLength {
			*errs = append(*errs, field.TooLong(path, v, int(*n.maxLength)))
		}
		if n.minLength != nil && l < *n.minLength {
			*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%s in body should be at least %d chars long", name(path), *n.minLength)))
		}
	}
	if n.pattern != nil && !n.pattern.MatchString(v) {
		*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%s in body should match '%s'", name(path), n.pattern.String())))
	}
	if n.format != "" && !validFormat(n.format, v) {
		*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%s in body must be of type %s: %q", name(path), n.format, v)))
	}
}

func validateNumber(n *node, f float64, v any, path *field.Path, errs *field.ErrorList) {
	if n.minimum != nil {
		if n.exclusiveMin && f <= *n.minimum {
			*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%s in body should be greater than %s", name(path), num(*n.minimum))))
		} else if !n.exclusiveMin && f < *n.minimum {
			*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%s in body should be greater than or equal to %s", name(path), num(*n.minimum))))
		}
	}
	if n.maximum != nil {
		if n.exclusiveMax && f >= *n.maximum {
			*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%s in body should be less than %s", name(path), num(*n.maximum))))
		} else if !n.exclusiveMax && f > *n.maximum {
			*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%s in body should be less than or equal to %s", name(path), num(*n.maximum))))
		}
	}
	if n.multipleOf != nil && *n.multipleOf > 0 {
		q := f / *n.multipleOf
		if math.IsInf(q, 0) || math.Abs(q-math.Round(q)) > 1e-9*math.Max(1, math.Abs(q)) {
			*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%s in body should be a multiple of %s", name(path), num(*n.multipleOf))))
		}
	}
}

// validateJunctors applies allOf, anyOf, oneOf and not. Members of allOf
// report their own errors; the others report one error at path.
func validateJunctors(n *node, v any, path *field.Path, errs *field.ErrorList) {
	for _, sub := range n.allOf {
		validate(sub, v, path, errs)
	}
	if len(n.anyOf) > 0 {
		matched := slices.ContainsFunc(n.anyOf, func(sub *node) bool { return matches(sub, v, path) })
		if !matched {
			*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%q must validate at least one schema (anyOf)", name(path))))
		}
	}
	if len(n.oneOf) > 0 {
		count := 0
		for _, sub := range n.oneOf {
			if matches(sub, v, path) {
				count++
			}
		}
		if count != 1 {
			*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%q must validate one and only one schema (oneOf). Found %d valid alternatives", name(path), count)))
		}
	}
	if n.not != nil && matches(n.not, v, path) {
		*errs = append(*errs, field.Invalid(path, v, fmt.Sprintf("%q must not validate the schema (not)", name(path))))
	}
}

func matches(n *node, v any, path *field.Path) bool {
	var errs field.ErrorList
	validate(n, v, path, &errs)
	return len(errs) == 0
}

// name is how Kubernetes names a field inside a message.
func name(path *field.Path) string {
	if path == nil {
		return "<root>"
	}
	return path.String()
}

func typeName(n *node) string {
	if n.typ == "" && n.intOrString {
		return "integer or string"
	}
	return n.typ
}

func jsonTypeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	if isInteger(v) {
		return "integer"
	}
	if _, ok := toFloat(v); ok {
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// toFloat reads the numeric types unstructured objects and encoding/json
// produce.
func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case int32:
		return float64(v), true
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}

func isInteger(v any) bool {
	switch v := v.(type) {
	case int64, int, int32:
		return true
	case float64:
		return v == math.Trunc(v) && !math.IsInf(v, 0)
	case float32:
		return float64(v) == math.Trunc(float64(v)) && !math.IsInf(float64(v), 0)
	case json.Number:
		_, err := v.Int64()
		return err == nil
	}
	return false
}

// jsonEqual compares two JSON values, numbers by value.
func jsonEqual(a, b any) bool {
	if fa, ok := toFloat(a); ok {
		fb, ok := toFloat(b)
		return ok && fa == fb
	}
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, e := range a {
			f, ok := b[k]
			if !ok || !jsonEqual(e, f) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, jsonEqual)
	case string:
		b, ok := b.(string)
		return ok && a == b
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case nil:
		return b == nil
	}
	return false
}

// enumStrings renders enum values as Kubernetes lists them in
// "supported values: ...": strings bare, other values as JSON.
func enumStrings(enum []any) []string {
	out := make([]string, len(enum))
	for i, e := range enum {
		if s, ok := e.(string); ok {
			out[i] = s
			continue
		}
		b, err := json.Marshal(e)
		if err != nil {
			out[i] = fmt.Sprint(e)
			continue
		}
		out[i] = string(b)
	}
	return out
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
