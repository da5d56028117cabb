package postgres

import (
	"encoding/json"
	"maps"
	"testing"
)

// FuzzDecodeLabels checks that the fast path of decodeLabels agrees with
// encoding/json on every input it accepts, and that decodeLabels never
// panics.
func FuzzDecodeLabels(f *testing.F) {
	for _, seed := range []string{
		`{"app": "web"}`,
		`{"app": "bench", "bucket": "7"}`,
		`{"odd key.io/x": "it's \"quoted\""}`,
		`{"k": "caf\u00e9", "e": ""}`,
		`{"a": "b", "a": "c"}`,
		`{"a":"b"}`,
		`{"a": "b",}`,
		`{"ü": "ß"}`,
		`{"a": 1}`,
		`{}`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, fast := decodeSimpleLabels(b)
		_, _ = decodeLabels(b)
		if !fast {
			return
		}
		var want map[string]string
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", b, err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("fast path decoded %q as %v, encoding/json as %v", b, got, want)
		}
	})
}

// TestLabelsRoundTrip checks that labels encoded for the database decode
// back to themselves, in the form PostgreSQL prints jsonb.
func TestLabelsRoundTrip(t *testing.T) {
	for _, m := range []map[string]string{
		{"app": "web"},
		{"a": "", "b.io/c": "d-e_f", "ü": "ß"},
		{"q": `it's "quoted" \ back`, "nl": "a\nb"},
	} {
		enc, err := encodeLabels(m)
		if err != nil {
			t.Fatal(err)
		}
		var generic map[string]any
		if err := json.Unmarshal([]byte(enc), &generic); err != nil {
			t.Fatal(err)
		}
		got, err := decodeLabels([]byte(enc))
		if err != nil || !maps.Equal(got, m) {
			t.Fatalf("decode(encode(%v)) = %v, %v", m, got, err)
		}
	}
}
