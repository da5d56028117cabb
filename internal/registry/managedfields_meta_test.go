package registry

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

// TestCheckTypeMetaMatchesDecoding checks checkTypeMeta, which accepts
// plain metadata without decoding it, against decoding into ObjectMeta
// on random metadata: fields of ObjectMeta and others, spelled right and
// in other cases, with values of every shape. The check must accept and
// refuse what decoding does, with its error.
func TestCheckTypeMetaMatchesDecoding(t *testing.T) {
	res := &Resource{Group: "example.com", Version: "v1", Resource: "things", Kind: "Thing", Namespaced: true}
	rng := rand.New(rand.NewPCG(5, 8))
	values := []any{"x", "", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+02:00", "yesterday", "\xff", int64(3), int64(-1), 2.0, 2.5, true, nil,
		map[string]any{}, map[string]any{"a": "b"}, map[string]any{"a": int64(1)}, map[string]any{"a": nil},
		[]any{}, []any{"a"}, []any{int64(1)}, []any{nil},
		[]any{map[string]any{"apiVersion": "v1", "kind": "K", "name": "n", "uid": "u", "controller": true}},
		[]any{map[string]any{"apiVersion": "v1", "blockOwnerDeletion": "yes"}},
		[]any{map[string]any{"other": int64(1), "name": "n"}},
		[]any{map[string]any{"Name": int64(1)}},
	}
	keys := []string{"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "clusterName", "generation",
		"deletionGracePeriodSeconds", "creationTimestamp", "deletionTimestamp", "labels", "annotations", "finalizers",
		"ownerReferences", "Name", "LABELS", "other"}
	plain := 0
	for i := range 20000 {
		md := map[string]any{}
		for range rng.IntN(4) {
			k := keys[rng.IntN(len(keys))]
			v := values[rng.IntN(len(values))]
			if rng.IntN(2) == 0 {
				// The value of the field's own shape, mostly.
				v = map[string]any{"name": "n", "generation": int64(1), "creationTimestamp": "2026-01-01T00:00:00Z", "labels": map[string]any{"a": "b"},
					"finalizers": []any{"f"}, "ownerReferences": []any{map[string]any{"uid": "u"}}}[k]
			}
			md[k] = v
		}
		obj := map[string]any{"apiVersion": "example.com/v1", "kind": "Thing", "metadata": md}
		b, _ := json.Marshal(md)
		want := json.Unmarshal(b, &metav1.ObjectMeta{})
		got := checkTypeMeta(res, obj)
		if (want == nil) != (got == nil) || (want != nil && !strings.Contains(got.Error(), want.Error())) {
			t.Fatalf("metadata %d %v: decoding says %v, checkTypeMeta %v", i, md, want, got)
		}
		if plainObjectMeta(md) {
			plain++
		}
	}
	t.Logf("%d of 20000 accepted without decoding", plain)
	if plain < 2000 {
		t.Fatalf("only %d of 20000 accepted without decoding", plain)
	}
}
