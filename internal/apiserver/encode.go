package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/setpoint/setpoint/internal/jsonenc"
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

// encodeJSON appends v as JSON with a trailing newline to buf. Pretty
// output of a plain value is its compact encoding indented, byte for byte
// what an indenting json.Encoder writes (it indents its compact output),
// without the Encoder's reflection.
func encodeJSON(buf *bytes.Buffer, v any, pretty bool) error {
	if b, ok := appendPlain(buf.AvailableBuffer(), v); ok {
		if !pretty {
			buf.Write(append(b, '\n'))
			return nil
		}
		plain := getBuffer()
		defer putBuffer(plain)
		plain.Write(b)
		buf.Write(append(appendIndented(buf.AvailableBuffer(), plain.Bytes()), '\n'))
		return nil
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
	for i := range l.len() {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := l.appendItem(buf, i); err != nil {
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

// errNotPlain stops appendPlain at a value it leaves to the Encoder.
var errNotPlain = errors.New("not a plain value")

// appendPlain appends v as a json.Encoder without HTML escaping writes it
// (without the newline), for the values of decoded objects jsonenc writes
// itself: maps, lists, strings of printable ASCII, integers, booleans and
// nulls. It reports false for anything else (floats, structs, strings
// that need escapes), which it leaves to the Encoder.
func appendPlain(b []byte, v any) ([]byte, bool) {
	b, err := jsonenc.Append(b, v, false, func([]byte, any) ([]byte, error) { return nil, errNotPlain })
	return b, err == nil
}

// appendIndented appends compact, valid JSON indented by two spaces per
// level, exactly as json.Indent with no prefix does, but without its
// validating scanner (a third of the CPU of a pretty list of 10,000
// objects): the input is already JSON this package or the stored objects
// encoded.
func appendIndented(dst, src []byte) []byte {
	depth := 0
	newline := func() {
		dst = append(dst, '\n')
		for range depth {
			dst = append(dst, ' ', ' ')
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '"':
			// Copy the string through its closing quote.
			j := i + 1
			for ; j < len(src) && src[j] != '"'; j++ {
				if src[j] == '\\' {
					j++
				}
			}
			dst = append(dst, src[i:j+1]...)
			i = j
		case '{', '[':
			dst = append(dst, c)
			if i+1 < len(src) && (src[i+1] == '}' || src[i+1] == ']') {
				dst = append(dst, src[i+1])
				i++
				continue
			}
			depth++
			newline()
		case '}', ']':
			depth--
			newline()
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline()
		case ':':
			dst = append(dst, c, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
