package apiserver

import "net/http"

// get serves GET on an object (or its status subresource, which reads the
// whole object as Kubernetes does).
func (s *server) get(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	obj, err := s.reg.Get(r.Context(), info.res, info.namespace, info.name)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.respondObject(w, r, info, http.StatusOK, obj.Object)
}
