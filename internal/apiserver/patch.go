package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// patchMediaTypes lists the patch bodies the server recognises.
const patchMediaTypes = "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"

// patch serves PATCH on an object or its status subresource. The registry
// applies JSON and merge patches and server-side apply, and answers 415
// for the types it does not support (strategic merge patch on custom
// resources, apply in CBOR).
func (s *server) patch(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	typ, err := mediaType(r)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	pt := types.PatchType(typ)
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
	default:
		s.writeError(w, r, info.out, errUnsupportedMediaType(r.Header.Get("Content-Type"), patchMediaTypes))
		return
	}
	opts, err := writeOptions(r, info.verb, info.sub, pt)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	buf, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	defer putBuffer(buf)
	if pt == types.StrategicMergePatchType && isBuiltin(info) && !hasPatchDirectives(buf.Bytes()) {
		pt = types.MergePatchType
	}
	result, err := s.reg.Patch(r.Context(), info.res, info.namespace, info.name, pt, buf.Bytes(), opts)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.respondResult(w, r, info, result)
}

// isBuiltin reports whether the resource is built in rather than defined
// by a CRD.
func isBuiltin(info *requestInfo) bool {
	return info.res.BuiltIn()
}

// hasPatchDirectives reports whether a strategic merge patch uses "$"
// directives. The built-in types served (Namespace, CRD, ConfigMap,
// Secret, Lease, Event) have no list
// merge keys that kubectl relies on, so a strategic merge patch without
// directives means the same as a merge patch, which lets kubectl label,
// annotate and edit them. Patches that do not parse are left to the
// registry to reject.
func hasPatchDirectives(patch []byte) bool {
	var doc any
	if err := json.Unmarshal(patch, &doc); err != nil {
		return true
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if strings.HasPrefix(k, "$") || walk(x) {
					return true
				}
			}
		case []any:
			for _, x := range t {
				if walk(x) {
					return true
				}
			}
		}
		return false
	}
	return walk(doc)
}
