package apiserver_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestListJSONMatchesDecodedObjects checks that the items of a plain JSON
// list, which the registry makes from the stored bytes when it can, are
// byte for byte the compacted form of each object's pretty GET, which
// encodes the decoded object: with and without HTML characters, escapes
// and non-ASCII text. The pretty list, indented from the same bytes, must
// be what an indenting json.Encoder writes for the decoded plain list.
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
			plainBody := e.expect(t, http.StatusOK, "GET", path, "").body
			plain := listItems(t, plainBody)
			if len(plain) == 0 {
				t.Fatal("no items")
			}
			for i := range plain {
				var md struct {
					Metadata struct{ Namespace, Name string }
				}
				if err := json.Unmarshal(plain[i], &md); err != nil {
					t.Fatal(err)
				}
				objPath := "/api/v1/namespaces/" + md.Metadata.Name
				if md.Metadata.Namespace != "" {
					objPath = "/apis/example.com/v1/namespaces/" + md.Metadata.Namespace + "/widgets/" + md.Metadata.Name
				}
				var want bytes.Buffer
				if err := json.Compact(&want, e.expect(t, http.StatusOK, "GET", objPath+"?pretty=true", "").body); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(plain[i], want.Bytes()) {
					t.Fatalf("plain item\n%s\ndiffers from the pretty object\n%s", plain[i], want.Bytes())
				}
			}
			dec := json.NewDecoder(bytes.NewReader(plainBody))
			dec.UseNumber()
			var list map[string]any
			if err := dec.Decode(&list); err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(list); err != nil {
				t.Fatal(err)
			}
			if pretty := e.expect(t, http.StatusOK, "GET", path+sep+"pretty=true", "").body; !bytes.Equal(pretty, want.Bytes()) {
				t.Fatalf("pretty list\n%s\nis not the indented plain list\n%s", pretty, want.Bytes())
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
