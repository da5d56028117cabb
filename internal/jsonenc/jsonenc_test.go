package jsonenc

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// TestAppendMatchesEncodingJSON writes values with Append, in both modes,
// and with encoding/json: json.Marshal for html, an Encoder without HTML
// escaping otherwise. The bytes must be the same, and other must get
// exactly the values Append does not write itself.
func TestAppendMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, int64(-7), "plain", "<a href=\"x\">&amp;</a>", "tab\t", "é", "\x7f", "\xff", "\u2028",
		1.5, json.Number("3"), map[string]string{"k": "v"},
		map[string]any{"b": []any{int64(1), "<", nil}, "a": map[string]any{}, "c": []any(nil), "d": map[string]any(nil), "<k>": 2.5},
	}
	marshal := func(b []byte, v any) ([]byte, error) {
		js, err := json.Marshal(v)
		return append(b, js...), err
	}
	errOther := errors.New("other")
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Append([]byte("x"), v, true, marshal)
		if err != nil || !bytes.Equal(got[1:], want) {
			t.Errorf("html %#v: Append %s (%v), json.Marshal %s", v, got, err, want)
		}
		var enc bytes.Buffer
		e := json.NewEncoder(&enc)
		e.SetEscapeHTML(false)
		if err := e.Encode(v); err != nil {
			t.Fatal(err)
		}
		want = bytes.TrimSuffix(enc.Bytes(), []byte("\n"))
		var others []any
		got, err = Append(nil, v, false, func(b []byte, v any) ([]byte, error) {
			others = append(others, v)
			return marshalUnescaped(b, v)
		})
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%#v: Append %s (%v), Encoder %s", v, got, err, want)
		}
		if _, err := Append(nil, v, false, func([]byte, any) ([]byte, error) { return nil, errOther }); (err != nil) != (len(others) > 0) {
			t.Errorf("%#v: other called for %v, Append says %v", v, others, err)
		}
	}
}

// marshalUnescaped is one value as an Encoder without HTML escaping
// writes it.
func marshalUnescaped(b []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}
