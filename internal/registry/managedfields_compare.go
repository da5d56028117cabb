package registry

import (
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/merge"
	smdschema "sigs.k8s.io/structured-merge-diff/v6/schema"
	smdtyped "sigs.k8s.io/structured-merge-diff/v6/typed"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// The merge engine compares two objects after converting each to its typed
// form, which validates them against the schema on the way: most of the
// CPU of an update's managedFields. compare does both on the decoded maps
// in one walk, with the rules createSchema.fields reads a create's fields
// by, and declines wherever those rules decline (null, a value the schema
// does not admit, duplicates in a list of keys or values, an item without
// its key) or where the engine would look at one field in two ways (a value
// of one kind in live and of another in obj): trackUpdateFast then asks
// the engine. TestUpdateManagedFieldsMatchFieldManager holds both ways to
// the FieldManager's result.

// compare is what the merge engine's comparison of live and obj (both
// without managedFields) finds: the fields obj removed, changed and added.
// It reports false where it cannot vouch for the engine's answer.
func (s *createSchema) compare(live, obj map[string]any) (*smdtyped.Comparison, bool) {
	if s == nil {
		return nil, false
	}
	c := comparer{s: s, cmp: &smdtyped.Comparison{Removed: fieldpath.NewSet(), Modified: fieldpath.NewSet(), Added: fieldpath.NewSet()}}
	if !c.walk(live, obj, smdschema.TypeRef{NamedType: &s.root}) {
		return nil, false
	}
	return c.cmp, true
}

// update is what the merge engine's Update (u, by the manager
// currentOperation) makes of managed when live becomes obj (both without
// managedFields), with the comparison of compare: each manager's set
// reconciled with the schema, then stripped of what obj changed or
// removed, empty sets dropped, and what obj changed, ignored fields left
// out, recorded for currentOperation. It reports false where compare
// declines; managed is left as it was.
func (s *createSchema) update(u *merge.Updater, live, obj map[string]any, version fieldpath.APIVersion, managed fieldpath.ManagedFields) (fieldpath.ManagedFields, bool) {
	cmp, ok := s.compare(live, obj)
	if !ok {
		return nil, false
	}
	tv := smdtyped.AsTypedUnvalidated(value.NewValueInterface(live), &s.schema, smdschema.TypeRef{NamedType: &s.root})
	filter := u.IgnoreFilter[version]
	if filter != nil {
		cmp.FilterFields(filter)
	}
	changed := cmp.Modified.Union(cmp.Added)
	out := make(fieldpath.ManagedFields, len(managed)+1)
	for id, vs := range managed {
		set := vs.Set()
		reconciled, err := smdtyped.ReconcileFieldSetWithSchema(set, tv)
		if err != nil {
			return nil, false
		}
		if reconciled != nil {
			set = reconciled
		}
		if conflict := set.Intersection(changed); !conflict.Empty() {
			set = set.Difference(conflict)
		}
		if !cmp.Removed.Empty() {
			set = set.Difference(cmp.Removed)
		}
		if !set.Empty() {
			out[id] = fieldpath.NewVersionedSet(set, vs.APIVersion(), vs.Applied())
		}
	}
	set := fieldpath.NewSet().Difference(cmp.Removed).Union(cmp.Modified).Union(cmp.Added)
	if filter != nil {
		set = filter.Filter(set)
	}
	if !set.Empty() {
		out[currentOperation] = fieldpath.NewVersionedSet(set, version, false)
	}
	return out, true
}

// comparer walks two values of one type side by side, at path.
type comparer struct {
	s    *createSchema
	cmp  *smdtyped.Comparison
	path fieldpath.Path
}

// walk compares l and r, of type t, at c.path; nil stands for absent
// (a null is declined before it gets here).
func (c *comparer) walk(l, r any, t smdschema.TypeRef) bool {
	atom, ok := c.s.schema.Resolve(t)
	if !ok {
		return false
	}
	v := r
	if v == nil {
		v = l
	}
	switch x := v.(type) {
	case map[string]any:
		lm, lok := l.(map[string]any)
		if (l != nil && !lok) || atom.Map == nil {
			return false
		}
		switch atom.Map.ElementRelationship {
		case smdschema.Atomic:
			return c.atomicLeaf(l, r, t)
		case "", smdschema.Separable:
		default:
			return false
		}
		rm, _ := r.(map[string]any)
		if len(lm) == 0 && len(rm) == 0 {
			return c.leaf(l, r)
		}
		if !c.mapItems(atom.Map, lm, rm) {
			return false
		}
	case []any:
		ll, lok := l.([]any)
		if (l != nil && !lok) || atom.List == nil {
			return false
		}
		switch atom.List.ElementRelationship {
		case smdschema.Atomic:
			return c.atomicLeaf(l, r, t)
		case smdschema.Associative:
		default:
			return false
		}
		rl, _ := r.([]any)
		if len(ll) == 0 && len(rl) == 0 {
			return c.leaf(l, r)
		}
		if !c.listItems(atom.List, ll, rl) {
			return false
		}
	case string, int64, float64, bool:
		if atom.Scalar == nil || !scalarFits(*atom.Scalar, x) {
			return false
		}
		if l != nil && (!isScalar(l) || !scalarFits(*atom.Scalar, l)) {
			return false
		}
		return c.leaf(l, r)
	default:
		return false
	}
	c.container(l, r)
	return true
}

// container records a map or list that obj added or removed whole (its
// items are recorded as they are walked).
func (c *comparer) container(l, r any) {
	switch {
	case l == nil:
		c.cmp.Added.Insert(c.path)
	case r == nil:
		c.cmp.Removed.Insert(c.path)
	}
}

// leaf records a scalar, an atomic map or list, or an empty container as
// added, removed or modified.
func (c *comparer) leaf(l, r any) bool {
	switch {
	case l == nil:
		c.cmp.Added.Insert(c.path)
	case r == nil:
		c.cmp.Removed.Insert(c.path)
	case !leafEqual(l, r):
		c.cmp.Modified.Insert(c.path)
	}
	return true
}

// atomicLeaf checks l and r, an atomic map or list of type t, and records
// them as a leaf.
func (c *comparer) atomicLeaf(l, r any, t smdschema.TypeRef) bool {
	for _, v := range []any{l, r} {
		if v == nil {
			continue
		}
		if _, ok := c.s.child(v, t); !ok {
			return false
		}
	}
	return c.leaf(l, r)
}

// leafEqual is the merge engine's equality of two present leaves: numbers
// compare as floats when either is one.
func leafEqual(l, r any) bool {
	switch x := l.(type) {
	case string:
		y, ok := r.(string)
		return ok && x == y
	case bool:
		y, ok := r.(bool)
		return ok && x == y
	case int64:
		switch y := r.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	case float64:
		switch y := r.(type) {
		case int64:
			return x == float64(y)
		case float64:
			return x == y
		}
		return false
	}
	return value.Equals(value.NewValueInterface(l), value.NewValueInterface(r))
}

// descend walks l and r one element down, at pe.
func (c *comparer) descend(pe fieldpath.PathElement, l, r any, t smdschema.TypeRef) bool {
	c.path = append(c.path, pe)
	ok := c.walk(l, r, t)
	c.path = c.path[:len(c.path)-1]
	return ok
}

// mapItems walks the fields of two granular maps.
func (c *comparer) mapItems(m *smdschema.Map, l, r map[string]any) bool {
	for k, lv := range l {
		rv, inR := r[k]
		if lv == nil || (inR && rv == nil) {
			return false
		}
		t, ok := fieldType(m, k)
		if !ok || !c.descend(fieldpath.PathElement{FieldName: &k}, lv, rv, t) {
			return false
		}
	}
	for k, rv := range r {
		if _, inL := l[k]; inL {
			continue
		}
		if rv == nil {
			return false
		}
		t, ok := fieldType(m, k)
		if !ok || !c.descend(fieldpath.PathElement{FieldName: &k}, nil, rv, t) {
			return false
		}
	}
	return true
}

// listItems walks the items of two lists of keys or values, matched by
// their keys or values.
func (c *comparer) listItems(list *smdschema.List, l, r []any) bool {
	type pair struct {
		pe   fieldpath.PathElement
		l, r any
	}
	pairs := make([]pair, 0, max(len(l), len(r)))
	index := fieldpath.MakePathElementMap(len(l) + len(r))
	for _, item := range l {
		pe, ok := itemElement(list, item)
		if !ok {
			return false
		}
		if _, dup := index.Get(pe); dup {
			return false
		}
		index.Insert(pe, len(pairs))
		pairs = append(pairs, pair{pe: pe, l: item})
	}
	seen := fieldpath.MakePathElementSet(len(r))
	for _, item := range r {
		pe, ok := itemElement(list, item)
		if !ok || seen.Has(pe) {
			return false
		}
		seen.Insert(pe)
		if i, found := index.Get(pe); found {
			pairs[i.(int)].r = item
			continue
		}
		pairs = append(pairs, pair{pe: pe, r: item})
	}
	for _, p := range pairs {
		if !c.descend(p.pe, p.l, p.r, list.ElementType) {
			return false
		}
	}
	return true
}

// itemElement is the path element of an item of a list of keys (k:) or
// of values (v:); false for an item that is not one, or lacks a key.
func itemElement(list *smdschema.List, item any) (fieldpath.PathElement, bool) {
	var pe fieldpath.PathElement
	if len(list.Keys) == 0 {
		if !isScalar(item) {
			return pe, false
		}
		v := value.NewValueInterface(item)
		pe.Value = &v
		return pe, true
	}
	m, isMap := item.(map[string]any)
	if !isMap {
		return pe, false
	}
	keys := make(value.FieldList, 0, len(list.Keys))
	for _, k := range list.Keys {
		kv, has := m[k]
		if !has || !isScalar(kv) {
			return pe, false
		}
		keys = append(keys, value.Field{Name: k, Value: value.NewValueInterface(kv)})
	}
	keys.Sort()
	pe.Key = &keys
	return pe, true
}
