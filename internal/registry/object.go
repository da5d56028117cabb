package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/jsondec"
	"github.com/setpoint/setpoint/internal/jsonenc"
	"github.com/setpoint/setpoint/internal/storage"
)

// decodeValue parses a stored JSON document. Numbers keep their integer
// form (int64) as unstructured objects expect.
func decodeValue(b []byte) (map[string]any, error) {
	if m, ok := jsondec.Object(b, false); ok {
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("decode object: not a JSON object")
	}
	return convertNumbers(m).(map[string]any), nil
}

// convertNumbers replaces json.Number with int64 or float64 in place.
func convertNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = convertNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = convertNumbers(e)
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

// encodeFor renders obj of res for storage, in the storage version; obj
// itself is converted to the stored form when res is stored in another
// group's form.
func encodeFor(res *Resource, obj map[string]any) ([]byte, error) {
	if res.conv != nil && obj["apiVersion"] == res.apiVersion() {
		res.conv.toStored(obj)
	}
	obj["apiVersion"] = res.storageAPIVersion()
	return encodeValue(obj)
}

// encodeValue renders obj for storage: without metadata.resourceVersion.
func encodeValue(obj map[string]any) ([]byte, error) {
	md, _ := obj["metadata"].(map[string]any)
	rv, had := md["resourceVersion"]
	if had {
		delete(md, "resourceVersion")
		defer func() { md["resourceVersion"] = rv }()
	}
	b, err := appendJSON(make([]byte, 0, 1024), obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot encode object: %v", err))
	}
	return b, nil
}

// appendJSON appends v as json.Marshal renders it (keys sorted, HTML
// characters escaped), writing maps, lists, plain strings, integers and
// booleans itself and leaving any other value to json.Marshal.
func appendJSON(b []byte, v any) ([]byte, error) {
	return jsonenc.Append(b, v, true, func(b []byte, v any) ([]byte, error) {
		js, err := json.Marshal(v)
		return append(b, js...), err
	})
}

// served turns a stored object into what clients see: resourceVersion from
// the revision and apiVersion of the served version.
func (r *Registry) output(res *Resource, o storage.Object) (*unstructured.Unstructured, error) {
	m, err := decodeValue(o.Value)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("stored %s %s/%s: %w", res.Resource, o.Namespace, o.Name, err))
	}
	return servedMap(res, m, o.Revision), nil
}

// servedMap turns m, stored or served, into what clients of res see (in
// place): converted from the stored form when res has one, with res's
// apiVersion and kind and resourceVersion rev (none for 0).
func servedMap(res *Resource, m map[string]any, rev int64) *unstructured.Unstructured {
	if res.conv != nil && m["apiVersion"] == res.conv.storedAPIVersion {
		res.conv.toServed(m)
	}
	m["apiVersion"] = res.apiVersion()
	m["kind"] = res.Kind
	md := metadata(m)
	if rev > 0 {
		md["resourceVersion"] = strconv.FormatInt(rev, 10)
	} else {
		delete(md, "resourceVersion")
	}
	return &unstructured.Unstructured{Object: m}
}

// metadata returns obj's metadata map, creating it if absent or malformed.
func metadata(obj map[string]any) map[string]any {
	md, ok := obj["metadata"].(map[string]any)
	if !ok {
		md = map[string]any{}
		obj["metadata"] = md
	}
	return md
}

func metaString(obj map[string]any, key string) string {
	s, _ := metadata(obj)[key].(string)
	return s
}

func deletionTimestamp(obj map[string]any) string { return metaString(obj, "deletionTimestamp") }

// finalizers returns metadata.finalizers.
func finalizers(obj map[string]any) []string {
	list, _ := metadata(obj)["finalizers"].([]any)
	out := make([]string, 0, len(list))
	for _, f := range list {
		if s, ok := f.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func setFinalizers(obj map[string]any, fs []string) {
	if len(fs) == 0 {
		delete(metadata(obj), "finalizers")
		return
	}
	list := make([]any, len(fs))
	for i, f := range fs {
		list[i] = f
	}
	metadata(obj)["finalizers"] = list
}

// labelsOf returns metadata.labels as a string map for the store.
func labelsOf(obj map[string]any) map[string]string {
	m, _ := metadata(obj)["labels"].(map[string]any)
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, _ := v.(string)
		out[k] = s
	}
	return out
}

// deepCopy copies a JSON-like value.
func deepCopy(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}
