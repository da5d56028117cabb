package apiserver

import (
	"encoding/json"
	"net/http"
)

// list serves GET on a collection, in one namespace or (namespace "") all.
// Plain JSON lists take their items already encoded from the registry,
// which makes most of them from the stored bytes without decoding.
func (s *server) list(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	opts, err := listOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	if info.out.target == targetObject && !info.out.yaml && !info.out.pretty {
		head, raw, err := s.reg.ListJSON(r.Context(), info.res, info.namespace, opts)
		if err != nil {
			s.writeError(w, r, info.out, err)
			return
		}
		items := make([]any, len(raw))
		for i, b := range raw {
			items[i] = json.RawMessage(b)
		}
		s.writeList(w, r, &itemList{head: head.Object, items: items})
		return
	}
	list, err := s.reg.List(r.Context(), info.res, info.namespace, opts)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.respondList(w, r, info, list)
}
