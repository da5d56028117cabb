package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// servedByDecoding is what appendServed must match: decode, set
// apiVersion, kind and resourceVersion, encode without HTML escaping.
func servedByDecoding(t testing.TB, b []byte, rev int64) ([]byte, bool) {
	m, err := decodeValue(b)
	if err != nil {
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(servedMap(&Resource{Group: "example.com", Version: "v1", Kind: "Widget"}, m, rev).Object); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

// checkServed fails if appendServed or appendServedMetadata accepts b but
// differs from decoding, or if only one of them accepts it.
func checkServed(t testing.TB, b []byte) bool {
	const rev = 42
	got, ok := appendServed([]byte("prefix"), b, "example.com/v1", "Widget", rev)
	gotMeta, metaOK := appendServedMetadata([]byte("prefix"), b, "example.com/v1", "Widget", rev)
	if ok != metaOK {
		t.Fatalf("appendServed accepted %s: %v, appendServedMetadata: %v", b, ok, metaOK)
	}
	if !ok {
		if string(got) != "prefix" || string(gotMeta) != "prefix" {
			t.Fatalf("refused %s but changed dst to %s / %s", b, got, gotMeta)
		}
		return false
	}
	want, decoded := servedByDecoding(t, b, rev)
	if !decoded {
		t.Fatalf("accepted %s, which does not decode", b)
	}
	if got = bytes.TrimPrefix(got, []byte("prefix")); !bytes.Equal(got, want) {
		t.Fatalf("stored %s\ngot  %s\nwant %s", b, got, want)
	}
	var served map[string]json.RawMessage
	if err := json.Unmarshal(want, &served); err != nil {
		t.Fatal(err)
	}
	if gotMeta = bytes.TrimPrefix(gotMeta, []byte("prefix")); !bytes.Equal(gotMeta, served["metadata"]) {
		t.Fatalf("stored %s\ngot metadata  %s\nwant metadata %s", b, gotMeta, served["metadata"])
	}
	return true
}

func TestAppendServed(t *testing.T) {
	stored := func(t *testing.T, m map[string]any) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := func(md map[string]any, spec any) map[string]any {
		return map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": md, "spec": spec}
	}
	fast := map[string]map[string]any{
		"empty_metadata":   base(map[string]any{}, nil),
		"keys_before_only": base(map[string]any{"name": "a", "namespace": "default"}, map[string]any{}),
		"keys_around": base(map[string]any{"name": "a", "uid": "u", "labels": map[string]any{"app": "x"}},
			map[string]any{"n": int64(-12), "big": int64(1) << 62, "zero": int64(0), "list": []any{true, false, nil, "s", []any{}}}),
		"keys_after_only": base(map[string]any{"uid": "u", "selfLink": "/x"}, "line\nbreak \"quoted\" tab\t back\\slash é 日本"),
	}
	for name, m := range fast {
		t.Run(name, func(t *testing.T) {
			if !checkServed(t, stored(t, m)) {
				t.Fatalf("took the decoding path for %s", stored(t, m))
			}
		})
	}
	slow := map[string][]byte{
		"html_escapes":          stored(t, base(map[string]any{"name": "a"}, "<a&b>")),
		"float":                 stored(t, base(map[string]any{"name": "a"}, 1.5)),
		"other_version":         []byte(`{"apiVersion":"example.com/v2","kind":"Widget","metadata":{"name":"a"}}`),
		"other_kind":            []byte(`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"a"}}`),
		"no_kind":               []byte(`{"apiVersion":"example.com/v1","metadata":{"name":"a"}}`),
		"no_metadata":           []byte(`{"apiVersion":"example.com/v1","kind":"Widget"}`),
		"metadata_not_object":   []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":[]}`),
		"has_resource_version":  []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"resourceVersion":"7"}}`),
		"whitespace":            []byte(`{"apiVersion": "example.com/v1","kind":"Widget","metadata":{}}`),
		"unsorted_keys":         []byte(`{"kind":"Widget","apiVersion":"example.com/v1","metadata":{}}`),
		"duplicate_keys":        []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{},"metadata":{}}`),
		"unsorted_nested":       []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{},"spec":{"b":1,"a":2}}`),
		"unicode_escape":        []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{},"spec":"\u0041"}`),
		"leading_zero":          []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{},"spec":01}`),
		"negative_zero":         []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{},"spec":-0}`),
		"exponent":              []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{},"spec":1e3}`),
		"beyond_int64":          []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{},"spec":9223372036854775808}`),
		"trailing_bytes":        []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{}}x`),
		"truncated":             []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"a"`),
		"invalid_utf8":          []byte("{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{},\"spec\":\"\xff\"}"),
		"line_separator":        []byte("{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{},\"spec\":\"\u2028\"}"),
		"escaped_key":           []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{},"spec":{"a\"b":1}}`),
		"control_character_raw": []byte("{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{},\"spec\":\"\x01\"}"),
	}
	for name, b := range slow {
		t.Run(name, func(t *testing.T) {
			if checkServed(t, b) {
				t.Fatalf("took the stored bytes for %s", b)
			}
		})
	}
}

func FuzzAppendServed(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"a","uid":"u"},"spec":{"a":[1,-2,true,null,"x\n"]}}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{}}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"labels":{"a":"b"}},"spec":1.5}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{},"spec":{"long":"0123456789abcdef\"0123456789\\abcdefé0123456789\tabcdef01234"}}`))
	f.Add([]byte("{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{},\"spec\":\"0123456789abcdef\x1f0123456789abcdef\"}"))
	f.Fuzz(func(t *testing.T, b []byte) { checkServed(t, b) })
}

// BenchmarkAppendServed serves a stored object of 1.9 KiB shaped like a
// Deployment: many short keys, managed fields, a few long strings.
func BenchmarkAppendServed(b *testing.B) {
	var fields, containers []string
	for i := range 12 {
		fields = append(fields, fmt.Sprintf(`"f:field%02d":{}`, i))
		containers = append(containers, fmt.Sprintf(`{"image":"registry.example.com/team/app-%d:v1.2.3","name":"c%d","ports":[{"containerPort":%d,"protocol":"TCP"}]}`, i%3, i, 8080+i))
	}
	stored := []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"annotations":{"example.com/note":"` + strings.Repeat("note ", 20) +
		`"},"creationTimestamp":"2026-11-26T15:05:59Z","generation":3,"labels":{"app":"web","tier":"front"},"managedFields":[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{` +
		strings.Join(fields, ",") + `}},"manager":"kubectl","operation":"Apply","time":"2026-11-26T15:05:59Z"}],"name":"web-0001","namespace":"default","uid":"d7de7572-a56c-44bd-9037-2e4619518eff"},"spec":{"containers":[` +
		strings.Join(containers[:4], ",") + `],"replicas":3}}`)
	if !checkServed(b, stored) {
		b.Fatal("the object is not served from its stored bytes")
	}
	b.SetBytes(int64(len(stored)))
	dst := make([]byte, 0, 2*len(stored))
	for b.Loop() {
		dst, _ = appendServed(dst[:0], stored, "example.com/v1", "Widget", 42)
	}
}
