package server_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/internal/server"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// clientset returns a typed client for cfg.
func clientset(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createConfigMap creates ConfigMap ns/name as the administrator.
func createConfigMap(t *testing.T, admin *kubernetes.Clientset, ns, name string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := admin.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// wantForbidden fails unless err is a 403.
func wantForbidden(t *testing.T, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: %v, want Forbidden", what, err)
	}
}

// nextEvent returns the next event of w, failing after a while.
func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	return watch.Event{}
}

// TestNamespaceIsolation checks that a user allowed to read ConfigMaps in
// namespace a (ClusterRole view bound in a) lists and watches a, is
// refused b and all namespaces, and never receives b's objects, in a list
// or in a watch; and what happens to an open watch when the binding goes.
func TestNamespaceIsolation(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	admin := clientset(t, s.RESTConfig())
	for _, ns := range []string{"a", "b"} {
		if _, err := admin.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		createConfigMap(t, admin, ns, ns+"-1")
	}
	createAs(t, s.RESTConfig(), roleBindingsGVR, "a", rbacObject("RoleBinding", "dana-view", bindTo("view", "dana")))
	dana := clientset(t, userConfig(t, s, "dana", "developers")).CoreV1()
	ctx := t.Context()

	list, err := dana.ConfigMaps("a").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "a-1" {
		t.Errorf("list of a: %v", names(list.Items))
	}
	_, err = dana.ConfigMaps("b").List(ctx, metav1.ListOptions{})
	wantForbidden(t, "list b", err)
	_, err = dana.ConfigMaps("").List(ctx, metav1.ListOptions{})
	wantForbidden(t, "list all namespaces", err)
	_, err = dana.ConfigMaps("b").Get(ctx, "b-1", metav1.GetOptions{})
	wantForbidden(t, "get b/b-1", err)
	_, err = dana.ConfigMaps("b").Watch(ctx, metav1.ListOptions{})
	wantForbidden(t, "watch b", err)
	_, err = dana.ConfigMaps("").Watch(ctx, metav1.ListOptions{})
	wantForbidden(t, "watch all namespaces", err)
	_, err = dana.ConfigMaps("a").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine"}}, metav1.CreateOptions{})
	wantForbidden(t, "create in a (view is read-only)", err)

	// A watch of a sees a's changes and none of b's: b's change is
	// written first, so it would be the first event had it leaked.
	w, err := dana.ConfigMaps("a").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	createConfigMap(t, admin, "b", "b-2")
	createConfigMap(t, admin, "a", "a-2")
	if ev := nextEvent(t, w); ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Namespace != "a" || ev.Object.(*corev1.ConfigMap).Name != "a-2" {
		t.Fatalf("first event %s %v, want ADDED a/a-2", ev.Type, ev.Object)
	}

	// The binding goes while the watch is open. As in Kubernetes,
	// authorization happened when the watch started: the open watch
	// keeps delivering a's changes (never b's) until it ends, and every
	// new request is refused at once.
	if err := admin.RbacV1().RoleBindings("a").Delete(ctx, "dana-view", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = dana.ConfigMaps("a").List(ctx, metav1.ListOptions{})
	wantForbidden(t, "list a after the binding went", err)
	_, err = dana.ConfigMaps("a").Watch(ctx, metav1.ListOptions{})
	wantForbidden(t, "watch a after the binding went", err)
	createConfigMap(t, admin, "b", "b-3")
	createConfigMap(t, admin, "a", "a-3")
	if ev := nextEvent(t, w); ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Namespace != "a" || ev.Object.(*corev1.ConfigMap).Name != "a-3" {
		t.Fatalf("event after revocation %s %v, want ADDED a/a-3 on the open watch", ev.Type, ev.Object)
	}
}

func names(items []corev1.ConfigMap) []string {
	var out []string
	for _, cm := range items {
		out = append(out, cm.Namespace+"/"+cm.Name)
	}
	return out
}

// TestGrantAcrossReplicas checks, on PostgreSQL, that a RoleBinding
// created through one replica is in effect on the very next request to
// another, and a removed one once that replica's feed read the removal.
func TestGrantAcrossReplicas(t *testing.T) {
	url := pgtest.URL(t)
	pkiDir := t.TempDir()
	sharedPKI := func(c *server.Config) { c.PKIDir = pkiDir }
	a, b := startReplica(t, url, sharedPKI), startReplica(t, url, sharedPKI)
	admin := clientset(t, a.config)
	erin := clientset(t, userConfigFor(t, b.config, pkiDir, "erin")).CoreV1()
	ctx := t.Context()
	for i := range 5 {
		ns := fmt.Sprintf("grant-%d", i)
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := erin.ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		wantForbidden(t, "list before the grant", err)
		createAs(t, a.config, roleBindingsGVR, ns, rbacObject("RoleBinding", "erin-view", bindTo("view", "erin")))
		if _, err := erin.ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("round %d: list on replica b right after the grant on a: %v", i, err)
		}
		if err := admin.RbacV1().RoleBindings(ns).Delete(ctx, "erin-view", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := erin.ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			if apierrors.IsForbidden(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: grant removed on a still in effect on b: %v", i, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
