package admission

import "k8s.io/apimachinery/pkg/util/validation/field"

// Prune removes fields the schema does not declare (unless
// x-kubernetes-preserve-unknown-fields), in place, and returns their paths
// as Kubernetes prints them in strict-decoding errors (for example
// "spec.foo"). apiVersion, kind and metadata at the root are never pruned
// here.
func (s *Schema) Prune(obj map[string]any) []string {
	return prune(s.root, obj, nil, true)
}

// prune drops the undeclared fields of v below n and returns their paths.
// keepObjectFields keeps apiVersion, kind and metadata (at the root and in
// embedded resources).
func prune(n *node, v any, path *field.Path, keepObjectFields bool) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		keep := keepObjectFields || n.embedded
		for k, e := range v {
			if keep && (k == "apiVersion" || k == "kind" || k == "metadata") {
				continue
			}
			sub := n.props[k]
			if sub == nil {
				sub = n.additional
			}
			if sub == nil {
				if !n.preserve {
					delete(v, k)
					out = append(out, path.Child(k).String())
				}
				continue
			}
			out = append(out, prune(sub, e, path.Child(k), false)...)
		}
	case []any:
		if n.items == nil {
			return nil
		}
		for i, e := range v {
			out = append(out, prune(n.items, e, path.Index(i), false)...)
		}
	}
	return out
}
