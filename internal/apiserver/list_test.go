package apiserver_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestListJSONMatchesDecodedObjects checks that a plain JSON list, whose
// items the registry makes from the stored bytes when it can, is byte for
// byte the compacted form of the pretty list, which encodes decoded
// objects: with and without HTML characters, escapes and non-ASCII text.
func TestListJSONMatchesDecodedObjects(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	bodies := []string{
		widget("plain", 1),
		`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"html","annotations":{"a":"<b>&amp;</b>"}},"spec":{"size":2}}`,
		`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"text","labels":{"app":"x"},"annotations":{"z":"line\nbreak \"q\" tab\t é 日本 \u0001"}},"spec":{"color":"blue"}}`,
		`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"finalized","finalizers":["example.com/hold"]},"spec":{}}`,
	}
	for _, b := range bodies {
		e.expect(t, http.StatusCreated, "POST", widgetsPath, b)
	}
	paths := map[string]string{
		"namespace":      widgetsPath,
		"all_namespaces": "/apis/example.com/v1/widgets",
		"built_in":       "/api/v1/namespaces",
		"label_selector": widgetsPath + "?labelSelector=app%3Dx",
		"page":           widgetsPath + "?limit=2",
	}
	for name, path := range paths {
		t.Run(name, func(t *testing.T) {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			plain := listItems(t, e.expect(t, http.StatusOK, "GET", path, "").body)
			pretty := listItems(t, e.expect(t, http.StatusOK, "GET", path+sep+"pretty=true", "").body)
			if len(plain) == 0 || len(plain) != len(pretty) {
				t.Fatalf("%d items plain, %d pretty", len(plain), len(pretty))
			}
			for i := range plain {
				var want bytes.Buffer
				if err := json.Compact(&want, pretty[i]); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(plain[i], want.Bytes()) {
					t.Fatalf("plain item\n%s\ndiffers from the pretty one\n%s", plain[i], want.Bytes())
				}
			}
		})
	}
}

// listItems returns the items of a list body as sent.
func listItems(t *testing.T, body []byte) []json.RawMessage {
	t.Helper()
	var l struct{ Items []json.RawMessage }
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return l.Items
}
