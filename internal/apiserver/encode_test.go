package apiserver

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/registry"
)

// TestWatchEventEncodedOnce checks that watchers sharing an event's cache
// send the same bytes, encoded once, while a transformed stream encodes
// its own.
func TestWatchEventEncodedOnce(t *testing.T) {
	cache := &feed.EncodeCache{}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w1"}}}
	ev := registry.WatchEvent{Type: "ADDED", Object: obj, Cache: cache}
	var first, second bytes.Buffer
	a, err := (&watchEncoder{}).encode(&first, ev)
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&watchEncoder{}).encode(&second, ev)
	if err != nil {
		t.Fatal(err)
	}
	if &a[0] != &b[0] || first.Len() != 0 || second.Len() != 0 {
		t.Fatal("two plain watchers encoded the event separately")
	}
	if want := `{"type":"ADDED","object":{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"}}}` + "\n"; string(a) != want {
		t.Fatalf("line %s", a)
	}
	var own bytes.Buffer
	c, err := (&watchEncoder{out: output{target: targetPartial, metaVersion: "v1"}}).encode(&own, ev)
	if err != nil {
		t.Fatal(err)
	}
	if &c[0] == &a[0] || !bytes.Contains(c, []byte(`"kind":"PartialObjectMetadata"`)) {
		t.Fatalf("a transformed watcher got %s", c)
	}
}

// FuzzDecodeObject feeds arbitrary bodies to the object decoder: it never
// panics, and what it accepts is an object.
func FuzzDecodeObject(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}`), uint8(bodyJSON))
	f.Add([]byte(`{"a":1,"a":2,"b":{"c":[1,2.5,"x",null,true]}}`), uint8(bodyJSON))
	f.Add([]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n"), uint8(bodyYAML))
	f.Add([]byte("- a\n- b\n"), uint8(bodyYAML))
	f.Add([]byte("k8s\x00\n\x0c\n\x02v1\x12\tNamespace\x12\x00"), uint8(bodyProtobuf))
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		obj, _, err := decodeObject(data, bodyFormat(format%3))
		if err == nil && obj == nil {
			t.Fatal("accepted a body without an object")
		}
		if err != nil {
			if status, fault := statusFor(err); fault || status.Code >= 500 {
				t.Fatalf("decode error is a server fault: %v", err)
			}
		}
	})
}

// TestWatchErrorEventCarriesStatus checks that ERROR events carry a Status
// clients can decode (kind and apiVersion set), also on Table streams.
func TestWatchErrorEventCarriesStatus(t *testing.T) {
	ev := registry.WatchEvent{Type: "ERROR", Object: &metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old"}}
	for _, out := range []output{{}, {target: targetTable, metaVersion: "v1"}} {
		var buf bytes.Buffer
		line, err := (&watchEncoder{out: out, table: &tableBuilder{metaVersion: "v1"}}).encode(&buf, ev)
		if err != nil {
			t.Fatal(err)
		}
		var frame struct {
			Type   string
			Object metav1.Status
		}
		if err := json.Unmarshal(line, &frame); err != nil {
			t.Fatal(err)
		}
		if frame.Type != "ERROR" || frame.Object.Kind != "Status" || frame.Object.APIVersion != "v1" || frame.Object.Code != 410 || frame.Object.Reason != metav1.StatusReasonExpired {
			t.Fatalf("target %v: %s", out.target, line)
		}
	}
}

// TestEncodeJSONMatchesEncoder encodes random decoded objects (strings
// with HTML characters, escapes, non-ASCII, invalid UTF-8 and the line
// separators; integers, floats, booleans, nulls, nested maps and lists)
// with encodeJSON and with a json.Encoder without HTML escaping, compact
// and indented, and indents the compact bytes with appendIndented and
// json.Indent: the bytes must be the same.
func TestEncodeJSONMatchesEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"a", "b<c>&d", "é", "日本", "q\"uote", "back\\slash", "tab\there", "nl\n", "\x01", "\xff", "\u2028", "\u2029", "\ufffd", ""}
	var value func(depth int) any
	value = func(depth int) any {
		switch k := rng.IntN(9); {
		case k == 0:
			return rng.Int64N(2000) - 1000
		case k == 1:
			return strs[rng.IntN(len(strs))]
		case k == 2:
			return rng.IntN(2) == 0
		case k == 3:
			return nil
		case k == 4 && rng.IntN(8) == 0:
			return rng.Float64() * 1e21
		case k == 5 && depth > 0:
			l := []any{}
			for range rng.IntN(4) {
				l = append(l, value(depth-1))
			}
			return l
		case depth > 0:
			m := map[string]any{}
			for range rng.IntN(5) {
				m[strs[rng.IntN(len(strs))]] = value(depth - 1)
			}
			return m
		}
		return "leaf"
	}
	plain := 0
	for i := range 5000 {
		v := value(4)
		for _, pretty := range []bool{false, true} {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if pretty {
				enc.SetIndent("", "  ")
			}
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			got.WriteString("prefix")
			if err := encodeJSON(&got, v, pretty); err != nil {
				t.Fatal(err)
			}
			if g := strings.TrimPrefix(got.String(), "prefix"); g != want.String() {
				t.Fatalf("value %d %#v, pretty %v:\nencodeJSON %q\nEncoder    %q", i, v, pretty, g, want.String())
			}
			if !pretty {
				// Indenting the Encoder's compact bytes, escapes included.
				var indented bytes.Buffer
				if err := json.Indent(&indented, want.Bytes(), "", "  "); err != nil {
					t.Fatal(err)
				}
				if g := appendIndented(nil, want.Bytes()); string(g) != indented.String() {
					t.Fatalf("value %d %#v:\nappendIndented %q\njson.Indent    %q", i, v, g, indented.String())
				}
			}
		}
		if _, ok := appendPlain(nil, v); ok {
			plain++
		}
	}
	t.Logf("%d of 5000 values written without the Encoder", plain)
	if plain < 1000 {
		t.Fatalf("only %d of 5000 values written without the Encoder", plain)
	}
}
