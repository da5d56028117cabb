package admission

// Default applies the schema's defaults to obj in place (as Kubernetes does:
// after pruning, for fields that are absent). A null in a field that is not
// nullable is replaced by the field's default, or dropped when it has none.
// Defaults are copied, never shared between objects.
func (s *Schema) Default(obj map[string]any) { applyDefaults(s.root, obj) }

func applyDefaults(n *node, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range n.props {
			e, ok := v[k]
			switch {
			case ok && e == nil && !sub.nullable && sub.hasDefault:
				v[k] = deepCopy(sub.def)
			case ok && e == nil && !sub.nullable:
				delete(v, k)
			case !ok && sub.hasDefault:
				v[k] = deepCopy(sub.def)
			}
		}
		for k, e := range v {
			sub := n.props[k]
			if sub == nil {
				sub = n.additional
			}
			if sub != nil {
				applyDefaults(sub, e)
			}
		}
	case []any:
		if n.items == nil {
			return
		}
		for _, e := range v {
			applyDefaults(n.items, e)
		}
	}
}
