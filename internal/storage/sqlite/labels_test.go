package sqlite

import (
	"maps"
	"testing"
	"unicode/utf8"
)

// FuzzLabelsDecode feeds arbitrary column bytes to decodeLabels: it must
// not panic, and what it accepts must encode back to an equal map.
func FuzzLabelsDecode(f *testing.F) {
	for _, m := range []map[string]string{
		{"app": "web"}, {"app": "web", "tier": "front", "example.com/x": ""}, {"": ""},
	} {
		b, err := encodeLabels(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{2, 1, 'a', 1, 'b'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeLabels(b)
		if err != nil {
			return
		}
		for k, v := range m {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return // stored by no encoder; nothing more to check
			}
		}
		again, err := encodeLabels(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeLabels(again)
		if err != nil || !maps.Equal(m, m2) {
			t.Fatalf("re-encoded %v decodes as %v, %v", m, m2, err)
		}
	})
}

// FuzzLabelsRoundTrip encodes label maps and decodes them back.
func FuzzLabelsRoundTrip(f *testing.F) {
	f.Add("app", "web", "tier", "front")
	f.Add("", "", "k", "v\x00\"\\")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := map[string]string{k1: v1, k2: v2}
		b, err := encodeLabels(m)
		if err != nil {
			for k, v := range m {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					return
				}
			}
			t.Fatal(err)
		}
		got, err := decodeLabels(b)
		if err != nil || !maps.Equal(got, m) {
			t.Fatalf("round trip of %v = %v, %v", m, got, err)
		}
	})
}
