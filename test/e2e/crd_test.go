package e2e

import (
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
)

// TestCRDDiscoveryAndScopes installs a namespaced and a cluster-scoped CRD
// and checks that discovery, the REST mapper and both scopes serve them.
func TestCRDDiscoveryAndScopes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	wcrd := installCRD(t, c, widgetCRD())
	installCRD(t, c, gadgetCRD())

	if got := wcrd.Status.AcceptedNames; got.Kind != "Widget" || got.Plural != "widgets" {
		t.Errorf("widgets CRD acceptedNames %+v", got)
	}
	list, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list CRDs: %v", err)
	}
	var crdNames []string
	for _, crd := range list.Items {
		crdNames = append(crdNames, crd.Name)
	}
	if !slices.Contains(crdNames, widgetsCRD) || !slices.Contains(crdNames, gadgetsCRD) {
		t.Errorf("CRD list %v lacks %s or %s", crdNames, widgetsCRD, gadgetsCRD)
	}
	if _, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, widgetCRD(), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create of %s: want AlreadyExists, got %v", widgetsCRD, err)
	}

	dc, err := discovery.NewDiscoveryClientForConfig(s.restConfig())
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	t.Run("ServerVersion", func(t *testing.T) {
		v, err := dc.ServerVersion()
		if err != nil || v.GitVersion == "" {
			t.Errorf("server version %+v, err %v", v, err)
		}
	})
	t.Run("ResourceList", func(t *testing.T) {
		rl, err := dc.ServerResourcesForGroupVersion(testGroup + "/" + testVersion)
		if err != nil {
			t.Fatalf("resources of %s/%s: %v", testGroup, testVersion, err)
		}
		byName := map[string]metav1.APIResource{}
		for _, r := range rl.APIResources {
			byName[r.Name] = r
		}
		w, ok := byName["widgets"]
		if !ok {
			t.Fatalf("discovery of %s/%s has no widgets: %+v", testGroup, testVersion, rl.APIResources)
		}
		if w.Kind != "Widget" || !w.Namespaced || w.SingularName != "widget" || !slices.Equal(w.ShortNames, []string{"wd"}) || !slices.Contains(w.Categories, "e2e") {
			t.Errorf("widgets discovery entry %+v", w)
		}
		for _, verb := range []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"} {
			if !slices.Contains(w.Verbs, verb) {
				t.Errorf("widgets verbs %v lack %s", w.Verbs, verb)
			}
		}
		if st, ok := byName["widgets/status"]; !ok || st.Kind != "Widget" || !slices.Contains(st.Verbs, "update") {
			t.Errorf("widgets/status discovery entry %+v (present %v)", st, ok)
		}
		if g, ok := byName["gadgets"]; !ok || g.Namespaced || g.Kind != "Gadget" {
			t.Errorf("gadgets discovery entry %+v (present %v), want cluster-scoped kind Gadget", g, ok)
		}
		if _, ok := byName["gadgets/status"]; ok {
			t.Errorf("gadgets have no status subresource, discovery lists gadgets/status")
		}
	})
	t.Run("RESTMapper", func(t *testing.T) {
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
		m, err := mapper.RESTMapping(schema.GroupKind{Group: testGroup, Kind: "Widget"})
		if err != nil {
			t.Fatalf("map kind Widget: %v", err)
		}
		if m.Resource != widgetsGVR || m.Scope.Name() != meta.RESTScopeNameNamespace {
			t.Errorf("Widget maps to %v scope %s", m.Resource, m.Scope.Name())
		}
		m, err = mapper.RESTMapping(schema.GroupKind{Group: testGroup, Kind: "Gadget"}, testVersion)
		if err != nil {
			t.Fatalf("map kind Gadget: %v", err)
		}
		if m.Resource != gadgetsGVR || m.Scope.Name() != meta.RESTScopeNameRoot {
			t.Errorf("Gadget maps to %v scope %s", m.Resource, m.Scope.Name())
		}
		gvk, err := mapper.KindFor(schema.GroupVersionResource{Resource: "widget"})
		if err != nil || gvk != widgetsGVR.GroupVersion().WithKind("Widget") {
			t.Errorf("kind for resource widget: %v, %v", gvk, err)
		}
		expander := restmapper.NewShortcutExpander(mapper, dc, nil)
		gvr, err := expander.ResourceFor(schema.GroupVersionResource{Resource: "wd"})
		if err != nil || gvr != widgetsGVR {
			t.Errorf("short name wd resolves to %v, %v; want %v", gvr, err, widgetsGVR)
		}
		core, err := mapper.RESTMapping(schema.GroupKind{Kind: "Namespace"}, "v1")
		if err != nil || core.Resource.Resource != "namespaces" || core.Scope.Name() != meta.RESTScopeNameRoot {
			t.Errorf("core Namespace maps to %+v, %v", core, err)
		}
	})
	t.Run("ClusterScoped", func(t *testing.T) {
		gc := c.dynamic.Resource(gadgetsGVR)
		g := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": testGroup + "/" + testVersion, "kind": "Gadget",
			"metadata": map[string]any{"name": "g1"},
			"spec":     map[string]any{"owner": "e2e"},
		}}
		created := mustCreate(t, ctx, gc, g)
		if created.GetNamespace() != "" {
			t.Errorf("cluster-scoped gadget got namespace %q", created.GetNamespace())
		}
		got := mustGet(t, ctx, gc, "g1")
		if nested[string](t, got, "spec", "owner") != "e2e" {
			t.Errorf("gadget spec %v", got.Object["spec"])
		}
		gl, err := gc.List(ctx, metav1.ListOptions{})
		if err != nil || !slices.Equal(names(gl.Items), []string{"g1"}) {
			t.Errorf("list gadgets: %v, %v", names(gl.Items), err)
		}
		if _, err := gc.UpdateStatus(ctx, got, metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("status update of a CRD without the subresource: want NotFound, got %v", err)
		}
		if err := gc.Delete(ctx, "g1", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete gadget: %v", err)
		}
		wantNotFound(t, ctx, gc, "g1")
	})
	t.Run("MissingNamespace", func(t *testing.T) {
		_, err := c.widgets("nowhere").Create(ctx, widget("nowhere", "w", nil, validSpec()), metav1.CreateOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("create in a namespace that does not exist: want NotFound, got %v", err)
		}
	})
}

// TestDeleteCRDRemovesObjects deletes a CRD holding objects: the CRD goes
// away, discovery stops listing it and a CRD recreated with the same name
// starts empty.
func TestDeleteCRDRemovesObjects(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	createNamespace(t, c, "crd-delete")
	crd := installCRD(t, c, widgetCRD())
	wc := c.widgets("crd-delete")
	for range 3 {
		mustCreate(t, ctx, wc, widget("crd-delete", "doomed-", nil, validSpec()))
	}
	held := widget("crd-delete", "held", nil, validSpec())
	held.SetFinalizers([]string{holdFinalizer})
	mustCreate(t, ctx, wc, held)

	// Watchers of the custom resources, informers among them, learn of each
	// deletion.
	before, err := wc.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	objWatch, err := c.dynamic.Resource(widgetsGVR).Watch(ctx, metav1.ListOptions{ResourceVersion: before.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer objWatch.Stop()

	crds := c.apiext.ApiextensionsV1().CustomResourceDefinitions()
	w, err := crds.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", widgetsCRD).String(),
		ResourceVersion: crd.ResourceVersion,
	})
	if err != nil {
		t.Fatalf("watch CRD: %v", err)
	}
	defer w.Stop()
	if err := crds.Delete(ctx, widgetsCRD, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete CRD: %v", err)
	}
	// A custom resource's finalizer keeps the CRD terminating; releasing it
	// lets the deletion finish.
	releaseHeld(t, c, "crd-delete")
	waitDeleted(t, w, widgetsCRD)

	if _, err := crds.Get(ctx, widgetsCRD, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get deleted CRD: want NotFound, got %v", err)
	}
	pending := map[string]bool{}
	for _, it := range before.Items {
		pending[it.GetName()] = true
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for open := true; open && len(pending) > 0; {
		select {
		case ev, ok := <-objWatch.ResultChan():
			open = ok
			if u, isObj := ev.Object.(*unstructured.Unstructured); ok && isObj && ev.Type == watch.Deleted {
				delete(pending, u.GetName())
			}
		case <-timeout.C:
			open = false
		}
	}
	if len(pending) > 0 {
		t.Errorf("a watcher of widgets got no DELETED event for %v when the CRD was deleted", pending)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	if rl, err := dc.ServerResourcesForGroupVersion(testGroup + "/" + testVersion); err == nil {
		for _, r := range rl.APIResources {
			if r.Name == "widgets" {
				t.Errorf("discovery still lists widgets after the CRD was deleted")
			}
		}
	} else if !apierrors.IsNotFound(err) {
		t.Errorf("discovery of the deleted group: want NotFound or a list without widgets, got %v", err)
	}
	if _, err := wc.List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("list widgets after the CRD was deleted: want NotFound, got %v", err)
	}

	installCRD(t, c, widgetCRD())
	list, err := wc.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list widgets of the recreated CRD: %v", err)
	}
	if len(list.Items) != 0 {
		t.Errorf("the recreated CRD has the old objects: %v", names(list.Items))
	}
}

// releaseHeld waits until the deletion of the CRD or namespace reaches
// widget "held" in ns, then removes its finalizer.
func releaseHeld(t *testing.T, c *clients, ns string) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	wc := c.widgets(ns)
	got := waitForObject(t, wc, "held", func(u *unstructured.Unstructured) bool { return u.GetDeletionTimestamp() != nil })
	got.SetFinalizers(nil)
	if _, err := wc.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("release held: %v", err)
	}
}

// waitDeleted reads w until it reports the deletion of name.
func waitDeleted(t *testing.T, w watch.Interface, name string) {
	t.Helper()
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			t.Fatalf("watch for the deletion of %s: error event %v", name, ev.Object)
		}
		if m, err := meta.Accessor(ev.Object); err == nil && ev.Type == watch.Deleted && m.GetName() == name {
			return
		}
	}
	t.Fatalf("watch ended before %s was deleted", name)
}

// TestNamespaces creates and deletes namespaces: deleting one removes the
// objects in it and only them.
func TestNamespaces(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	installCRD(t, c, widgetCRD())
	nsc := c.core.CoreV1().Namespaces()

	created, err := nsc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed", Labels: map[string]string{"e2e": "yes"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	if created.Status.Phase != corev1.NamespaceActive {
		t.Errorf("new namespace phase %q, want Active", created.Status.Phase)
	}
	createNamespace(t, c, "survivor")
	if _, err := nsc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create of namespace doomed: want AlreadyExists, got %v", err)
	}
	if _, err := nsc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "Not_A_Label"}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("create namespace Not_A_Label: want Invalid, got %v", err)
	}
	list, err := nsc.List(ctx, metav1.ListOptions{LabelSelector: "e2e=yes"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "doomed" {
		t.Fatalf("list namespaces e2e=yes: %+v, %v", list, err)
	}
	for _, ns := range []string{"doomed", "survivor"} {
		mustCreate(t, ctx, c.widgets(ns), widget(ns, "w1", nil, validSpec()))
		mustCreate(t, ctx, c.widgets(ns), widget(ns, "w2", nil, validSpec()))
	}
	held := widget("doomed", "held", nil, validSpec())
	held.SetFinalizers([]string{holdFinalizer})
	mustCreate(t, ctx, c.widgets("doomed"), held)

	objWatch, err := c.widgets("doomed").Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer objWatch.Stop()
	w, err := nsc.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", "doomed").String(),
		ResourceVersion: created.ResourceVersion,
	})
	if err != nil {
		t.Fatalf("watch namespace: %v", err)
	}
	defer w.Stop()
	if err := nsc.Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace: %v", err)
	}
	// While the held widget keeps it, the namespace is Terminating and takes
	// no new objects.
	waitForObject(t, c.widgets("doomed"), "held", func(u *unstructured.Unstructured) bool { return u.GetDeletionTimestamp() != nil })
	term, err := nsc.Get(ctx, "doomed", metav1.GetOptions{})
	if err != nil || term.DeletionTimestamp == nil || term.Status.Phase != corev1.NamespaceTerminating {
		t.Errorf("namespace being deleted: %v, deletionTimestamp %v phase %q; want Terminating", err, term.DeletionTimestamp, term.Status.Phase)
	}
	if _, err := c.widgets("doomed").Create(ctx, widget("doomed", "during", nil, validSpec()), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create in a terminating namespace: want Forbidden, got %v", err)
	}
	releaseHeld(t, c, "doomed")
	waitDeleted(t, w, "doomed")

	if _, err := nsc.Get(ctx, "doomed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get deleted namespace: want NotFound, got %v", err)
	}
	// A watcher of the namespace's widgets saw them come and go.
	live := map[string]bool{}
	for len(live) == 0 || slices.Contains(slices.Collect(maps.Values(live)), true) {
		ev := nextEvent(t, objWatch)
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		switch ev.Type {
		case watch.Added:
			live[u.GetName()] = true
		case watch.Deleted:
			live[u.GetName()] = false
		}
	}
	if len(live) != 3 {
		t.Errorf("the widget watch of namespace doomed saw %v, want w1, w2 and held added and deleted", live)
	}
	all, err := c.dynamic.Resource(widgetsGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list widgets in all namespaces: %v", err)
	}
	var left []string
	for _, it := range all.Items {
		left = append(left, it.GetNamespace()+"/"+it.GetName())
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"survivor/w1", "survivor/w2"}) {
		t.Errorf("widgets after deleting namespace doomed: %v, want survivor/w1 and survivor/w2", left)
	}
	if _, err := c.widgets("doomed").Create(ctx, widget("doomed", "late", nil, validSpec()), metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("create in the deleted namespace: want NotFound, got %v", err)
	}
}
