package e2e

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// TestMetadataClient reads widgets as PartialObjectMetadata, as
// controller-runtime's metadata-only informers do.
func TestMetadataClient(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 30*time.Second)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "meta")
	for _, name := range []string{"m1", "m2"} {
		mustCreate(t, ctx, c.widgets("meta"), widget("meta", name, map[string]string{"app": name}, validSpec()))
	}
	mc, err := metadata.NewForConfig(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	mr := mc.Resource(widgetsGVR).Namespace("meta")
	list, err := mr.List(ctx, metav1.ListOptions{LabelSelector: "app=m2"})
	if err != nil {
		t.Fatalf("metadata list: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "m2" || list.Items[0].Labels["app"] != "m2" || list.Items[0].UID == "" {
		t.Errorf("metadata list app=m2: %+v", list.Items)
	}
	one, err := mr.Get(ctx, "m1", metav1.GetOptions{})
	if err != nil || one.Name != "m1" || one.ResourceVersion == "" {
		t.Errorf("metadata get m1: %+v, %v", one, err)
	}

	factory := metadatainformer.NewFilteredSharedInformerFactory(mc, 0, "meta", nil)
	inf := factory.ForResource(widgetsGVR).Informer()
	added := make(chan string, 10)
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { added <- obj.(*metav1.PartialObjectMetadata).Name },
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	defer func() {
		close(stop)
		factory.Shutdown()
	}()
	syncCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for gvr, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			t.Fatalf("metadata informer for %v did not sync", gvr)
		}
	}
	mustCreate(t, ctx, c.widgets("meta"), widget("meta", "m3", nil, validSpec()))
	var got []string
	for range 3 {
		select {
		case n := <-added:
			got = append(got, n)
		case <-ctx.Done():
			t.Fatalf("metadata informer saw only %v", got)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Errorf("metadata informer adds %v, want m1 m2 m3", got)
	}

	w, err := mr.Watch(ctx, metav1.ListOptions{ResourceVersion: one.ResourceVersion})
	if err != nil {
		t.Fatalf("metadata watch: %v", err)
	}
	defer w.Stop()
	ev := nextEvent(t, w)
	if pm, ok := ev.Object.(*metav1.PartialObjectMetadata); ev.Type != watch.Added || !ok || pm.Name != "m2" {
		t.Errorf("first metadata watch event after m1: %s %#v, want ADDED m2", ev.Type, ev.Object)
	}
}

// TestYAMLBodies writes with YAML bodies, which the server must accept, and
// checks that ?pretty is accepted too.
func TestYAMLBodies(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 30*time.Second)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "yaml")
	hc, err := rest.HTTPClientFor(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	url := s.baseURL() + "/apis/" + testGroup + "/" + testVersion + "/namespaces/yaml/widgets"
	body := "apiVersion: " + testGroup + "/" + testVersion + "\nkind: Widget\nmetadata:\n  name: from-yaml\n  labels:\n    fmt: yaml\nspec:\n  size: 2\n  color: blue\n"
	req, err := http.NewRequestWithContext(ctx, "POST", url+"?pretty=true", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("YAML create: code %d, want 201; body %s", resp.StatusCode, truncate(answer))
	}
	got := mustGet(t, ctx, c.widgets("yaml"), "from-yaml")
	if nested[int64](t, got, "spec", "size") != 2 || nested[string](t, got, "spec", "color") != "blue" || got.GetLabels()["fmt"] != "yaml" {
		t.Errorf("object created from YAML: %v", got.Object)
	}
}
