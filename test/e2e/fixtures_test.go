package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The test resources. Widgets are namespaced and carry a schema that uses
// every validation keyword the suite checks; gadgets are cluster-scoped.
const (
	testGroup   = "e2e.setpoint.dev"
	testVersion = "v1"
	widgetsCRD  = "widgets." + testGroup
	gadgetsCRD  = "gadgets." + testGroup
	// holdFinalizer is a finalizer no controller removes.
	holdFinalizer = testGroup + "/hold"
)

var (
	widgetsGVR = schema.GroupVersionResource{Group: testGroup, Version: testVersion, Resource: "widgets"}
	gadgetsGVR = schema.GroupVersionResource{Group: testGroup, Version: testVersion, Resource: "gadgets"}
)

// clients are the client-go clients of one server.
type clients struct {
	core    kubernetes.Interface
	apiext  apiextclient.Interface
	dynamic dynamic.Interface
}

// newClients builds the clients for s's current process.
func newClients(t testing.TB, s *server) *clients {
	t.Helper()
	cfg := s.restConfig()
	// client-go's typed clients send protobuf bodies unless told otherwise;
	// TestTypedClientDefaultProtobuf covers that, the rest of the suite
	// speaks JSON.
	cfg.ContentType = "application/json"
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("core clientset: %v", err)
	}
	ext, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("apiextensions clientset: %v", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	return &clients{core: core, apiext: ext, dynamic: dyn}
}

// widgets returns the dynamic client of widgets in namespace ns.
func (c *clients) widgets(ns string) dynamic.ResourceInterface {
	return c.dynamic.Resource(widgetsGVR).Namespace(ns)
}

// widgetCRD is the namespaced test CRD: a spec with required, enum, pattern,
// minimum/maximum, maxItems and defaults; a status subresource; printer
// columns.
func widgetCRD() *apiextv1.CustomResourceDefinition {
	str := func(extra func(*apiextv1.JSONSchemaProps)) apiextv1.JSONSchemaProps {
		p := apiextv1.JSONSchemaProps{Type: "string"}
		if extra != nil {
			extra(&p)
		}
		return p
	}
	spec := apiextv1.JSONSchemaProps{
		Type:     "object",
		Required: []string{"size", "color"},
		Properties: map[string]apiextv1.JSONSchemaProps{
			"size": {Type: "integer", Minimum: ptr.To(1.0), Maximum: ptr.To(10.0)},
			"color": str(func(p *apiextv1.JSONSchemaProps) {
				p.Enum = []apiextv1.JSON{{Raw: []byte(`"red"`)}, {Raw: []byte(`"green"`)}, {Raw: []byte(`"blue"`)}}
			}),
			"code":     str(func(p *apiextv1.JSONSchemaProps) { p.Pattern = `^[a-z]+-[0-9]+$` }),
			"mode":     str(func(p *apiextv1.JSONSchemaProps) { p.Default = &apiextv1.JSON{Raw: []byte(`"auto"`)} }),
			"replicas": {Type: "integer", Default: &apiextv1.JSON{Raw: []byte(`1`)}},
			"note":     str(func(p *apiextv1.JSONSchemaProps) { p.MaxLength = ptr.To[int64](4096) }),
			"tags":     {Type: "array", MaxItems: ptr.To[int64](3), Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &apiextv1.JSONSchemaProps{Type: "string"}}},
		},
	}
	status := apiextv1.JSONSchemaProps{
		Type: "object",
		Properties: map[string]apiextv1.JSONSchemaProps{
			"phase":              {Type: "string"},
			"observedGeneration": {Type: "integer"},
		},
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: widgetsCRD},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: testGroup,
			Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{
				Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList",
				ShortNames: []string{"wd"}, Categories: []string{"e2e"},
			},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: testVersion, Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type:       "object",
					Required:   []string{"spec"},
					Properties: map[string]apiextv1.JSONSchemaProps{"spec": spec, "status": status},
				}},
				Subresources: &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: []apiextv1.CustomResourceColumnDefinition{
					{Name: "Color", Type: "string", JSONPath: ".spec.color"},
					{Name: "Size", Type: "integer", JSONPath: ".spec.size"},
					{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
					{Name: "Mode", Type: "string", JSONPath: ".spec.mode", Priority: 1},
				},
			}},
		},
	}
}

// gadgetCRD is the cluster-scoped test CRD, without subresources.
func gadgetCRD() *apiextv1.CustomResourceDefinition {
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: gadgetsCRD},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: testGroup,
			Scope: apiextv1.ClusterScoped,
			Names: apiextv1.CustomResourceDefinitionNames{
				Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList",
			},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: testVersion, Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextv1.JSONSchemaProps{
							"owner": {Type: "string"},
						}},
					},
				}},
			}},
		},
	}
}

// installCRD creates crd and waits until it is Established.
func installCRD(t testing.TB, c *clients, crd *apiextv1.CustomResourceDefinition) *apiextv1.CustomResourceDefinition {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	created, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create CRD %s: %v", crd.Name, err)
	}
	return waitEstablished(t, c, created)
}

// waitEstablished watches crd, from the version given, until its
// Established condition is True.
func waitEstablished(t testing.TB, c *clients, crd *apiextv1.CustomResourceDefinition) *apiextv1.CustomResourceDefinition {
	t.Helper()
	if established(crd) {
		return crd
	}
	ctx := testContext(t, 30*time.Second)
	w, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", crd.Name).String(),
		ResourceVersion: crd.ResourceVersion,
	})
	if err != nil {
		t.Fatalf("watch CRD %s: %v", crd.Name, err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		got, ok := ev.Object.(*apiextv1.CustomResourceDefinition)
		if !ok {
			t.Fatalf("watch CRD %s: unexpected %s event %#v", crd.Name, ev.Type, ev.Object)
		}
		if ev.Type == watch.Deleted {
			t.Fatalf("CRD %s was deleted while waiting for Established", crd.Name)
		}
		if established(got) {
			return got
		}
	}
	t.Fatalf("CRD %s: watch ended before the Established condition was True (%v)", crd.Name, ctx.Err())
	return nil
}

// established reports whether crd's Established condition is True.
func established(crd *apiextv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextv1.Established {
			return c.Status == apiextv1.ConditionTrue
		}
	}
	return false
}

// createNamespace creates a namespace called name.
func createNamespace(t testing.TB, c *clients, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.core.CoreV1().Namespaces().Create(testContext(t, 10*time.Second), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// widget builds a Widget called name (or with generateName when name ends
// with "-") in namespace ns.
func widget(ns, name string, labels map[string]string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": testGroup + "/" + testVersion,
		"kind":       "Widget",
		"spec":       spec,
	}}
	u.SetNamespace(ns)
	if len(name) > 0 && name[len(name)-1] == '-' {
		u.SetGenerateName(name)
	} else {
		u.SetName(name)
	}
	if labels != nil {
		u.SetLabels(labels)
	}
	return u
}

// validSpec is a widget spec that passes the schema.
func validSpec() map[string]any {
	return map[string]any{"size": int64(3), "color": "red", "code": "abc-1"}
}

// mustCreate creates obj with cl and fails the test on error.
func mustCreate(t testing.TB, ctx context.Context, cl dynamic.ResourceInterface, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	got, err := cl.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s%s: %v", obj.GetName(), obj.GetGenerateName(), err)
	}
	return got
}

// mustGet reads name with cl and fails the test on error.
func mustGet(t testing.TB, ctx context.Context, cl dynamic.ResourceInterface, name string) *unstructured.Unstructured {
	t.Helper()
	got, err := cl.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return got
}

// wantNotFound fails the test unless name is absent.
func wantNotFound(t testing.TB, ctx context.Context, cl dynamic.ResourceInterface, name string) {
	t.Helper()
	got, err := cl.Get(ctx, name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("get %s: want NotFound, got %v (object %v)", name, err, got)
	}
}

// nested reads a field of u, failing the test when its type differs from T.
func nested[T any](t testing.TB, u *unstructured.Unstructured, path ...string) T {
	t.Helper()
	var zero T
	v, ok, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s: field %v missing (%v) in %v", u.GetName(), path, err, u.Object)
	}
	got, ok := v.(T)
	if !ok {
		t.Fatalf("%s: field %v is %T %v, want %T", u.GetName(), path, v, v, zero)
	}
	return got
}

// names returns the names of items, in order.
func names(items []unstructured.Unstructured) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.GetName())
	}
	return out
}

// waitForObject gets name with cl and, unless cond holds, watches it from
// there until cond holds. The object must not be deleted meanwhile.
func waitForObject(t testing.TB, cl dynamic.ResourceInterface, name string, cond func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	got := mustGet(t, ctx, cl, name)
	if cond(got) {
		return got
	}
	w, err := cl.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
		ResourceVersion: got.GetResourceVersion(),
	})
	if err != nil {
		t.Fatalf("watch %s: %v", name, err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || ev.Type == watch.Error {
			t.Fatalf("watch %s: %s event %v", name, ev.Type, ev.Object)
		}
		if ev.Type == watch.Deleted {
			t.Fatalf("%s was deleted while waiting for a condition", name)
		}
		if cond(u) {
			return u
		}
	}
	t.Fatalf("watch of %s ended before the condition held (%v)", name, ctx.Err())
	return nil
}
