package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// selectableWidgetCRD is widgetCRD with spec.color and spec.size as
// selectable fields.
func selectableWidgetCRD() *apiextv1.CustomResourceDefinition {
	crd := widgetCRD()
	crd.Spec.Versions[0].SelectableFields = []apiextv1.SelectableField{{JSONPath: ".spec.color"}, {JSONPath: ".spec.size"}}
	return crd
}

// TestSelectableFields filters lists, watches and deletecollection of a CRD
// on its selectableFields with client-go and kubectl.
func TestSelectableFields(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	installCRD(t, c, selectableWidgetCRD())
	createNamespace(t, c, "sel")
	cl := c.widgets("sel")
	for _, w := range []struct {
		name, color string
		size        int64
	}{{"a", "red", 3}, {"b", "blue", 5}, {"c", "red", 7}} {
		mustCreate(t, ctx, cl, widget("sel", w.name, nil, map[string]any{"color": w.color, "size": w.size}))
	}
	list := func(sel string) []string {
		t.Helper()
		l, err := cl.List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			t.Fatalf("list %s: %v", sel, err)
		}
		return names(l.Items)
	}
	for sel, want := range map[string][]string{
		"spec.color=red":                     {"a", "c"},
		"spec.color==red":                    {"a", "c"},
		"spec.color!=red":                    {"b"},
		"spec.size=5":                        {"b"},
		"spec.color=red,spec.size!=3":        {"c"},
		"spec.color=red,metadata.name=c":     {"c"},
		"spec.color=green":                   nil,
		"spec.color=red,metadata.name!=a":    {"c"},
		"metadata.namespace=sel,spec.size=7": {"c"},
	} {
		if got := list(sel); !slices.Equal(got, want) {
			t.Errorf("list %s: %v, want %v", sel, got, want)
		}
	}

	_, err := cl.List(ctx, metav1.ListOptions{FieldSelector: "spec.mode=auto"})
	if !apierrors.IsBadRequest(err) || err.Error() != "field label not supported: spec.mode" {
		t.Errorf("list on a field that is not selectable: %v, want 400 field label not supported: spec.mode", err)
	}
	_, err = cl.Watch(ctx, metav1.ListOptions{FieldSelector: "status.phase=x"})
	if !apierrors.IsBadRequest(err) {
		t.Errorf("watch on a field that is not selectable: %v, want 400", err)
	}

	// Watch: objects that start matching come as ADDED, those that stop as
	// DELETED.
	rv := mustGet(t, ctx, cl, "c").GetResourceVersion()
	w, err := cl.Watch(ctx, metav1.ListOptions{FieldSelector: "spec.color=red", ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	paint := func(name, color string) {
		t.Helper()
		if _, err := cl.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"color":"`+color+`"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatalf("paint %s %s: %v", name, color, err)
		}
	}
	expect := func(typ watch.EventType, name, color string) {
		t.Helper()
		ev := nextEvent(t, w)
		u, ok := ev.Object.(interface{ GetName() string })
		if !ok || ev.Type != typ || u.GetName() != name {
			t.Fatalf("event %s %v, want %s %s", ev.Type, ev.Object, typ, name)
		}
	}
	paint("b", "red")
	expect(watch.Added, "b", "red")
	paint("a", "green")
	expect(watch.Deleted, "a", "green")
	paint("a", "blue") // not matching before or after: not sent
	paint("c", "red")  // no change
	if _, err := cl.Patch(ctx, "c", types.MergePatchType, []byte(`{"metadata":{"labels":{"seen":"yes"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(watch.Modified, "c", "red")

	out := newKubectl(t, s).run(t, "get", "widgets", "-n", "sel", "--field-selector", "spec.color=red", "-o", "name")
	if got, want := lines(out), []string{"widget." + testGroup + "/b", "widget." + testGroup + "/c"}; !slices.Equal(got, want) {
		t.Errorf("kubectl get --field-selector: %q, want %q", got, want)
	}

	// A field made selectable by a CRD update can be used at once.
	crd, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, widgetsCRD, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crd.Spec.Versions[0].SelectableFields = append(crd.Spec.Versions[0].SelectableFields, apiextv1.SelectableField{JSONPath: ".spec.mode"})
	if _, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := list("spec.mode=auto"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("list spec.mode=auto after the CRD update: %v, want [a b c]", got)
	}

	if err := cl.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{FieldSelector: "spec.color=red"}); err != nil {
		t.Fatalf("deletecollection: %v", err)
	}
	if got := list(""); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after deletecollection of red widgets: %v, want [a]", got)
	}
}

// TestSelectableFieldsValidation creates CRDs with bad selectableFields:
// each answers 422 Invalid with Kubernetes' field and message.
func TestSelectableFieldsValidation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	f := "spec.versions[0].selectableFields"
	for _, tc := range []struct {
		paths      []string
		field, msg string
	}{
		{[]string{".spec.nope"}, f + "[0].jsonPath", "is an invalid path: does not refer to a valid field"},
		{[]string{".spec.tags"}, f + "[0].jsonPath", "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."},
		{[]string{".spec.tags[0]"}, f + "[0].jsonPath", "is an invalid path: array notation is not allowed"},
		{[]string{".spec.color", ".spec.color"}, f + "[1].jsonPath", `Duplicate value: ".spec.color"`},
		{[]string{".spec.color", ".spec.size", ".spec.code", ".spec.mode", ".spec.replicas", ".spec.note", ".status.phase", ".status.observedGeneration", ".spec.code"},
			f + "[8].jsonPath", "Duplicate value"},
		{[]string{".spec.color", ".spec.size", ".spec.code", ".spec.mode", ".spec.replicas", ".spec.note", ".status.phase", ".status.observedGeneration", ".spec"},
			f + "[8].jsonPath", "must point to a field of type string"},
	} {
		crd := widgetCRD()
		for _, p := range tc.paths {
			crd.Spec.Versions[0].SelectableFields = append(crd.Spec.Versions[0].SelectableFields, apiextv1.SelectableField{JSONPath: p})
		}
		_, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !hasCause(err, tc.field) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("selectableFields %v: %v, want 422 on %s with %q", tc.paths, err, tc.field, tc.msg)
		}
	}
	// Nine distinct valid fields are one too many.
	crd := widgetCRD()
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["extra"] = apiextv1.JSONSchemaProps{Type: "boolean"}
	for _, p := range []string{".spec.color", ".spec.size", ".spec.code", ".spec.mode", ".spec.replicas", ".spec.note", ".status.phase", ".status.observedGeneration", ".spec.extra"} {
		crd.Spec.Versions[0].SelectableFields = append(crd.Spec.Versions[0].SelectableFields, apiextv1.SelectableField{JSONPath: p})
	}
	_, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasCause(err, f) || !strings.Contains(err.Error(), "must have at most 8 items") {
		t.Errorf("nine selectable fields: %v, want 422 Too many", err)
	}
	if se, ok := err.(*apierrors.StatusError); !ok || se.ErrStatus.Code != http.StatusUnprocessableEntity {
		t.Errorf("nine selectable fields: %v, want code 422", err)
	}
}
