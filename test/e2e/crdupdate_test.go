package e2e

import (
	"slices"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// TestCRDUpdate changes a CRD that already has objects: a new required
// field and printer column take effect at once, and a second served version
// serves the stored objects.
func TestCRDUpdate(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	crd := installCRD(t, c, widgetCRD())
	createNamespace(t, c, "evolve")
	wc := c.widgets("evolve")
	old := mustCreate(t, ctx, wc, widget("evolve", "old", nil, map[string]any{"size": int64(2), "color": "red"}))

	v1 := &crd.Spec.Versions[0]
	spec := v1.Schema.OpenAPIV3Schema.Properties["spec"]
	spec.Required = append(spec.Required, "code")
	v1.Schema.OpenAPIV3Schema.Properties["spec"] = spec
	v1.AdditionalPrinterColumns = append(v1.AdditionalPrinterColumns, apiextv1.CustomResourceColumnDefinition{Name: "Code", Type: "string", JSONPath: ".spec.code"})
	v2 := *v1.DeepCopy()
	v2.Name, v2.Storage = "v2", false
	crd.Spec.Versions = append(crd.Spec.Versions, v2)
	updated, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update CRD: %v", err)
	}
	if updated.Generation != crd.Generation+1 {
		t.Errorf("CRD generation %d after a spec change, was %d", updated.Generation, crd.Generation)
	}
	if !slices.Contains(updated.Status.StoredVersions, "v1") {
		t.Errorf("CRD storedVersions %v, want v1", updated.Status.StoredVersions)
	}

	t.Run("NewRequiredField", func(t *testing.T) {
		_, err := wc.Create(ctx, widget("evolve", "nocode", nil, map[string]any{"size": int64(2), "color": "red"}), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !hasCause(err, "spec.code") {
			t.Errorf("create without the newly required spec.code: want Invalid with a spec.code cause, got %v", err)
		}
		mustCreate(t, ctx, wc, widget("evolve", "withcode", nil, validSpec()))
		// The stored object, valid under the old schema, still reads.
		if got := mustGet(t, ctx, wc, "old"); got.GetResourceVersion() != old.GetResourceVersion() {
			t.Errorf("old object changed: rv %s -> %s", old.GetResourceVersion(), got.GetResourceVersion())
		}
	})

	t.Run("NewPrinterColumn", func(t *testing.T) {
		mustCreate(t, ctx, wc, widget("evolve", "printed", nil, validSpec()))
		tbl := fetchTable(t, ctx, tableClient(t, s), tableAccept, "evolve", "printed")
		col := slices.IndexFunc(tbl.ColumnDefinitions, func(c metav1.TableColumnDefinition) bool { return c.Name == "Code" })
		if col < 0 || len(tbl.Rows) != 1 || tbl.Rows[0].Cells[col] != "abc-1" {
			t.Errorf("Table after adding column Code: columns %+v rows %+v", tbl.ColumnDefinitions, tbl.Rows)
		}
	})

	t.Run("SecondVersion", func(t *testing.T) {
		dc, err := discovery.NewDiscoveryClientForConfig(s.restConfig())
		if err != nil {
			t.Fatal(err)
		}
		rl, err := dc.ServerResourcesForGroupVersion(testGroup + "/v2")
		if err != nil || !slices.ContainsFunc(rl.APIResources, func(r metav1.APIResource) bool { return r.Name == "widgets" }) {
			t.Fatalf("discovery of %s/v2: %+v, %v", testGroup, rl, err)
		}
		v2c := c.dynamic.Resource(schema.GroupVersionResource{Group: testGroup, Version: "v2", Resource: "widgets"}).Namespace("evolve")
		got, err := v2c.Get(ctx, "old", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get through v2: %v", err)
		}
		if got.GetAPIVersion() != testGroup+"/v2" || got.GetUID() != old.GetUID() || nested[int64](t, got, "spec", "size") != 2 {
			t.Errorf("object read through v2: apiVersion %s uid %s spec %v", got.GetAPIVersion(), got.GetUID(), got.Object["spec"])
		}
		list, err := v2c.List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) == 0 {
			t.Errorf("list through v2: %v, %v", names(list.Items), err)
		}
	})

	// Last, since a wrongly accepted change would break the cases above;
	// StorageGone last of all, since the others reuse the same version.
	t.Run("ImmutableFields", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			mutate func(*apiextv1.CustomResourceDefinition)
		}{
			{"Scope", func(crd *apiextv1.CustomResourceDefinition) { crd.Spec.Scope = apiextv1.ClusterScoped }},
			{"Group", func(crd *apiextv1.CustomResourceDefinition) { crd.Spec.Group = "other.setpoint.dev" }},
			// v1 is in status.storedVersions: it may not leave spec.versions.
			{"StorageGone", func(crd *apiextv1.CustomResourceDefinition) {
				crd.Spec.Versions = crd.Spec.Versions[1:]
				crd.Spec.Versions[0].Storage = true
			}},
		} {
			crd := updated.DeepCopy()
			tc.mutate(crd)
			if _, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
				t.Errorf("%s: CRD update: want Invalid, got %v", tc.name, err)
			}
		}
	})
}
