package apiserver

import "net/http"

// list serves GET on a collection, in one namespace or (namespace "") all.
func (s *server) list(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	opts, err := listOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	list, err := s.reg.List(r.Context(), info.res, info.namespace, opts)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.respondList(w, r, info, list)
}
