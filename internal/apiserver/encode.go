package apiserver

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

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
	if !pretty {
		if b, ok := appendPlain(buf.AvailableBuffer(), v); ok {
			buf.Write(append(b, '\n'))
			return nil
		}
	}
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

// listFlushBytes is how much of a list is buffered before it is written.
const listFlushBytes = 32 << 10

// writeList streams a list as JSON with 200: the buffer is written out
// whenever it holds listFlushBytes. A list that fits is sent with a
// Content-Length. An encoding failure before anything was sent is a 500
// Status; after, the connection is aborted so that the client sees a
// broken response rather than a short list.
func (s *server) writeList(w http.ResponseWriter, r *http.Request, l *itemList) {
	buf := getBuffer()
	defer putBuffer(buf)
	sent := false
	fail := func(err error) {
		if !sent {
			s.writeError(w, r, output{}, err)
			return
		}
		s.log.Error("apiserver: encode list", "path", r.URL.Path, "error", err)
		panic(http.ErrAbortHandler)
	}
	buf.WriteByte('{')
	for _, k := range slices.Sorted(maps.Keys(l.head)) {
		if k == "items" {
			continue
		}
		if err := encodeField(buf, k, l.head[k]); err != nil {
			fail(err)
			return
		}
		buf.WriteByte(',')
	}
	buf.WriteString(`"items":[`)
	w.Header().Set("Content-Type", "application/json")
	for i, item := range l.items {
		if i > 0 {
			buf.WriteByte(',')
		}
		if raw, ok := item.(json.RawMessage); ok {
			buf.Write(raw)
		} else if err := encodeValue(buf, item); err != nil {
			fail(err)
			return
		}
		if buf.Len() >= listFlushBytes {
			if !sent {
				w.WriteHeader(http.StatusOK)
				sent = true
			}
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			buf.Reset()
		}
	}
	buf.WriteString("]}\n")
	if !sent {
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.WriteHeader(http.StatusOK)
	}
	_, _ = w.Write(buf.Bytes())
}

// encodeField appends `"key":value` to buf.
func encodeField(buf *bytes.Buffer, key string, v any) error {
	if err := encodeValue(buf, key); err != nil {
		return err
	}
	buf.WriteByte(':')
	return encodeValue(buf, v)
}

// encodeValue appends v as JSON without a trailing newline.
func encodeValue(buf *bytes.Buffer, v any) error {
	if err := encodeJSON(buf, v, false); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1)
	return nil
}

// appendPlain appends v as a json.Encoder without HTML escaping writes it
// (without the newline), for the values of decoded objects it can write
// itself: maps, lists, strings, integers, booleans and nulls. It reports
// false for anything else (floats, structs), which it leaves to the
// Encoder, as it does strings that need escapes.
func appendPlain(b []byte, v any) ([]byte, bool) {
	ok := true
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return append(b, "null"...), true
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendPlainString(b, k); !ok {
				return b, false
			}
			b = append(b, ':')
			if b, ok = appendPlain(b, x[k]); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendPlain(b, e); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case string:
		return appendPlainString(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case bool:
		return strconv.AppendBool(b, x), true
	case nil:
		return append(b, "null"...), true
	}
	return b, false
}

// appendPlainString appends s quoted, where it needs no escapes: valid
// UTF-8 without control characters, quotes, backslashes, U+2028 or
// U+2029 (which the Encoder escapes).
func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' {
				return b, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return b, false
		}
		i += size
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}
