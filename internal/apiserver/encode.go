package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"sigs.k8s.io/yaml"
)

// bufferPool recycles response and request buffers.
var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer is the largest buffer kept for reuse, so that one huge
// response does not stay in memory.
const maxPooledBuffer = 1 << 20

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}

// encodeJSON appends v as JSON with a trailing newline to buf.
func encodeJSON(buf *bytes.Buffer, v any, pretty bool) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if pretty {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

// writeBody sends v with code in the format of out. v is encoded with
// encoding/json directly (maps from unstructured objects, or API structs).
func (s *server) writeBody(w http.ResponseWriter, out output, code int, v any) {
	buf := getBuffer()
	defer putBuffer(buf)
	contentType := "application/json"
	if out.contentType != "" {
		contentType = out.contentType
	}
	err := encodeJSON(buf, v, out.pretty)
	if err == nil && out.yaml {
		var y []byte
		if y, err = yaml.JSONToYAML(buf.Bytes()); err == nil {
			buf.Reset()
			buf.Write(y)
			contentType = "application/yaml"
		}
	}
	if err != nil {
		s.log.Error("apiserver: encode response", "error", err)
		buf.Reset()
		status := withTypeMeta(internalStatus())
		_ = encodeJSON(buf, &status, false)
		code = http.StatusInternalServerError
		contentType = "application/json"
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
