package client_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// TestMetadataOnly checks that a client of metav1.PartialObjectMetadata
// gets metadata alone from the server, for Get, List, Watch and Patch,
// with the resource's apiVersion and kind.
func TestMetadataOnly(t *testing.T) {
	cfg := start(t, setpointtest.Options{})
	createNamespace(t, cfg, "meta")
	ctx := t.Context()
	cms := newClient[corev1.ConfigMap](t, cfg, configMapsRes)
	mc := newClient[metav1.PartialObjectMetadata](t, cfg, configMapsRes)
	// The full objects do not fit the metadata client's limits.
	client.SetLimits(mc, 16<<10, 16<<10)
	gvk := configMapsRes.GroupVersionKind()

	list, err := mc.List(ctx, "meta", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := mc.Watch(ctx, "meta", metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, name := range []string{"a", "b"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "meta", Name: name, Labels: map[string]string{"app": name}}, Data: map[string]string{"v": strings.Repeat("x", 32<<10)}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := mc.Get(ctx, "meta", "a")
	if err != nil || m.Name != "a" || m.Labels["app"] != "a" || m.GroupVersionKind() != gvk {
		t.Fatalf("Get = %+v, %v", m, err)
	}
	list, err = mc.List(ctx, "meta", metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 || list.Items[1].Name != "b" || list.Items[1].GroupVersionKind() != gvk {
		t.Fatalf("List = %+v, %v", list, err)
	}
	for _, name := range []string{"a", "b"} {
		if ev := nextChange(t, w); ev.Type != watch.Added || ev.Object.Name != name || ev.Object.GroupVersionKind() != gvk {
			t.Fatalf("event = %s %+v", ev.Type, ev.Object)
		}
	}
	m, err = mc.Patch(ctx, "meta", "a", types.MergePatchType, []byte(`{"metadata":{"finalizers":["example.com/hold"]}}`), metav1.PatchOptions{})
	if err != nil || len(m.Finalizers) != 1 || m.GroupVersionKind() != gvk {
		t.Fatalf("Patch = %+v, %v", m, err)
	}
	if full, err := cms.Get(ctx, "meta", "a"); err != nil || len(full.Data["v"]) != 32<<10 || len(full.Finalizers) != 1 {
		t.Fatalf("the metadata Patch changed more than the metadata: %v", err)
	}
	if err := mc.Delete(ctx, "meta", "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}
