package client_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// TestUpdateStatus checks that UpdateStatus and a status-subresource
// Patch change only the status, and Update only the rest, for the typed
// and the unstructured client.
func TestUpdateStatus(t *testing.T) {
	cfg := start(t, setpointtest.Options{})
	installWidgets(t, cfg)
	createNamespace(t, cfg, "status")
	ctx := t.Context()

	t.Run("typed", func(t *testing.T) {
		c := newClient[Widget](t, cfg, widgetsRes)
		w, err := c.Create(ctx, &Widget{ObjectMeta: metav1.ObjectMeta{Namespace: "status", Name: "typed"}, Spec: WidgetSpec{Color: "red"}, Status: WidgetStatus{Phase: "ignored"}}, metav1.CreateOptions{})
		if err != nil || w.Status.Phase != "" {
			t.Fatalf("Create = %+v, %v; want the status dropped", w, err)
		}
		w.Status.Phase, w.Spec.Color = "Ready", "blue"
		w, err = c.UpdateStatus(ctx, w, metav1.UpdateOptions{})
		if err != nil || w.Status.Phase != "Ready" || w.Spec.Color != "red" {
			t.Fatalf("UpdateStatus = %+v, %v", w, err)
		}
		w.Status.Phase, w.Spec.Color = "Lost", "green"
		w, err = c.Update(ctx, w, metav1.UpdateOptions{})
		if err != nil || w.Status.Phase != "Ready" || w.Spec.Color != "green" {
			t.Fatalf("Update = %+v, %v", w, err)
		}
		w, err = c.Patch(ctx, "status", "typed", types.MergePatchType, []byte(`{"status":{"phase":"Done"},"spec":{"color":"pink"}}`), metav1.PatchOptions{}, "status")
		if err != nil || w.Status.Phase != "Done" || w.Spec.Color != "green" {
			t.Fatalf("status Patch = %+v, %v", w, err)
		}
		if _, err := c.Patch(ctx, "status", "typed", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{}, "nosuch"); !client.IsNotFound(err) {
			t.Fatalf("Patch of an unknown subresource: %v, want NotFound", err)
		}
	})
	t.Run("unstructured", func(t *testing.T) {
		c := newClient[unstructured.Unstructured](t, cfg, widgetsRes)
		u := &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"namespace": "status", "name": "unstructured"},
			"spec":     map[string]any{"color": "red"},
		}}
		u, err := c.Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(u.Object, "Ready", "status", "phase"); err != nil {
			t.Fatal(err)
		}
		u, err = c.UpdateStatus(ctx, u, metav1.UpdateOptions{})
		if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); err != nil || phase != "Ready" {
			t.Fatalf("UpdateStatus = %+v, %v", u, err)
		}
	})
}

// TestStrategicMergePatch checks that the client sends a strategic merge
// patch as such: built-in types take it, custom resources answer 415.
func TestStrategicMergePatch(t *testing.T) {
	cfg := start(t, setpointtest.Options{})
	installWidgets(t, cfg)
	ctx := t.Context()
	cms := newClient[corev1.ConfigMap](t, cfg, configMapsRes)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "smp"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm, err := cms.Patch(ctx, "default", "smp", types.StrategicMergePatchType, []byte(`{"data":{"b":"2"}}`), metav1.PatchOptions{})
	if err != nil || cm.Data["a"] != "1" || cm.Data["b"] != "2" {
		t.Fatalf("strategic merge Patch = %+v, %v", cm, err)
	}
	widgets := newClient[Widget](t, cfg, widgetsRes)
	if _, err := widgets.Create(ctx, &Widget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "smp"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = widgets.Patch(ctx, "default", "smp", types.StrategicMergePatchType, []byte(`{"spec":{"color":"red"}}`), metav1.PatchOptions{})
	if !apierrors.IsUnsupportedMediaType(err) {
		t.Fatalf("strategic merge Patch of a custom resource: %v, want 415", err)
	}
}
