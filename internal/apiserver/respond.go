package apiserver

import (
	"bytes"
	"maps"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/registry"
)

// respondObject sends one object (or its Table or PartialObjectMetadata
// form) with code.
func (s *server) respondObject(w http.ResponseWriter, r *http.Request, info *requestInfo, code int, obj map[string]any) {
	body, err := renderObject(r, info, obj)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.writeBody(w, info.out, code, body)
}

// respondList sends a list (or its Table or PartialObjectMetadataList
// form) with 200.
func (s *server) respondList(w http.ResponseWriter, r *http.Request, info *requestInfo, list *unstructured.UnstructuredList) {
	body, err := renderList(r, info, list)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	if l, ok := body.(*itemList); ok {
		if !info.out.yaml && !info.out.pretty {
			s.writeList(w, r, l)
			return
		}
		body = l.asMap()
	}
	s.writeBody(w, info.out, http.StatusOK, body)
}

// respondResult sends the object a write returned, its warnings, and 201
// when it was created.
func (s *server) respondResult(w http.ResponseWriter, r *http.Request, info *requestInfo, result registry.Result) {
	addWarnings(w, result.Warnings)
	code := http.StatusOK
	if result.Created {
		code = http.StatusCreated
	}
	s.respondObject(w, r, info, code, result.Object.Object)
}

// renderObject returns the body for one object in the negotiated form.
func renderObject(r *http.Request, info *requestInfo, obj map[string]any) (any, error) {
	switch info.out.target {
	case targetTable:
		b, err := newTableBuilder(info.res, info.out.metaVersion, r.URL.Query())
		if err != nil {
			return nil, err
		}
		return b.objectTable(obj, true), nil
	case targetPartial:
		return partialObject(info.out.metaVersion, obj), nil
	}
	return obj, nil
}

// renderList returns the body for a list in the negotiated form. Items are
// referenced, not copied.
func renderList(r *http.Request, info *requestInfo, list *unstructured.UnstructuredList) (any, error) {
	switch info.out.target {
	case targetTable:
		b, err := newTableBuilder(info.res, info.out.metaVersion, r.URL.Query())
		if err != nil {
			return nil, err
		}
		t := b.table(list.Object["metadata"], true)
		t.Rows = make([]tableRow, 0, len(list.Items))
		for i := range list.Items {
			t.Rows = append(t.Rows, b.row(list.Items[i].Object))
		}
		return t, nil
	case targetPartialList:
		items := make([]any, len(list.Items))
		for i := range list.Items {
			items[i] = partialObject(info.out.metaVersion, list.Items[i].Object)
		}
		return &itemList{head: map[string]any{
			"apiVersion": metaGroup + "/" + info.out.metaVersion, "kind": "PartialObjectMetadataList",
			"metadata": listMeta(list.Object["metadata"]),
		}, items: items}, nil
	}
	items := make([]any, len(list.Items))
	for i := range list.Items {
		items[i] = list.Items[i].Object
	}
	return &itemList{head: list.Object, items: items}, nil
}

// itemList is a list body (apiVersion, kind, metadata and items) whose
// items are encoded one at a time, so that a large list streams to the
// client through a small buffer.
type itemList struct {
	// head holds every field but items.
	head map[string]any
	// items are the values to encode; unused when encoded is set.
	items []any
	// encoded, when set, encodes each item as encodeValue would encode
	// the object.
	encoded encodedItems
}

// encodedItems are list items encoded one at a time, as
// registry.JSONItems are.
type encodedItems interface {
	Len() int
	AppendJSON(dst []byte, i int) ([]byte, error)
}

// len returns the number of items.
func (l *itemList) len() int {
	if l.encoded != nil {
		return l.encoded.Len()
	}
	return len(l.items)
}

// appendItem appends item i as encodeValue encodes it.
func (l *itemList) appendItem(buf *bytes.Buffer, i int) error {
	if l.encoded == nil {
		return encodeValue(buf, l.items[i])
	}
	b, err := l.encoded.AppendJSON(buf.AvailableBuffer(), i)
	if err != nil {
		return err
	}
	buf.Write(b)
	return nil
}

// asMap returns the list as one map, for YAML and indented JSON.
func (l *itemList) asMap() map[string]any {
	m := make(map[string]any, len(l.head)+1)
	maps.Copy(m, l.head)
	m["items"] = l.items
	return m
}

// listMeta returns list metadata, never nil.
func listMeta(md any) any {
	if md == nil {
		return map[string]any{}
	}
	return md
}

// partialObject is the PartialObjectMetadata form of obj.
func partialObject(metaVersion string, obj map[string]any) map[string]any {
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
	}
	return map[string]any{"apiVersion": metaGroup + "/" + metaVersion, "kind": "PartialObjectMetadata", "metadata": md}
}

// addWarnings sends each warning as a `Warning: 299 - "text"` header.
func addWarnings(w http.ResponseWriter, warnings []string) {
	for _, msg := range warnings {
		w.Header().Add("Warning", `299 - "`+warningText(msg)+`"`)
	}
}

// warningText escapes a warning for the quoted-string of a Warning header
// and drops control characters, which headers cannot carry.
func warningText(msg string) string {
	var b strings.Builder
	for _, c := range msg {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20 || c == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}
