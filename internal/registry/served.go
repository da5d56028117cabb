package registry

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/setpoint/setpoint/internal/storage"
)

// maxCanonicalDepth bounds the nesting appendServed follows; deeper
// documents take the decoding path.
const maxCanonicalDepth = 200

// appendServedJSON appends to dst the JSON of o as served for res: exactly
// what encoding/json renders for the object output returns, with HTML
// escaping off and no trailing newline.
func (r *Registry) appendServedJSON(dst []byte, res *Resource, o storage.Object) ([]byte, error) {
	if out, ok := appendServed(dst, o.Value, res.apiVersion(), res.Kind, o.Revision); ok {
		return out, nil
	}
	u, err := r.output(res, o)
	if err != nil {
		return dst, err
	}
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(u.Object); err != nil {
		return dst, apierrors.NewInternalError(fmt.Errorf("encode %s %s/%s: %w", res.Resource, o.Namespace, o.Name, err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendServed appends to dst the stored document b with
// metadata.resourceVersion set to rev, without decoding it. It only does so
// when b is exactly what encoding/json renders for the decoded document,
// so that the result equals decoding, setting resourceVersion and encoding
// (HTML escaping off): no whitespace, object keys without escapes in
// strictly increasing order, strings valid UTF-8 with no escapes but \" \\
// \n \r \t, numbers integers that fit in int64; and apiVersion and kind
// must already be the served ones and metadata an object without
// resourceVersion. Otherwise it reports false and dst is unchanged.
func appendServed(dst, b []byte, apiVersion, kind string, rev int64) ([]byte, bool) {
	at, ok := canonical(b, apiVersion, kind)
	if !ok {
		return dst, false
	}
	dst = append(dst, b[:at.insert]...)
	dst = appendResourceVersion(dst, b, at.insert, rev)
	return append(dst, b[at.insert:]...), true
}

// appendServedMetadata appends to dst the JSON of the metadata of the
// stored document b as served with resourceVersion rev: exactly what
// encoding/json renders for the metadata of the object output returns
// (HTML escaping off). It asks what appendServed asks of b, and reports
// false, dst unchanged, when b does not qualify.
func appendServedMetadata(dst, b []byte, apiVersion, kind string, rev int64) ([]byte, bool) {
	at, ok := canonical(b, apiVersion, kind)
	if !ok {
		return dst, false
	}
	dst = append(dst, b[at.metaStart:at.insert]...)
	dst = appendResourceVersion(dst, b, at.insert, rev)
	return append(dst, b[at.insert:at.metaEnd]...), true
}

// canonSpans locates, in a document canonical checked, its metadata object
// (b[metaStart:metaEnd]) and where metadata.resourceVersion belongs
// (insert, inside the metadata object).
type canonSpans struct {
	metaStart, metaEnd, insert int
}

// canonical checks that b qualifies for appendServed (see there) and
// returns where its metadata is.
func canonical(b []byte, apiVersion, kind string) (canonSpans, bool) {
	var at canonSpans
	if !utf8.Valid(b) || bytes.Contains(b, []byte("\u2028")) || bytes.Contains(b, []byte("\u2029")) {
		return at, false
	}
	s := canonScanner{b: b}
	if len(b) < 2 || b[0] != '{' {
		return at, false
	}
	at.insert = -1
	sawAPIVersion, sawKind := false, false
	var prev []byte
	i := 1
	for {
		key, next, ok := s.key(i, prev)
		if !ok {
			return at, false
		}
		prev = key
		isMeta := false
		switch string(key) {
		case "apiVersion":
			sawAPIVersion = s.isString(next, apiVersion)
		case "kind":
			sawKind = s.isString(next, kind)
		case "metadata":
			if at.insert, ok = s.resourceVersionAt(next); !ok {
				return at, false
			}
			isMeta = true
		}
		if i, ok = s.value(next, 1); !ok {
			return at, false
		}
		if isMeta {
			at.metaStart, at.metaEnd = next, i
		}
		if s.at(i) == '}' {
			break
		}
		if s.at(i) != ',' {
			return at, false
		}
		i++
	}
	if i != len(b)-1 || at.insert < 0 || !sawAPIVersion || !sawKind {
		return at, false
	}
	return at, true
}

// appendResourceVersion appends the member "resourceVersion":"rev" that
// belongs at b[insert] (a key or the closing brace of metadata), with the
// commas it needs.
func appendResourceVersion(dst, b []byte, insert int, rev int64) []byte {
	if b[insert] == '}' && b[insert-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, `"resourceVersion":"`...)
	dst = strconv.AppendInt(dst, rev, 10)
	dst = append(dst, '"')
	if b[insert] != '}' {
		dst = append(dst, ',')
	}
	return dst
}

// canonScanner checks JSON in encoding/json's canonical form (see
// appendServed). Its methods take the index to start at and return the
// index after what they read; an index past the end fails.
type canonScanner struct{ b []byte }

// at returns the byte at i, or 0 past the end.
func (s *canonScanner) at(i int) byte {
	if i < len(s.b) {
		return s.b[i]
	}
	return 0
}

// key reads `"key":` at i, a key without escapes greater than prev (when
// prev is not nil), and returns the key and the index of its value.
func (s *canonScanner) key(i int, prev []byte) ([]byte, int, bool) {
	if s.at(i) != '"' {
		return nil, 0, false
	}
	end := s.plainEnd(i + 1)
	key := s.b[i+1 : end]
	if s.at(end) != '"' || prev != nil && bytes.Compare(key, prev) <= 0 {
		return nil, 0, false
	}
	if s.at(end+1) != ':' {
		return nil, 0, false
	}
	return key, end + 2, true
}

// plainEnd returns the index of the first quote, backslash or control
// character at or after i, or len(s.b). Most keys are short, for which
// this loop is faster than calls to bytes.IndexByte.
func (s *canonScanner) plainEnd(i int) int {
	for i+8 <= len(s.b) && plainWord(binary.LittleEndian.Uint64(s.b[i:])) {
		i += 8
	}
	for ; i < len(s.b); i++ {
		if c := s.b[i]; c == '"' || c == '\\' || c < 0x20 {
			break
		}
	}
	return i
}

// isString reports whether the value at i is the string want (which needs
// no escapes).
func (s *canonScanner) isString(i int, want string) bool {
	end := i + 1 + len(want)
	return s.at(i) == '"' && end < len(s.b) && s.b[end] == '"' && string(s.b[i+1:end]) == want
}

// resourceVersionAt checks that the value at i is an object without a
// resourceVersion key and returns where that key belongs: the start of the
// first greater key, or the closing brace.
func (s *canonScanner) resourceVersionAt(i int) (int, bool) {
	if s.at(i) != '{' {
		return 0, false
	}
	i++
	if s.at(i) == '}' {
		return i, true
	}
	var prev []byte
	for {
		key, next, ok := s.key(i, prev)
		if !ok {
			return 0, false
		}
		switch c := bytes.Compare(key, []byte("resourceVersion")); {
		case c == 0:
			return 0, false
		case c > 0:
			return i, true
		}
		prev = key
		if i, ok = s.value(next, 2); !ok {
			return 0, false
		}
		switch s.at(i) {
		case '}':
			return i, true
		case ',':
			i++
		default:
			return 0, false
		}
	}
}

// value checks the value at i, nested depth deep.
func (s *canonScanner) value(i, depth int) (int, bool) {
	if depth > maxCanonicalDepth {
		return 0, false
	}
	switch c := s.at(i); {
	case c == '{':
		return s.object(i+1, depth)
	case c == '[':
		return s.array(i+1, depth)
	case c == '"':
		return s.str(i + 1)
	case c == '-' || c >= '0' && c <= '9':
		return s.integer(i)
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(s.b[i:], []byte(lit)) {
			return i + len(lit), true
		}
	}
	return 0, false
}

// object checks the members of an object whose brace is before i.
func (s *canonScanner) object(i, depth int) (int, bool) {
	if s.at(i) == '}' {
		return i + 1, true
	}
	var prev []byte
	for {
		key, next, ok := s.key(i, prev)
		if !ok {
			return 0, false
		}
		prev = key
		if i, ok = s.value(next, depth+1); !ok {
			return 0, false
		}
		switch s.at(i) {
		case '}':
			return i + 1, true
		case ',':
			i++
		default:
			return 0, false
		}
	}
}

// array checks the elements of an array whose bracket is before i.
func (s *canonScanner) array(i, depth int) (int, bool) {
	if s.at(i) == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = s.value(i, depth+1); !ok {
			return 0, false
		}
		switch s.at(i) {
		case ']':
			return i + 1, true
		case ',':
			i++
		default:
			return 0, false
		}
	}
}

// str checks the rest of a string whose quote is before i. Runs of eight
// bytes none of which is a quote, a backslash or a control character are
// skipped a word at a time: a stored object's strings are most of its
// bytes, and this is most of the time a list spends on them.
func (s *canonScanner) str(i int) (int, bool) {
	for ; i < len(s.b); i++ {
		if i = s.plainEnd(i); i >= len(s.b) {
			break
		}
		switch c := s.b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			i++
			switch s.at(i) {
			case '"', '\\', 'n', 'r', 't':
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

// plainWord reports whether none of the eight bytes of w is a quote, a
// backslash or below 0x20, with the classic word-at-a-time tests for a
// zero byte and for a byte below n (exact as tests of "any byte").
func plainWord(w uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	zero := func(x uint64) uint64 { return (x - ones) & ^x & highs }
	return zero(w^(ones*'"'))|zero(w^(ones*'\\'))|((w-ones*0x20) & ^w & highs) == 0
}

// integer checks an integer that fits in int64, written as
// strconv.FormatInt writes it (no leading zeros, no "-0").
func (s *canonScanner) integer(i int) (int, bool) {
	digits := i
	if s.at(digits) == '-' {
		digits++
	}
	end := digits
	for s.at(end) >= '0' && s.at(end) <= '9' {
		end++
	}
	switch {
	case end == digits, s.at(end) == '.', s.at(end) == 'e', s.at(end) == 'E':
		return 0, false
	case s.b[digits] == '0' && (end-digits > 1 || digits > i):
		return 0, false
	case end-digits > 18:
		// Up to 18 digits always fit; longer ones may not.
		if _, err := strconv.ParseInt(string(s.b[i:end]), 10, 64); err != nil {
			return 0, false
		}
	}
	return end, true
}
