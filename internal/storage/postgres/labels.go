package postgres

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"unicode/utf8"

	"github.com/setpoint/setpoint/internal/storage"
)

// checkText rejects a string PostgreSQL text cannot hold: invalid UTF-8 or
// a NUL byte.
func checkText(what, s string) error {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s %q is not valid UTF-8 without NUL bytes: %w", what, s, storage.ErrInvalid)
	}
	return nil
}

// checkKey rejects a key PostgreSQL cannot store as given.
func checkKey(k storage.Key) error {
	for _, p := range [...]struct{ what, s string }{{"resource", k.Resource}, {"namespace", k.Namespace}, {"name", k.Name}} {
		if err := checkText(p.what, p.s); err != nil {
			return err
		}
	}
	return nil
}

// encodeLabels returns labels as the JSON object stored in the jsonb
// labels columns ("{}" for none). encoding/json would silently replace
// invalid UTF-8 and jsonb refuses \u0000, so both are rejected first.
func encodeLabels(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	for k, v := range m {
		if err := checkText("label key", k); err != nil {
			return "", err
		}
		if err := checkText("label value", v); err != nil {
			return "", err
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode labels: %w", err)
	}
	return string(b), nil
}

// decodeLabels decodes a jsonb labels column; nil for none. Labels are
// decoded for every object a list reads, so the form PostgreSQL prints a
// jsonb object of strings in, {"k": "v", "k2": "v2"}, is parsed directly
// when no string has an escape; anything else goes to encoding/json.
func decodeLabels(b []byte) (map[string]string, error) {
	if len(b) == 0 || string(b) == "{}" {
		return nil, nil
	}
	if m, ok := decodeSimpleLabels(b); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode labels: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// decodeSimpleLabels parses {"k": "v", ...} whose strings hold no
// backslash and no control character; ok is false for anything else.
func decodeSimpleLabels(b []byte) (m map[string]string, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}
	b = b[1 : len(b)-1]
	m = make(map[string]string, 1+bytes.Count(b, []byte(`", "`))/2)
	for {
		k, rest, ok := simpleString(b)
		if !ok || !bytes.HasPrefix(rest, []byte(": ")) {
			return nil, false
		}
		v, rest, ok := simpleString(rest[2:])
		if !ok {
			return nil, false
		}
		m[k] = v
		if len(rest) == 0 {
			return m, true
		}
		if !bytes.HasPrefix(rest, []byte(", ")) {
			return nil, false
		}
		b = rest[2:]
	}
}

// simpleString parses a JSON string at the start of b that needs no
// unescaping and is valid UTF-8.
func simpleString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != '"' {
		return "", nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return "", nil, false
	}
	raw := b[1 : 1+end]
	for _, c := range raw {
		if c == '\\' || c < 0x20 {
			return "", nil, false
		}
	}
	if !utf8.Valid(raw) {
		return "", nil, false
	}
	return string(raw), b[end+2:], true
}

// logRow is one row of the log table as read by Changes.
type logRow struct {
	rev    int64
	typ    storage.EventType
	key    storage.Key
	labels []byte
	value  []byte
	// prevRev is 0 when the row has no previous state.
	prevRev               int64
	prevLabels, prevValue []byte
}

// event turns r into the event Changes returns; it keeps r's slices. A
// delete has no new state of its own: its object is the previous state at
// the delete's revision.
func (r *logRow) event() (storage.Event, error) {
	ev := storage.Event{Type: r.typ, Object: storage.Object{Key: r.key, Revision: r.rev}}
	if r.prevRev != 0 {
		prevLabels, err := decodeLabels(r.prevLabels)
		if err != nil {
			return ev, fmt.Errorf("log revision %d: %w", r.rev, err)
		}
		ev.Prev = &storage.Object{Key: r.key, Revision: r.prevRev, Labels: prevLabels, Value: r.prevValue}
	}
	if r.typ != storage.Deleted {
		labels, err := decodeLabels(r.labels)
		if err != nil {
			return ev, fmt.Errorf("log revision %d: %w", r.rev, err)
		}
		ev.Object.Labels, ev.Object.Value = labels, r.value
		return ev, nil
	}
	if ev.Prev == nil {
		return ev, fmt.Errorf("log revision %d: delete without previous state", r.rev)
	}
	ev.Object.Labels = maps.Clone(ev.Prev.Labels)
	ev.Object.Value = append([]byte(nil), r.prevValue...)
	return ev, nil
}

// firstSchema returns the first schema of a search_path setting, unquoted;
// "public" when empty.
func firstSchema(searchPath string) string {
	first, _, _ := strings.Cut(searchPath, ",")
	first = strings.TrimSpace(first)
	if len(first) >= 2 && first[0] == '"' && first[len(first)-1] == '"' {
		return strings.ReplaceAll(first[1:len(first)-1], `""`, `"`)
	}
	if first == "" {
		return "public"
	}
	return strings.ToLower(first)
}

// channelName derives the LISTEN/NOTIFY channel of a schema, so that
// stores in different schemas of one database never wake each other. A
// channel name is an identifier of at most 63 bytes; a long schema name is
// replaced by its hash.
func channelName(schema string) string {
	const prefix = "setpoint_"
	if len(prefix)+len(schema) <= 63 {
		return prefix + schema
	}
	sum := sha256.Sum256([]byte(schema))
	return prefix + hex.EncodeToString(sum[:16])
}
