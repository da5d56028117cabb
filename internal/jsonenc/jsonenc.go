// Package jsonenc writes decoded JSON values (maps, lists, strings,
// integers, booleans, nulls) with the bytes encoding/json writes for
// them, without its reflection: the stored form of objects and the
// answers of the API both take it.
package jsonenc

import (
	"slices"
	"strconv"
)

// Append appends v as encoding/json writes it, map keys sorted. With
// html, strings are escaped as json.Marshal escapes them (<, > and &
// too); without, as a json.Encoder with SetEscapeHTML(false) does. It
// writes maps of string keys, lists, strings of printable ASCII, int64,
// bool and nil itself and passes any other value, strings that need
// escapes included, to other, whose error ends the encoding.
func Append(b []byte, v any, html bool, other func(b []byte, v any) ([]byte, error)) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
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
			if b, err = Append(b, k, html, other); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = Append(b, x[k], html, other); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = Append(b, e, html, other); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case string:
		if !plain(x, html) {
			return other(b, x)
		}
		b = append(b, '"')
		b = append(b, x...)
		return append(b, '"'), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case nil:
		return append(b, "null"...), nil
	}
	return other(b, v)
}

// plain reports whether s is written as it is, between quotes: printable
// ASCII without quotes or backslashes, and with html without <, > and &.
func plain(s string, html bool) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f || c == '"' || c == '\\':
			return false
		case html && (c == '<' || c == '>' || c == '&'):
			return false
		}
	}
	return true
}
