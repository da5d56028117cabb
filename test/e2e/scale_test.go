package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/utils/ptr"
)

// scalableWidgetCRD is widgetCRD with the scale subresource on
// spec.replicas, status.replicas and status.selector.
func scalableWidgetCRD() *apiextv1.CustomResourceDefinition {
	crd := widgetCRD()
	v := &crd.Spec.Versions[0]
	st := v.Schema.OpenAPIV3Schema.Properties["status"]
	st.Properties["replicas"] = apiextv1.JSONSchemaProps{Type: "integer"}
	st.Properties["selector"] = apiextv1.JSONSchemaProps{Type: "string"}
	v.Schema.OpenAPIV3Schema.Properties["status"] = st
	v.Subresources.Scale = &apiextv1.CustomResourceSubresourceScale{
		SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas", LabelSelectorPath: ptr.To(".status.selector"),
	}
	return crd
}

// TestScaleSubresource reads and writes a custom resource's scale with
// client-go's scale client (which finds it through discovery) and with
// kubectl scale.
func TestScaleSubresource(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	installCRD(t, c, scalableWidgetCRD())
	createNamespace(t, c, "sc")
	cl := c.widgets("sc")
	spec := validSpec()
	spec["replicas"] = int64(2)
	w := mustCreate(t, ctx, cl, widget("sc", "w", nil, spec))
	unstructured.SetNestedField(w.Object, int64(2), "status", "replicas")
	unstructured.SetNestedField(w.Object, "app=w", "status", "selector")
	if _, err := cl.UpdateStatus(ctx, w, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Discovery lists widgets/scale as autoscaling/v1 Scale.
	rl, err := c.core.Discovery().ServerResourcesForGroupVersion(testGroup + "/" + testVersion)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rl.APIResources, func(r metav1.APIResource) bool { return r.Name == "widgets/scale" })
	if i < 0 {
		t.Fatalf("discovery lacks widgets/scale: %+v", rl.APIResources)
	}
	if r := rl.APIResources[i]; r.Group != "autoscaling" || r.Version != "v1" || r.Kind != "Scale" || !r.Namespaced || !slices.Equal(r.Verbs, []string{"get", "patch", "update"}) {
		t.Errorf("widgets/scale in discovery: %+v", r)
	}

	// So does aggregated discovery, which client-go prefers.
	_, all, err := c.core.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range all {
		for _, r := range l.APIResources {
			if l.GroupVersion == testGroup+"/"+testVersion && r.Name == "widgets/scale" {
				found = r.Group == "autoscaling" && r.Version == "v1" && r.Kind == "Scale"
			}
		}
	}
	if !found {
		t.Errorf("aggregated discovery lacks widgets/scale as autoscaling/v1 Scale")
	}

	cfg := s.restConfig()
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	sg, err := scale.NewForConfig(cfg, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(dc))
	if err != nil {
		t.Fatal(err)
	}
	scales := sg.Scales("sc")
	gr := widgetsGVR.GroupResource()
	got, err := scales.Get(ctx, gr, "w", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	if got.Spec.Replicas != 2 || got.Status.Replicas != 2 || got.Status.Selector != "app=w" || got.Name != "w" || got.UID != w.GetUID() {
		t.Errorf("scale %+v", got)
	}
	got.Spec.Replicas = 4
	upd, err := scales.Update(ctx, gr, got, metav1.UpdateOptions{})
	if err != nil || upd.Spec.Replicas != 4 {
		t.Fatalf("update scale: %v %+v", err, upd)
	}
	if n := nested[int64](t, mustGet(t, ctx, cl, "w"), "spec", "replicas"); n != 4 {
		t.Errorf("spec.replicas after scale update: %d, want 4", n)
	}
	// The Scale's resourceVersion is a precondition.
	if _, err := scales.Update(ctx, gr, got, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("update with a stale resourceVersion: %v, want 409 Conflict", err)
	}
	got = upd.DeepCopy()
	got.Spec.Replicas = -1
	if _, err := scales.Update(ctx, gr, got, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !hasCause(err, "spec.replicas") {
		t.Errorf("negative replicas: %v, want 422 on spec.replicas", err)
	}
	if p, err := scales.Patch(ctx, widgetsGVR, "w", types.MergePatchType, []byte(`{"spec":{"replicas":6}}`), metav1.PatchOptions{}); err != nil || p.Spec.Replicas != 6 {
		t.Fatalf("patch scale: %v %+v", err, p)
	}
	// A scale client sending protobuf (as Kubernetes' controllers do, with
	// JSON accepted back).
	pcfg := s.restConfig()
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	psg, err := scale.NewForConfig(pcfg, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(dc))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := psg.Scales("sc").Get(ctx, gr, "w", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale (protobuf client): %v", err)
	}
	cur.Spec.Replicas = 5
	if p, err := psg.Scales("sc").Update(ctx, gr, cur, metav1.UpdateOptions{}); err != nil || p.Spec.Replicas != 5 {
		t.Fatalf("update scale with a protobuf body: %v %+v", err, p)
	}
	if _, err := scales.Get(ctx, gr, "missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("scale of a missing object: %v, want 404", err)
	}

	k := newKubectl(t, s)
	out := k.run(t, "scale", "widgets/w", "-n", "sc", "--replicas", "3")
	if !strings.Contains(out, "widget."+testGroup+"/w scaled") {
		t.Errorf("kubectl scale printed %q", out)
	}
	if n := nested[int64](t, mustGet(t, ctx, cl, "w"), "spec", "replicas"); n != 3 {
		t.Errorf("spec.replicas after kubectl scale: %d, want 3", n)
	}
	rv := mustGet(t, ctx, cl, "w").GetResourceVersion()
	k.run(t, "scale", "widget", "w", "-n", "sc", "--current-replicas", "3", "--replicas", "1", "--resource-version", rv)
	if n := nested[int64](t, mustGet(t, ctx, cl, "w"), "spec", "replicas"); n != 1 {
		t.Errorf("spec.replicas after kubectl scale --current-replicas: %d, want 1", n)
	}
	if errOut := k.fail(t, "scale", "widget", "w", "-n", "sc", "--current-replicas", "3", "--replicas", "2"); !strings.Contains(errOut, "Expected replicas to be 3, was 1") {
		t.Errorf("kubectl scale with a wrong --current-replicas: %q", errOut)
	}

	// Widgets without a scale subresource answer 404 on /scale.
	raw := c.core.Discovery().RESTClient().Get().AbsPath("/apis/" + testGroup + "/" + testVersion + "/namespaces/sc/widgets/w/nothing").Do(ctx)
	if err := raw.Error(); !apierrors.IsNotFound(err) {
		t.Errorf("unknown subresource: %v, want 404", err)
	}
	var sc autoscalingv1.Scale
	if err := c.core.Discovery().RESTClient().Get().AbsPath("/apis/" + testGroup + "/" + testVersion + "/namespaces/sc/widgets/w/scale").Do(ctx).Into(&sc); err != nil || sc.Spec.Replicas != 1 {
		t.Errorf("raw GET scale: %v %+v", err, sc)
	}
}

// TestScaleSubresourceValidation creates CRDs with bad scale paths: each
// answers 422 Invalid on Kubernetes' field.
func TestScaleSubresourceValidation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	p := "spec.versions[0].subresources.scale."
	for _, tc := range []struct {
		sc         apiextv1.CustomResourceSubresourceScale
		field, msg string
	}{
		{apiextv1.CustomResourceSubresourceScale{StatusReplicasPath: ".status.replicas"}, p + "specReplicasPath", "Required value"},
		{apiextv1.CustomResourceSubresourceScale{SpecReplicasPath: ".status.replicas", StatusReplicasPath: ".status.replicas"}, p + "specReplicasPath", "should be a json path under .spec"},
		{apiextv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.replicas", StatusReplicasPath: "status.replicas"}, p + "statusReplicasPath", "must be a simple json path starting with ."},
		{apiextv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas", LabelSelectorPath: ptr.To(".metadata.labels")}, p + "labelSelectorPath", "should be a json path under either .spec or .status"},
	} {
		crd := widgetCRD()
		crd.Spec.Versions[0].Subresources.Scale = &tc.sc
		_, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !hasCause(err, tc.field) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("scale %+v: %v, want 422 on %s with %q", tc.sc, err, tc.field, tc.msg)
		}
	}
}
