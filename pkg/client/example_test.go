package client_test

import (
	"context"
	"fmt"
	"log"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// exampleServer runs a Setpoint server for an example and returns the
// configuration of its kubeconfig and the function that stops it.
func exampleServer() (*rest.Config, func()) {
	srv, err := setpointtest.New(setpointtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := client.NewConfig(srv.Kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	return cfg, func() {
		if err := srv.Stop(); err != nil {
			log.Fatal(err)
		}
	}
}

// The typed client works with the Go types of k8s.io/api as they are.
func Example() {
	cfg, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	cms, err := client.New[corev1.ConfigMap](cfg, client.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true})
	if err != nil {
		log.Fatal(err)
	}
	cm, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "settings"},
		Data:       map[string]string{"color": "blue"},
	}, metav1.CreateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	cm.Data["color"] = "green"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(cm.APIVersion, cm.Kind, cm.Name, cm.Data["color"])

	if err := cms.Delete(ctx, "default", "settings", metav1.DeleteOptions{}); err != nil {
		log.Fatal(err)
	}
	_, err = cms.Get(ctx, "default", "settings")
	fmt.Println("not found:", client.IsNotFound(err))
	// Output:
	// v1 ConfigMap settings green
	// not found: true
}

// Backup is a custom resource's Go type: TypeMeta and ObjectMeta embedded
// the way Kubernetes types do it, and no generated code.
type Backup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackupSpec `json:"spec,omitempty"`
}

// BackupSpec says what to back up.
type BackupSpec struct {
	Database string `json:"database"`
	Schedule string `json:"schedule,omitempty"`
}

// backupCRD declares the backups resource, in YAML for a server-side
// apply.
const backupCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: backups.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: backups, singular: backup, kind: Backup, listKind: BackupList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              database: {type: string}
              schedule: {type: string}
`

// New with a Go struct of one's own: here a custom resource, whose
// definition is applied first through the Unstructured client.
func ExampleNew() {
	cfg, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	crds, err := client.NewUnstructured(cfg, client.Resource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions", Kind: "CustomResourceDefinition"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := crds.Patch(ctx, "", "backups.example.com", types.ApplyYAMLPatchType, []byte(backupCRD), metav1.PatchOptions{FieldManager: "example"}); err != nil {
		log.Fatal(err)
	}

	backups, err := client.New[Backup](cfg, client.Resource{Group: "example.com", Version: "v1", Resource: "backups", Kind: "Backup", Namespaced: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, db := range []string{"orders", "users"} {
		b := &Backup{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: db}, Spec: BackupSpec{Database: db, Schedule: "@daily"}}
		if _, err := backups.Create(ctx, b, metav1.CreateOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	list, err := backups.ListAll(ctx, "default", metav1.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range list.Items {
		fmt.Println(b.Kind, b.Name, b.Spec.Database, b.Spec.Schedule)
	}
	// Output:
	// Backup orders orders @daily
	// Backup users users @daily
}

// Watch from the resourceVersion of a list sees every later change.
func ExampleClient_Watch() {
	cfg, stop := exampleServer()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	cms, err := client.New[corev1.ConfigMap](cfg, client.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true})
	if err != nil {
		log.Fatal(err)
	}
	list, err := cms.List(ctx, "default", metav1.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	w, err := cms.Watch(ctx, "default", metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "watched"}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		log.Fatal(err)
	}
	if err := cms.Delete(ctx, "default", "watched", metav1.DeleteOptions{}); err != nil {
		log.Fatal(err)
	}
	for ev := range w.Events() {
		fmt.Println(ev.Type, ev.Object.Name)
		if ev.Type == "DELETED" {
			w.Stop() // Events closes once the stream has ended.
		}
	}
	// Err says why the stream ended: nil after Stop, and for an error
	// for which IsGone is true, relist.
	fmt.Println("err:", w.Err())
	// Output:
	// ADDED watched
	// DELETED watched
	// err: <nil>
}

// Server-side apply sends only the fields the caller manages.
func ExampleClient_Patch() {
	cfg, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	cms, err := client.New[corev1.ConfigMap](cfg, client.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true})
	if err != nil {
		log.Fatal(err)
	}
	apply := []byte(`
apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: default}
data: {cpu: "2"}
`)
	cm, err := cms.Patch(ctx, "default", "limits", types.ApplyYAMLPatchType, apply, metav1.PatchOptions{FieldManager: "sizer"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cm.Name, cm.Data["cpu"], cm.ManagedFields[0].Manager)

	merge := []byte(`{"data":{"memory":"1Gi"}}`)
	if cm, err = cms.Patch(ctx, "default", "limits", types.MergePatchType, merge, metav1.PatchOptions{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(cm.Data["cpu"], cm.Data["memory"])
	// Output:
	// limits 2 sizer
	// 2 1Gi
}

// The Unstructured client serves any resource without a Go type.
func ExampleUnstructured() {
	cfg, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	secrets, err := client.NewUnstructured(cfg, client.Resource{Version: "v1", Resource: "secrets", Kind: "Secret", Namespaced: true})
	if err != nil {
		log.Fatal(err)
	}
	s := &unstructured.Unstructured{Object: map[string]any{
		"metadata":   map[string]any{"namespace": "default", "name": "token"},
		"stringData": map[string]any{"token": "s3cr3t"},
	}}
	if s, err = secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
		log.Fatal(err)
	}
	data, _, _ := unstructured.NestedString(s.Object, "data", "token")
	fmt.Println(s.GetKind(), s.GetName(), data)
	// Output:
	// Secret token czNjcjN0
}
