package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const crdAndWidgets = `# a CRD and two widgets
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: a
spec:
  size: 3
---
# only a comment
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: b
`

func names(t *testing.T, source, data string) []string {
	t.Helper()
	objs, err := decodeManifests(source, []byte(data))
	if err != nil {
		t.Fatalf("decodeManifests: %v", err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	return got
}

func TestDecodeManifests(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{"multi_document_yaml", crdAndWidgets, []string{"CustomResourceDefinition/widgets.example.com", "Widget/a", "Widget/b"}},
		{"json_object", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}`, []string{"Namespace/x"}},
		{"json_stream", "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"x\"}}\n\t{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"y\"}}", []string{"Namespace/x", "Namespace/y"}},
		{"yaml_list", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: x}\n- apiVersion: example.com/v1\n  kind: Widget\n  metadata: {name: w}\n", []string{"Namespace/x", "Widget/w"}},
		{"typed_list", `{"apiVersion":"example.com/v1","kind":"WidgetList","items":[{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}}]}`, []string{"Widget/w"}},
		{"empty_list", "apiVersion: v1\nkind: List\nitems: []\n", nil},
		{"empty", "\n# nothing\n---\n", nil},
		{"kind_ending_in_list_without_items", "apiVersion: example.com/v1\nkind: Checklist\nmetadata: {name: c}\n", []string{"Checklist/c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := names(t, "test", tt.data)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeManifestsKeepsIntegers(t *testing.T) {
	objs, err := decodeManifests("test", []byte("apiVersion: v1\nkind: X\nmetadata: {name: x}\nspec: {size: 9007199254740993}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := objs[0].Object["spec"].(map[string]any)["size"]; got != int64(9007199254740993) {
		t.Errorf("size = %#v, want the exact int64", got)
	}
}

func TestDecodeManifestsErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"invalid_yaml", "apiVersion: v1\nkind: [\n", "f.yaml: document 1: invalid YAML"},
		{"second_document_invalid", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\nkind: : :\n", "f.yaml: document 2: invalid YAML"},
		{"invalid_json", `{"apiVersion": "v1",`, "f.yaml: invalid JSON"},
		{"string", "hello\n", "must be an object, not a string"},
		{"number", "42\n", "must be an object, not a scalar"},
		{"sequence", "- a\n- b\n", "must be an object, not a list"},
		{"no_kind", "apiVersion: v1\nmetadata: {name: x}\n", `object has no "kind"`},
		{"no_api_version", "kind: Namespace\nmetadata: {name: x}\n", `Namespace object has no "apiVersion"`},
		{"kind_not_string", "apiVersion: v1\nkind: 3\n", `object has no "kind"`},
		{"list_items_not_list", "apiVersion: v1\nkind: List\nitems: 3\n", `"items" must be a list`},
		{"list_item_not_object", "apiVersion: v1\nkind: List\nitems: [3]\n", "List item 1 is not an object"},
		{"list_item_without_kind", "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1}]\n", `List item 1: object has no "kind"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeManifests("f.yaml", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestReadManifestPaths(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ns := func(name string) string {
		return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n"
	}
	write("a.yaml", ns("a"))
	write("sub/b.yml", ns("b"))
	write("sub/deeper/c.json", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"c"}}`)
	write("sub/README.md", "not a manifest")
	write("single.yaml", ns("s"))

	objs, err := readManifestPaths([]string{dir, "-", filepath.Join(dir, "single.yaml")}, strings.NewReader(ns("stdin")))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetName())
	}
	if want := "a,s,b,c,stdin,s"; strings.Join(got, ",") != want {
		t.Errorf("names = %v, want %s", got, want)
	}

	t.Run("missing_file", func(t *testing.T) {
		_, err := readManifestPaths([]string{filepath.Join(dir, "nope.yaml")}, nil)
		if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Errorf("err = %v, want it to name the missing file", err)
		}
	})
	t.Run("directory_without_manifests", func(t *testing.T) {
		empty := filepath.Join(dir, "empty")
		if err := os.Mkdir(empty, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := readManifestPaths([]string{empty}, nil); err == nil {
			t.Error("want an error for a directory without manifests")
		}
	})
}

// FuzzDecodeManifests checks that no input makes the manifest reader panic
// and that every object it accepts names its type and encodes as JSON.
func FuzzDecodeManifests(f *testing.F) {
	f.Add([]byte(crdAndWidgets))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}} {"apiVersion":"v1","kind":"List","items":[]}`))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: [{apiVersion: v1, kind: Namespace}]\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("[1, 2, {\"a\": null}]"))
	f.Add([]byte("apiVersion: v1\nkind: X\nspec: {n: 1e400, m: -0, t: 2024-01-01}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := decodeManifests("fuzz", data)
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.GetKind() == "" || o.GetAPIVersion() == "" {
				t.Fatalf("accepted an object without kind or apiVersion: %v", o.Object)
			}
			if _, err := json.Marshal(o.Object); err != nil {
				t.Fatalf("accepted object does not encode: %v", err)
			}
			_ = o.DeepCopy()
			if _, err := withLastApplied(o); err != nil {
				t.Fatalf("withLastApplied: %v", err)
			}
		}
	})
}
