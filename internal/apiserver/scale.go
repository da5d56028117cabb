package apiserver

import (
	"net/http"

	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/registry"
)

// scale serves GET, PUT and PATCH on the scale subresource: the body is an
// autoscaling/v1 Scale, never a Table.
func (s *server) scale(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	info.out.target = targetObject
	var result registry.Result
	var err error
	switch info.verb {
	case "get":
		result.Object, err = s.reg.GetScale(r.Context(), info.res, info.namespace, info.name)
	case "update":
		var opts registry.WriteOptions
		if opts, err = writeOptions(r, info.verb, "", ""); err != nil {
			break
		}
		obj, rerr := s.readObject(w, r, &opts)
		if err = rerr; err != nil {
			break
		}
		result, err = s.reg.UpdateScale(r.Context(), info.res, info.namespace, info.name, obj, opts)
	case "patch":
		typ, merr := mediaType(r)
		if err = merr; err != nil {
			break
		}
		pt := types.PatchType(typ)
		var opts registry.WriteOptions
		if opts, err = writeOptions(r, info.verb, "", pt); err != nil {
			break
		}
		buf, berr := s.readBody(w, r)
		if err = berr; err != nil {
			break
		}
		defer putBuffer(buf)
		result, err = s.reg.PatchScale(r.Context(), info.res, info.namespace, info.name, pt, buf.Bytes(), opts)
	}
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.respondResult(w, r, info, result)
}
