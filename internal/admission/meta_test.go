package admission

import (
	"strings"
	"testing"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func widget(mutate func(u *unstructured.Unstructured)) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget"}}
	u.SetName("w1")
	u.SetNamespace("default")
	if mutate != nil {
		mutate(u)
	}
	return u
}

func TestValidateObjectMeta(t *testing.T) {
	cases := []struct {
		name   string
		obj    *unstructured.Unstructured
		scoped bool
		field  string
		typ    field.ErrorType
	}{
		{"valid", widget(nil), true, "", ""},
		{"badName", widget(func(u *unstructured.Unstructured) { u.SetName("Bad_Name") }), true, "metadata.name", field.ErrorTypeInvalid},
		{"noName", widget(func(u *unstructured.Unstructured) { u.SetName("") }), true, "metadata.name", field.ErrorTypeRequired},
		{"generateName", widget(func(u *unstructured.Unstructured) { u.SetName(""); u.SetGenerateName("w-") }), true, "", ""},
		{"badGenerateName", widget(func(u *unstructured.Unstructured) { u.SetName(""); u.SetGenerateName("W_") }), true, "metadata.generateName", field.ErrorTypeInvalid},
		{"namespaceMissing", widget(func(u *unstructured.Unstructured) { u.SetNamespace("") }), true, "metadata.namespace", field.ErrorTypeRequired},
		{"namespaceOnClusterScoped", widget(nil), false, "metadata.namespace", field.ErrorTypeForbidden},
		{"badLabel", widget(func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"a b": "x"}) }), true, "metadata.labels", field.ErrorTypeInvalid},
		{"annotationsTooLarge", widget(func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{"a": strings.Repeat("x", 256*1024)})
		}), true, "metadata.annotations", field.ErrorTypeTooLong},
		{"badFinalizer", widget(func(u *unstructured.Unstructured) { u.SetFinalizers([]string{"no/slash/twice"}) }), true, "metadata.finalizers", field.ErrorTypeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateObjectMeta(tc.obj, tc.scoped)
			checkOne(t, errs, tc.field, tc.typ)
		})
	}
}

func TestValidateNamespaceName(t *testing.T) {
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace"}}
	ns.SetName("a.b")
	errs := ValidateObjectMetaWithName(ns, false, apivalidation.NameIsDNSLabel)
	checkOne(t, errs, "metadata.name", field.ErrorTypeInvalid)
}

func TestValidateObjectMetaUpdate(t *testing.T) {
	old := widget(func(u *unstructured.Unstructured) {
		u.SetUID("u1")
		u.SetResourceVersion("7")
		u.SetCreationTimestamp(metav1.Unix(100, 0))
		u.SetFinalizers([]string{"example.com/a"})
	})
	deleting := old.DeepCopy()
	now := metav1.Unix(200, 0)
	deleting.SetDeletionTimestamp(&now)
	cases := []struct {
		name   string
		old    *unstructured.Unstructured
		mutate func(u *unstructured.Unstructured)
		field  string
		typ    field.ErrorType
	}{
		{"unchanged", old, func(*unstructured.Unstructured) {}, "", ""},
		{"name", old, func(u *unstructured.Unstructured) { u.SetName("w2") }, "metadata.name", field.ErrorTypeInvalid},
		{"namespace", old, func(u *unstructured.Unstructured) { u.SetNamespace("other") }, "metadata.namespace", field.ErrorTypeInvalid},
		{"uid", old, func(u *unstructured.Unstructured) { u.SetUID("u2") }, "metadata.uid", field.ErrorTypeInvalid},
		{"creationTimestamp", old, func(u *unstructured.Unstructured) { u.SetCreationTimestamp(metav1.Unix(1, 0)) }, "metadata.creationTimestamp", field.ErrorTypeInvalid},
		{"finalizerWhileDeleting", deleting, func(u *unstructured.Unstructured) {
			u.SetFinalizers([]string{"example.com/a", "example.com/b"})
		}, "metadata.finalizers", field.ErrorTypeForbidden},
		{"removeFinalizerWhileDeleting", deleting, func(u *unstructured.Unstructured) { u.SetFinalizers(nil) }, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.old.DeepCopy()
			tc.mutate(obj)
			checkOne(t, ValidateObjectMetaUpdate(obj, tc.old), tc.field, tc.typ)
		})
	}
}

// checkOne asserts that errs is empty (wantField "") or holds exactly one
// error of type typ at wantField.
func checkOne(t *testing.T, errs field.ErrorList, wantField string, typ field.ErrorType) {
	t.Helper()
	if wantField == "" {
		if len(errs) > 0 {
			t.Fatalf("errors %v, want none", errs)
		}
		return
	}
	if len(errs) != 1 {
		t.Fatalf("errors %v, want exactly one %s at %s", errs, typ, wantField)
	}
	if errs[0].Field != wantField || errs[0].Type != typ {
		t.Fatalf("error %v, want %s at %s", errs[0], typ, wantField)
	}
}
