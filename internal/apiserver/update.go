package apiserver

import "net/http"

// update serves PUT on an object or its status subresource.
func (s *server) update(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	opts, err := writeOptions(r, info.verb, info.sub, "")
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	obj, err := s.readObject(w, r, &opts)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	result, err := s.reg.Update(r.Context(), info.res, info.namespace, info.name, obj, opts)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.respondResult(w, r, info, result)
}
