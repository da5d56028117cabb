package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// TestPeer starts etcd and the apiserver from PEER_BIN (see README.md),
// drives a CRD and a custom resource through client-go, and stops both.
func TestPeer(t *testing.T) {
	bin := os.Getenv("PEER_BIN")
	if bin == "" {
		t.Skip("PEER_BIN not set: build with build.sh and set it to bench/peer/bin")
	}
	dir := t.TempDir()
	p, err := start(bin, dir, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = stop(dir, 10*time.Second)
		}
	})
	t.Logf("ready in %s (apiserver %s)", p.Ready, p.APIServerReady)

	cfg, err := clientcmd.BuildConfigFromFlags("", p.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	crds := apiextensionsclient.NewForConfigOrDie(cfg).ApiextensionsV1().CustomResourceDefinitions()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.bench.example"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "bench.example",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec":   {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"size": {Type: "integer"}}},
						"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"ready": {Type: "boolean"}}},
					},
				}},
			}},
		},
	}
	if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create CRD: %v", err)
	}
	w, err := crds.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + crd.Name})
	if err != nil {
		t.Fatalf("watch CRD: %v", err)
	}
	established := false
	for ev := range w.ResultChan() {
		got, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition)
		if ok && slices.ContainsFunc(got.Status.Conditions, func(c apiextensionsv1.CustomResourceDefinitionCondition) bool {
			return c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue
		}) {
			established = true
			break
		}
	}
	w.Stop()
	if !established {
		t.Fatal("CRD never established")
	}

	widgets := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "bench.example", Version: "v1", Resource: "widgets"}).Namespace("default")
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bench.example/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1"},
		"spec":     map[string]any{"size": int64(3)},
	}}
	created, err := widgets.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create widget: %v", err)
	}
	if err := unstructured.SetNestedField(created.Object, true, "status", "ready"); err != nil {
		t.Fatal(err)
	}
	if _, err := widgets.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status: %v", err)
	}
	list, err := widgets.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list widgets: %v", err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("listed %d widgets, want 1", len(list.Items))
	}
	if ready, _, _ := unstructured.NestedBool(list.Items[0].Object, "status", "ready"); !ready {
		t.Fatal("status.ready not stored")
	}

	// The plain (unaggregated) group list is the one the wrapper maintains.
	raw, err := discovery.NewDiscoveryClientForConfigOrDie(cfg).RESTClient().Get().
		AbsPath("/apis").SetHeader("Accept", "application/json").DoRaw(ctx)
	if err != nil {
		t.Fatalf("GET /apis: %v", err)
	}
	var groups metav1.APIGroupList
	if err := json.Unmarshal(raw, &groups); err != nil {
		t.Fatalf("decode /apis: %v", err)
	}
	if !slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == "bench.example" }) {
		t.Fatalf("/apis lacks bench.example: %s", raw)
	}

	stopped = true
	if err := stop(dir, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{p.EtcdPID, p.APIServerPID} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still there after stop (kill 0: %v)", pid, err)
		}
	}
}
