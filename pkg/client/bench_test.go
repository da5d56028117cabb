package client_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// benchObjects is how many ConfigMaps the list benchmarks read.
const benchObjects = 500

// benchServer runs a server holding benchObjects ConfigMaps of about 1 KiB
// in namespace "bench".
func benchServer(b *testing.B) *rest.Config {
	b.Helper()
	cfg := setpointtest.Start(b, setpointtest.Options{}).RESTConfig()
	c, err := client.New[corev1.ConfigMap](cfg, configMapsRes)
	if err != nil {
		b.Fatal(err)
	}
	nss, err := client.New[corev1.Namespace](cfg, namespacesRes)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := nss.Create(b.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for i := range benchObjects {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("cm-%03d", i), Labels: map[string]string{"app": "bench", "tier": "x"}},
			Data:       map[string]string{"a": strings.Repeat("a", 512), "b": strings.Repeat("b", 256), "n": fmt.Sprint(i)},
		}
		if _, err := c.Create(b.Context(), cm, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return cfg
}

// BenchmarkList compares listing 500 ConfigMaps into Go structs with this
// client, as Unstructured with it, and with client-go's dynamic client
// followed by a conversion into structs.
func BenchmarkList(b *testing.B) {
	cfg := benchServer(b)
	b.Run("typed", func(b *testing.B) {
		c, _ := client.New[corev1.ConfigMap](cfg, configMapsRes)
		b.ReportAllocs()
		for b.Loop() {
			if l, err := c.List(b.Context(), "bench", metav1.ListOptions{}); err != nil || len(l.Items) != benchObjects {
				b.Fatal(err)
			}
		}
	})
	b.Run("unstructured", func(b *testing.B) {
		c, _ := client.New[unstructured.Unstructured](cfg, configMapsRes)
		b.ReportAllocs()
		for b.Loop() {
			if l, err := c.List(b.Context(), "bench", metav1.ListOptions{}); err != nil || len(l.Items) != benchObjects {
				b.Fatal(err)
			}
		}
	})
	b.Run("dynamic_converted", func(b *testing.B) {
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			b.Fatal(err)
		}
		r := dyn.Resource(configMapsRes.GroupVersionResource()).Namespace("bench")
		b.ReportAllocs()
		for b.Loop() {
			l, err := r.List(b.Context(), metav1.ListOptions{})
			if err != nil || len(l.Items) != benchObjects {
				b.Fatal(err)
			}
			items := make([]corev1.ConfigMap, len(l.Items))
			for i := range l.Items {
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(l.Items[i].Object, &items[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkGet compares reading one ConfigMap into a Go struct with this
// client and with client-go's dynamic client plus a conversion.
func BenchmarkGet(b *testing.B) {
	cfg := benchServer(b)
	b.Run("typed", func(b *testing.B) {
		c, _ := client.New[corev1.ConfigMap](cfg, configMapsRes)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(b.Context(), "bench", "cm-007"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dynamic_converted", func(b *testing.B) {
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			b.Fatal(err)
		}
		r := dyn.Resource(configMapsRes.GroupVersionResource()).Namespace("bench")
		b.ReportAllocs()
		for b.Loop() {
			u, err := r.Get(b.Context(), "cm-007", metav1.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			var cm corev1.ConfigMap
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cm); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWatchInitial measures a watch that starts with the current
// 500 ConfigMaps as ADDED events, decoded into Go structs.
func BenchmarkWatchInitial(b *testing.B) {
	cfg := benchServer(b)
	c, _ := client.New[corev1.ConfigMap](cfg, configMapsRes)
	b.ReportAllocs()
	for b.Loop() {
		w, err := c.Watch(b.Context(), "bench", metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for range benchObjects {
			if ev, ok := <-w.Events(); !ok || ev.Type != "ADDED" {
				b.Fatalf("event %v, %v: %v", ev.Type, ok, w.Err())
			}
		}
		w.Stop()
	}
}
