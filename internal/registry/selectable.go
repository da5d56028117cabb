package registry

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/selection"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/storage"
)

// fieldTerm is one field-selector requirement on a selectable field.
type fieldTerm struct {
	path []string // the dot path split, e.g. ["spec", "color"]
	// get, when set, computes the value instead of path.
	get   func(stored map[string]any) string
	value string
	equal bool // = and ==; false for !=
}

// selectableTerm returns the term for a requirement on one of res's
// SelectableFields, or ok false when field is not one of them.
func selectableTerm(res *Resource, field string, op selection.Operator, value string) (fieldTerm, bool) {
	if !slices.Contains(res.SelectableFields, field) {
		return fieldTerm{}, false
	}
	return fieldTerm{path: strings.Split(field, "."), get: res.fieldGetters[field], value: value, equal: op != selection.NotEquals}, true
}

// fieldValue is the value a field selector compares for the field at path
// in obj, as Kubernetes computes it for CRD selectableFields: strings as
// they are, integers in decimal, booleans as "true" or "false", and "" when
// the field (or an object on its path) is absent or null.
func fieldValue(obj map[string]any, path []string) string {
	var v any = obj
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	default:
		return fmt.Sprint(t)
	}
}

// matchTerms reports whether o satisfies every term. An object that cannot
// be decoded matches nothing.
func matchTerms(terms []fieldTerm, o storage.Object) bool {
	return len(terms) == 0 || matchDecoded(terms, o, nil)
}

// matchDecoded is matchTerms with the decoded object kept in memo when
// memo is not nil (the feed shares it between watchers; nothing modifies
// it).
func matchDecoded(terms []fieldTerm, o storage.Object, memo *feed.Memo) bool {
	decode := func() (any, error) { return decodeValue(o.Value) }
	var v any
	var err error
	if memo != nil {
		v, err = memo.Get(decode)
	} else {
		v, err = decode()
	}
	if err != nil {
		return false
	}
	m := v.(map[string]any)
	for _, t := range terms {
		v := fieldValue(m, t.path)
		if t.get != nil {
			v = t.get(m)
		}
		if (v == t.value) != t.equal {
			return false
		}
	}
	return true
}
