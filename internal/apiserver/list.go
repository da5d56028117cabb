package apiserver

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
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
	if info.out.target == targetObject && !info.out.yaml {
		head, items, err := s.reg.ListJSON(r.Context(), info.res, info.namespace, opts)
		if err != nil {
			s.writeError(w, r, info.out, err)
			return
		}
		defer items.Release()
		l := &itemList{head: head.Object, encoded: items}
		if info.out.pretty {
			s.writePrettyList(w, r, info.out, l)
			return
		}
		s.writeList(w, r, l)
		return
	}
	list, err := s.reg.List(r.Context(), info.res, info.namespace, opts)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.respondList(w, r, info, list)
}

// writePrettyList sends a pretty list from its items' encoded bytes: the
// compact list, with its keys in the order encoding/json sorts a map's
// ("items" among them), indented. That is the body an indenting
// json.Encoder writes for the decoded list, without decoding the items.
func (s *server) writePrettyList(w http.ResponseWriter, r *http.Request, out output, l *itemList) {
	head := l.head
	compact := getBuffer()
	defer putBuffer(compact)
	keys := slices.Sorted(maps.Keys(head))
	if !slices.Contains(keys, "items") {
		keys = append(keys, "items")
		slices.Sort(keys)
	}
	compact.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			compact.WriteByte(',')
		}
		if k != "items" {
			if err := encodeField(compact, k, head[k]); err != nil {
				s.writeError(w, r, out, err)
				return
			}
			continue
		}
		compact.WriteString(`"items":[`)
		for j := range l.len() {
			if j > 0 {
				compact.WriteByte(',')
			}
			if err := l.appendItem(compact, j); err != nil {
				s.writeError(w, r, out, err)
				return
			}
		}
		compact.WriteByte(']')
	}
	compact.WriteByte('}')
	buf := getBuffer()
	defer putBuffer(buf)
	buf.Write(append(appendIndented(buf.AvailableBuffer(), compact.Bytes()), '\n'))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
