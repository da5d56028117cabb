package e2e

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// TestTypedClientDefaultProtobuf uses client-go's typed clientsets as a
// controller builds them, with the kubeconfig alone: since v0.37 they send
// request bodies as application/vnd.kubernetes.protobuf and accept protobuf
// or JSON answers. Creating a namespace and a CRD must work that way.
func TestTypedClientDefaultProtobuf(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := testContext(t, 30*time.Second)
	core, err := kubernetes.NewForConfig(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Reads ask for protobuf or JSON; a JSON answer is fine.
	nsList, err := core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil || len(nsList.Items) == 0 {
		t.Fatalf("list namespaces with the default typed client: %v (%d items)", err, len(nsList.Items))
	}
	// Watches ask for protobuf or JSON streams; a JSON stream is fine.
	w, err := core.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{ResourceVersion: nsList.ResourceVersion})
	if err != nil {
		t.Fatalf("watch namespaces with the default typed client: %v", err)
	}
	defer w.Stop()
	createNamespace(t, newClients(t, s), "by-json")
	ev := nextEvent(t, w)
	if got, ok := ev.Object.(*corev1.Namespace); ev.Type != watch.Added || !ok || got.Name != "by-json" {
		t.Errorf("default typed watch: %s %#v, want ADDED namespace by-json", ev.Type, ev.Object)
	}

	// Writes send protobuf bodies.
	ns, err := core.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "proto"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a namespace with the default typed client: %v", err)
	}
	if ns.Name != "proto" || ns.UID == "" {
		t.Errorf("created namespace %+v", ns.ObjectMeta)
	}
	got, err := core.CoreV1().Namespaces().Get(ctx, "proto", metav1.GetOptions{})
	if err != nil || got.UID != ns.UID {
		t.Errorf("get namespace: %+v, %v", got, err)
	}
	ext, err := apiextclient.NewForConfig(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, widgetCRD(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a CRD with the default typed client: %v", err)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Schema == nil || crd.Spec.Versions[0].Schema.OpenAPIV3Schema == nil {
		t.Errorf("created CRD lost its schema: %+v", crd.Spec.Versions)
	}
}
