package registry

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestMetadataChecksOfManagedFields checks that the metadata checks,
// which read plain managedFields without the unstructured converter,
// answer what decoding into ObjectMeta and the converter answer, for
// plain and odd entries alike.
func TestMetadataChecksOfManagedFields(t *testing.T) {
	res := &Resource{Group: "example.com", Version: "v1", Resource: "things", Kind: "Thing", Namespaced: true}
	good := map[string]any{"manager": "m", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:spec": map[string]any{}}}
	with := func(k string, v any) map[string]any {
		e := map[string]any{}
		for k, v := range good {
			e[k] = v
		}
		if v == nil {
			delete(e, k)
		} else {
			e[k] = v
		}
		return e
	}
	cases := []any{
		[]any{good},
		[]any{},
		nil,
		"x",
		[]any{"x"},
		[]any{good, with("manager", "other")},
		[]any{with("operation", "Bogus")},
		[]any{with("operation", nil)},
		[]any{with("fieldsType", "FieldsV2")},
		[]any{with("manager", strings.Repeat("m", 200))},
		[]any{with("manager", int64(3))},
		[]any{with("time", "yesterday")},
		[]any{with("time", "2026-01-01T00:00:00+02:00")},
		[]any{with("time", int64(1))},
		[]any{with("fieldsV1", "x")},
		[]any{with("fieldsV1", []any{})},
		[]any{with("Manager", "x")},
		[]any{with("unknown", "x")},
		[]any{with("subresource", strings.Repeat("s", 300))},
		[]any{with("apiVersion", nil)},
	}
	for i, mf := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			obj := map[string]any{"apiVersion": "example.com/v1", "kind": "Thing",
				"metadata": map[string]any{"name": "x", "namespace": "default", "managedFields": mf}}
			if mf == nil {
				delete(obj["metadata"].(map[string]any), "managedFields")
			}
			// What decoding into ObjectMeta and the converter answer.
			b, _ := json.Marshal(obj["metadata"])
			wantDecode := json.Unmarshal(b, &metav1.ObjectMeta{})
			u := &unstructured.Unstructured{Object: obj}
			want := apivalidation.ValidateObjectMetaAccessor(u, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
			want = append(want, apivalidation.ValidateObjectMetaAccessorUpdate(u, &unstructured.Unstructured{Object: obj}, field.NewPath("metadata"))...)

			gotDecode := checkTypeMeta(res, obj)
			if (wantDecode == nil) != (gotDecode == nil) || (wantDecode != nil && !strings.Contains(gotDecode.Error(), wantDecode.Error())) {
				t.Fatalf("managedFields %v: decoding says %v, checkTypeMeta %v", mf, wantDecode, gotDecode)
			}
			if got := validateMeta(res, obj, obj); !reflect.DeepEqual(got, want) {
				t.Fatalf("managedFields %v: validation says %v, validateMeta %v", mf, want, got)
			}
		})
	}
}
