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
// retried on conflicts for as long as the request lives, so that all of
// many concurrent patches of one object succeed and none is lost.
func TestConcurrentPatches(t *testing.T) {
	const writers = 32
	for _, c := range []struct {
		name  string
		pt    types.PatchType
		patch func(i int) []byte
		count func(got *unstructured.Unstructured) int
	}{
		{
			name:  "JSONPatchAppend",
			pt:    types.JSONPatchType,
			patch: func(i int) []byte { return fmt.Appendf(nil, `[{"op":"add","path":"/spec/items/-","value":%d}]`, i) },
			count: func(got *unstructured.Unstructured) int {
				items, _, _ := unstructured.NestedSlice(got.Object, "spec", "items")
				return len(items)
			},
		},
		{
			name:  "MergePatchLabels",
			pt:    types.MergePatchType,
			patch: func(i int) []byte { return fmt.Appendf(nil, `{"metadata":{"labels":{"writer-%d":"x"}}}`, i) },
			count: func(got *unstructured.Unstructured) int { return len(got.GetLabels()) },
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := t.Context()
			res := e.widgets(t)
			if _, err := e.reg.Create(ctx, res, "default", widget("c", map[string]any{"items": []any{}}), registry.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for i := range writers {
				wg.Go(func() {
					_, err := e.reg.Patch(ctx, res, "default", "c", c.pt, c.patch(i), registry.WriteOptions{})
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			got, err := e.reg.Get(ctx, res, "default", "c")
			if err != nil {
				t.Fatal(err)
			}
			if n := c.count(got); n != writers {
				t.Fatalf("%d of %d patches applied: %v", n, writers, got.Object)
			}
		})
	}
}
