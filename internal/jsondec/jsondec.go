// Package jsondec parses JSON objects into maps, numbers as int64 when
// integral and in range and float64 otherwise, as a json.Decoder with
// UseNumber and sigs.k8s.io/json's case-sensitive decoding that keeps
// integers both do, without their reflection. It reports false, leaving
// the work to them, for anything it does not read itself.
package jsondec

import (
	"encoding/json"
	"strconv"
)

// Object parses the JSON object at the start of b: false for a document
// that is not an object, malformed JSON, or nesting deeper than
// maxDecodeDepth. Strings with escapes or non-ASCII bytes are unquoted by
// encoding/json. With strict, as a request body is read, it also reports
// false for a key repeated in an object, anything but whitespace after
// the object, and a number out of float64's range, which the decoders of
// requests report.
func Object(b []byte, strict bool) (map[string]any, bool) {
	d := decoder{b: b, strict: strict}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil, false
	}
	v, ok := d.value(0)
	if !ok {
		return nil, false
	}
	if strict {
		if d.space(); d.i != len(d.b) {
			return nil, false
		}
	}
	return v.(map[string]any), true
}

// maxDecodeDepth bounds Object's recursion; json.Decoder allows
// deeper documents, which it reads instead.
const maxDecodeDepth = 1000

type decoder struct {
	b      []byte
	i      int
	strict bool
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, bool) {
	if depth > maxDecodeDepth || d.i >= len(d.b) {
		return nil, false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		m := map[string]any{}
		d.space()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return m, true
		}
		for {
			d.space()
			k, ok := d.str()
			if !ok {
				return nil, false
			}
			d.space()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return nil, false
			}
			d.i++
			d.space()
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			if _, dup := m[k]; dup && d.strict {
				return nil, false
			}
			m[k] = v
			if end, ok := d.separator('}'); !ok || end {
				return m, ok
			}
		}
	case c == '[':
		d.i++
		l := []any{}
		d.space()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return l, true
		}
		for {
			d.space()
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			l = append(l, v)
			if end, ok := d.separator(']'); !ok || end {
				return l, ok
			}
		}
	case c == '"':
		return d.str()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return nil, false
}

func (d *decoder) literal(s string) bool {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

// str reads a string: plain printable ASCII directly, the rest through
// encoding/json.
func (d *decoder) str() (string, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	start := d.i
	plain := true
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			if plain {
				return string(d.b[start+1 : j]), true
			}
			var s string
			if err := json.Unmarshal(d.b[start:j+1], &s); err != nil {
				return "", false
			}
			return s, true
		case c == '\\':
			plain = false
			j++
		case c < 0x20:
			return "", false
		case c >= 0x80:
			plain = false
		}
	}
	return "", false
}

// number reads a number of JSON's grammar, as json.Number converts it.
func (d *decoder) number() (any, bool) {
	b, start := d.b, d.i
	j := start
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if b[j] == '-' {
		j++
	}
	if j < len(b) && b[j] == '0' {
		j++
	} else if !digits() {
		return nil, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return nil, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return nil, false
		}
	}
	d.i = j
	s := string(b[start:j])
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil || !d.strict
}

// separator reads what follows an element of an object or array: a comma
// (end false) or the closing byte (end true). Anything else is not JSON
// (ok false).
func (d *decoder) separator(closing byte) (end, ok bool) {
	d.space()
	if d.i >= len(d.b) {
		return false, false
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return false, true
	case closing:
		d.i++
		return true, true
	}
	return false, false
}
