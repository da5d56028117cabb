package jsondec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// depthOf is the nesting depth of valid JSON as encoding/json's tokenizer
// sees it.
func depthOf(t *testing.T, b []byte) int {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	depth, most := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return most
		}
		if err != nil {
			t.Fatalf("token of valid JSON %q: %v", b, err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			most = max(most, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

func TestTooDeep(t *testing.T) {
	for _, tt := range []struct {
		doc   string
		limit int
		want  bool
	}{
		{`{}`, 1, false},
		{`{}`, 0, true},
		{`{"a":[{"b":1}]}`, 3, false},
		{`{"a":[{"b":1}]}`, 2, true},
		{`{"a":"[[[[{{{{"}`, 1, false},
		{`{"a":"\"[[[["}`, 1, false},
		{`{"a":"\\"}`, 1, false},
		{`{"a":"\\", "b":[[1]]}`, 2, true},
		{`[[],[],[],[]]`, 2, false},
		{strings.Repeat("[", 101) + strings.Repeat("]", 101), 100, true},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), 100, false},
		{strings.Repeat("[", 1<<20), 100, true}, // cut, deep: no recursion to blow
		{`"[[[`, 1, false},                      // an unterminated string hides the rest
	} {
		if got := TooDeep([]byte(tt.doc), tt.limit); got != tt.want {
			t.Errorf("TooDeep(%.40q, %d) = %v, want %v", tt.doc, tt.limit, got, tt.want)
		}
	}
}

// FuzzTooDeep checks TooDeep against encoding/json's view of valid
// documents at every limit around their depth, and that no input makes it
// panic.
func FuzzTooDeep(f *testing.F) {
	for _, seed := range []string{`{}`, `{"a":[1,{"b":"]}\\\""}]}`, `[[[[]]]]`, `"\\"`, `{"a":"\u005b"}`, `{`, `]]]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		deep := TooDeep(b, 3)
		if !json.Valid(b) {
			return
		}
		if want := depthOf(t, b) > 3; deep != want {
			t.Fatalf("TooDeep(%q, 3) = %v, encoding/json's depth says %v", b, deep, want)
		}
	})
}
