package registry_test

import (
	"fmt"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/registry"
)

func TestDeleteCollectionWithSelector(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	for i := range 4 {
		o := widget(fmt.Sprintf("w%d", i), nil)
		o.SetLabels(map[string]string{"parity": []string{"even", "odd"}[i%2]})
		if _, err := e.reg.Create(ctx, res, "default", o, registry.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	opts := everything()
	opts.Labels = labels.SelectorFromSet(labels.Set{"parity": "odd"})
	deleted, err := e.reg.DeleteCollection(ctx, res, "default", opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted.Items) != 2 {
		t.Fatalf("deleted %d", len(deleted.Items))
	}
	left, err := e.reg.List(ctx, res, "default", everything())
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range left.Items {
		if it.GetLabels()["parity"] != "even" {
			t.Fatalf("left %s", it.GetName())
		}
	}
	if len(left.Items) != 2 {
		t.Fatalf("left %d", len(left.Items))
	}
}

// TestConcurrentPatches checks that patches without a resourceVersion are
// retried on conflicts, so no append is lost.
func TestConcurrentPatches(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	if _, err := e.reg.Create(ctx, res, "default", widget("c", map[string]any{"items": []any{}}), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	const writers = 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			patch := fmt.Appendf(nil, `[{"op":"add","path":"/spec/items/-","value":%d}]`, i)
			_, err := e.reg.Patch(ctx, res, "default", "c", types.JSONPatchType, patch, registry.WriteOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.reg.Get(ctx, res, "default", "c")
	if err != nil {
		t.Fatal(err)
	}
	items, _, _ := unstructured.NestedSlice(got.Object, "spec", "items")
	if len(items) != writers {
		t.Fatalf("items %v", items)
	}
}
