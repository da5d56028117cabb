package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// maxListDepth bounds how deeply "kind: List" documents may nest.
const maxListDepth = 8

// manifestExtensions are the file name endings read from directories.
var manifestExtensions = []string{".yaml", ".yml", ".json"}

// readManifestPaths reads every object from paths, in order: "-" is stdin,
// a directory is walked recursively for *.yaml, *.yml and *.json files
// (in lexical order), anything else is read as one file.
func readManifestPaths(paths []string, stdin io.Reader) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read stdin: %w", err)
			}
			got, err := decodeManifests("<stdin>", data)
			if err != nil {
				return nil, err
			}
			objs = append(objs, got...)
			continue
		}
		files, err := manifestFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read manifest: %w", err)
			}
			got, err := decodeManifests(f, data)
			if err != nil {
				return nil, err
			}
			objs = append(objs, got...)
		}
	}
	return objs, nil
}

// manifestFiles lists the files p names: p itself, or the manifests below
// the directory p.
func manifestFiles(p string) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && hasManifestExtension(f) {
			files = append(files, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read manifest directory %s: %w", p, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read manifest directory %s: no %s files", p, strings.Join(manifestExtensions, ", "))
	}
	return files, nil
}

func hasManifestExtension(f string) bool {
	ext := strings.ToLower(filepath.Ext(f))
	for _, e := range manifestExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// decodeManifests decodes the objects in data, which holds a stream of JSON
// values or YAML documents separated by "---". Empty documents are skipped;
// "kind: List" documents are replaced by their items. source names data in
// errors.
func decodeManifests(source string, data []byte) ([]*unstructured.Unstructured, error) {
	docs, isJSON, err := splitDocuments(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var objs []*unstructured.Unstructured
	for i, doc := range docs {
		m, err := decodeDocument(doc, isJSON)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i+1, err)
		}
		if m == nil {
			continue
		}
		got, err := expandObject(m, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i+1, err)
		}
		objs = append(objs, got...)
	}
	return objs, nil
}

// splitDocuments cuts data into documents: JSON values when data starts
// with '{' or '[' (isJSON), YAML documents otherwise.
func splitDocuments(data []byte) (docs [][]byte, isJSON bool, err error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		docs, err := splitJSON(trimmed)
		return docs, true, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("split YAML documents: %w", err)
		}
		docs = append(docs, doc)
	}
}

// splitJSON cuts a stream of JSON values into one document per value.
func splitJSON(data []byte) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs [][]byte
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		docs = append(docs, raw)
	}
}

// decodeDocument decodes one YAML (or, with isJSON, JSON) document into an
// object; an empty document (only blanks and comments, or null) gives nil.
func decodeDocument(doc []byte, isJSON bool) (map[string]any, error) {
	js := doc
	if !isJSON {
		var err error
		if js, err = yaml.YAMLToJSON(doc); err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || bytes.Equal(js, []byte("null")) {
		return nil, nil
	}
	if js[0] != '{' {
		return nil, fmt.Errorf("a manifest must be an object, not %s", jsonKind(js[0]))
	}
	var m map[string]any
	if err := utiljson.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("invalid object: %w", err)
	}
	return m, nil
}

func jsonKind(first byte) string {
	switch first {
	case '[':
		return "a list"
	case '"':
		return "a string"
	default:
		return "a scalar"
	}
}

// expandObject checks that m names its type and returns it, or the items
// of a list.
func expandObject(m map[string]any, depth int) ([]*unstructured.Unstructured, error) {
	kind, _ := m["kind"].(string)
	apiVersion, _ := m["apiVersion"].(string)
	if kind == "" {
		return nil, errors.New(`object has no "kind"`)
	}
	if apiVersion == "" {
		return nil, fmt.Errorf(`%s object has no "apiVersion"`, kind)
	}
	items, isList := m["items"]
	if !strings.HasSuffix(kind, "List") || !isList {
		return []*unstructured.Unstructured{{Object: m}}, nil
	}
	if depth >= maxListDepth {
		return nil, fmt.Errorf("lists nested deeper than %d", maxListDepth)
	}
	list, ok := items.([]any)
	if !ok && items != nil {
		return nil, fmt.Errorf(`%s "items" must be a list`, kind)
	}
	var objs []*unstructured.Unstructured
	for i, item := range list {
		im, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s item %d is not an object", kind, i+1)
		}
		got, err := expandObject(im, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s item %d: %w", kind, i+1, err)
		}
		objs = append(objs, got...)
	}
	return objs, nil
}
