package client

import (
	"bytes"
	"context"
	"io"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
)

// FuzzWatchStream feeds arbitrary bytes to the watch stream decoder of a
// typed and an unstructured client. Whatever it accepts is a known event
// type with an object of the client's kind; nothing panics.
func FuzzWatchStream(f *testing.F) {
	f.Add([]byte(`{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"5"},"data":{"k":"v"}}}` + "\n" +
		`{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"9"}}}` + "\n"))
	f.Add([]byte(`{"type":"DELETED","object":{"metadata":{"name":"a"}}}{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}`))
	f.Add([]byte(`{"type":"MODIFIED","object":null}`))
	f.Add([]byte(`{"type":"ADDED","object":{"data":{"n":1e400}}}`))
	res := Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}
	typed := &Client[corev1.ConfigMap, *corev1.ConfigMap]{res: res, gvk: res.GroupVersionKind()}
	unstr := &Client[unstructured.Unstructured, *unstructured.Unstructured]{res: res, gvk: res.GroupVersionKind(), unstructured: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzStream(t, typed, data)
		fuzzStream(t, unstr, data)
	})
}

func fuzzStream[T any, PT interface {
	*T
	Object
}](t *testing.T, c *Client[T, PT], data []byte) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watch[T, PT]{events: make(chan Event[PT]), cancel: cancel, done: make(chan struct{})}
	go w.run(ctx, io.NopCloser(bytes.NewReader(data)), c, 1<<20)
	for ev := range w.Events() {
		switch ev.Type {
		case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
		default:
			t.Fatalf("event of type %q delivered", ev.Type)
		}
		if ev.Object == nil || ev.Object.GetObjectKind().GroupVersionKind().Empty() {
			t.Fatalf("event object %+v has no kind", ev.Object)
		}
	}
	_ = w.Err()
}
