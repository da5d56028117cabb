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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

// multiVersionCRD is widgetCRD served as v1alpha1 (not served), v1beta1
// (deprecated, Kubernetes' default warning), v1 (storage) and v2
// (deprecated with its own warning), all with conversion None.
func multiVersionCRD() *apiextv1.CustomResourceDefinition {
	crd := widgetCRD()
	v1 := crd.Spec.Versions[0]
	alpha, beta, v2 := *v1.DeepCopy(), *v1.DeepCopy(), *v1.DeepCopy()
	alpha.Name, alpha.Served, alpha.Storage = "v1alpha1", false, false
	beta.Name, beta.Storage, beta.Deprecated = "v1beta1", false, true
	v2.Name, v2.Storage, v2.Deprecated, v2.DeprecationWarning = "v2", false, true, ptr.To("v2 is going away")
	crd.Spec.Versions = []apiextv1.CustomResourceDefinitionVersion{alpha, beta, v1, v2}
	return crd
}

// TestMultipleVersions writes and reads one custom resource through
// several served versions of its CRD (conversion None: only apiVersion
// differs), checks status.storedVersions, that an unserved version is not
// served, and the deprecation warnings, with client-go and kubectl.
func TestMultipleVersions(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	crd := installCRD(t, c, multiVersionCRD())
	if !slices.Equal(crd.Status.StoredVersions, []string{"v1"}) {
		t.Errorf("storedVersions %v, want [v1]", crd.Status.StoredVersions)
	}
	createNamespace(t, c, "mv")
	rec := &warningRecorder{}
	cfg := s.restConfig()
	cfg.WarningHandler = rec
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gvr := func(v string) dynamic.ResourceInterface {
		return dyn.Resource(schema.GroupVersionResource{Group: testGroup, Version: v, Resource: "widgets"}).Namespace("mv")
	}
	v1, beta, v2 := gvr("v1"), gvr("v1beta1"), gvr("v2")
	betaWarning := testGroup + "/v1beta1 Widget is deprecated; use " + testGroup + "/v1 Widget"
	wantWarnings := func(what string, want ...string) {
		t.Helper()
		if got := rec.all(); !slices.Equal(got, want) {
			t.Errorf("%s: warnings %q, want %q", what, got, want)
		}
		rec.reset()
	}

	created := mustCreate(t, ctx, v1, widget("mv", "a", nil, validSpec()))
	wantWarnings("create in v1")
	if created.GetAPIVersion() != testGroup+"/v1" {
		t.Errorf("created apiVersion %s", created.GetAPIVersion())
	}

	// Watch through v1beta1 from the creation on.
	w, err := beta.Watch(ctx, metav1.ListOptions{ResourceVersion: created.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	wantWarnings("watch v1beta1", betaWarning)

	got := mustGet(t, ctx, beta, "a")
	wantWarnings("get v1beta1", betaWarning)
	if got.GetAPIVersion() != testGroup+"/v1beta1" || got.GetUID() != created.GetUID() || nested[string](t, got, "spec", "color") != "red" {
		t.Errorf("get through v1beta1: %v", got.Object)
	}
	l, err := beta.List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 1 || l.GetAPIVersion() != testGroup+"/v1beta1" || l.Items[0].GetAPIVersion() != testGroup+"/v1beta1" {
		t.Fatalf("list through v1beta1: %v %+v", err, l)
	}
	rec.reset()
	patched, err := beta.Patch(ctx, "a", types.MergePatchType, []byte(`{"spec":{"color":"blue"}}`), metav1.PatchOptions{})
	if err != nil || patched.GetAPIVersion() != testGroup+"/v1beta1" {
		t.Fatalf("patch through v1beta1: %v %v", err, patched)
	}
	wantWarnings("patch v1beta1", betaWarning)
	if got := mustGet(t, ctx, v1, "a"); got.GetAPIVersion() != testGroup+"/v1" || nested[string](t, got, "spec", "color") != "blue" {
		t.Errorf("v1 after a v1beta1 patch: %v", got.Object)
	}
	wantWarnings("get v1")
	ev := nextEvent(t, w)
	if u, ok := ev.Object.(*unstructured.Unstructured); !ok || ev.Type != watch.Modified || u.GetAPIVersion() != testGroup+"/v1beta1" || u.GetName() != "a" {
		t.Errorf("v1beta1 watch event %s %v", ev.Type, ev.Object)
	}

	// Create through v2, read through v1.
	mustCreate(t, ctx, v2, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": testGroup + "/v2", "kind": "Widget", "metadata": map[string]any{"name": "b"}, "spec": validSpec(),
	}})
	wantWarnings("create v2", "v2 is going away")
	if got := mustGet(t, ctx, v1, "b"); got.GetAPIVersion() != testGroup+"/v1" {
		t.Errorf("v2 object through v1: %v", got.Object)
	}
	// The body's apiVersion must be the URL's.
	_, err = v1.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": testGroup + "/v1beta1", "kind": "Widget", "metadata": map[string]any{"name": "c"}, "spec": validSpec(),
	}}, metav1.CreateOptions{})
	if !apierrors.IsBadRequest(err) {
		t.Errorf("v1beta1 body posted to v1: %v, want 400", err)
	}
	rec.reset()

	// v1alpha1 is not served: 404, and absent from discovery.
	_, err = gvr("v1alpha1").Get(ctx, "a", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("get through unserved v1alpha1: %v, want 404", err)
	}
	if se, ok := err.(*apierrors.StatusError); ok && se.ErrStatus.Code != http.StatusNotFound {
		t.Errorf("unserved version code %d", se.ErrStatus.Code)
	}
	wantWarnings("unserved v1alpha1")
	groups, err := c.core.Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups {
		if g.Name != testGroup {
			continue
		}
		var vs []string
		for _, v := range g.Versions {
			vs = append(vs, v.Version)
		}
		// Kubernetes orders versions by kube-aware version priority.
		if !slices.Equal(vs, []string{"v2", "v1", "v1beta1"}) || g.PreferredVersion.Version != "v2" {
			t.Errorf("discovery of %s: versions %v preferred %s, want [v2 v1 v1beta1] preferred v2", testGroup, vs, g.PreferredVersion.Version)
		}
	}

	// Moving the storage version to v1beta1 adds it to storedVersions.
	crd, err = c.apiext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, widgetsCRD, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crd.Spec.Versions[1].Storage, crd.Spec.Versions[2].Storage = true, false
	crd, err = c.apiext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(crd.Status.StoredVersions, []string{"v1", "v1beta1"}) {
		t.Errorf("storedVersions after moving storage: %v, want [v1 v1beta1]", crd.Status.StoredVersions)
	}
	// Objects stored in v1 and in v1beta1 read the same through both.
	mustCreate(t, ctx, v1, widget("mv", "d", nil, validSpec()))
	for _, cl := range []dynamic.ResourceInterface{v1, beta} {
		l, err := cl.List(ctx, metav1.ListOptions{})
		if err != nil || !slices.Equal(names(l.Items), []string{"a", "b", "d"}) {
			t.Errorf("list after moving storage: %v %v", err, l)
		}
	}

	// kubectl prints the warning on stderr.
	k := newKubectl(t, s)
	stdout, stderr, err := k.exec(t, nil, "get", "widgets.v1beta1."+testGroup, "-n", "mv", "-o", "name")
	if err != nil || !strings.Contains(stderr, "Warning: "+betaWarning) || !strings.Contains(stdout, "widget."+testGroup+"/a") {
		t.Errorf("kubectl get through v1beta1: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
}

// TestDeprecationWarningValidation: deprecationWarning is checked as
// Kubernetes checks it.
func TestDeprecationWarningValidation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	for _, tc := range []struct {
		deprecated bool
		warning    string
		msg        string
	}{
		{false, "x", "can only be set for deprecated versions"},
		{true, strings.Repeat("x", 257), "must be <= 256 characters long"},
		{true, "", "must not be an empty string"},
		{true, "a\tb", "must only contain printable UTF-8 characters; non-printable character found at index 1"},
	} {
		crd := widgetCRD()
		crd.Spec.Versions[0].Deprecated, crd.Spec.Versions[0].DeprecationWarning = tc.deprecated, ptr.To(tc.warning)
		_, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !hasCause(err, "spec.versions[0].deprecationWarning") || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("deprecationWarning %q (deprecated %v): %v, want 422 %q", tc.warning, tc.deprecated, err, tc.msg)
		}
	}
}
