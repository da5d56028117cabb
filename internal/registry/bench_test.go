package registry_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/registry"
)

func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	res := e.widgets(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := e.reg.Create(ctx, res, "default", widget(fmt.Sprintf("w%d", i), map[string]any{"size": int64(i)}), registry.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPatch(b *testing.B) {
	e := newEnv(b)
	res := e.widgets(b)
	ctx := context.Background()
	if _, err := e.reg.Create(ctx, res, "default", widget("p", map[string]any{"size": int64(0)}), registry.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		patch := fmt.Appendf(nil, `{"spec":{"size":%d}}`, i+1)
		if _, err := e.reg.Patch(ctx, res, "default", "p", "application/merge-patch+json", patch, registry.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	e := newEnv(b)
	res := e.widgets(b)
	ctx := context.Background()
	if _, err := e.reg.Create(ctx, res, "default", widget("g", map[string]any{"size": int64(0)}), registry.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := e.reg.Get(ctx, res, "default", "g"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateDryRun measures the CPU work of a create (admission,
// metadata, managedFields) without the storage write.
func BenchmarkCreateDryRun(b *testing.B) {
	e := newEnv(b)
	res := e.widgets(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := e.reg.Create(ctx, res, "default", widget(fmt.Sprintf("w%d", i), map[string]any{"size": int64(i), "color": "red"}), registry.WriteOptions{DryRun: true, FieldManager: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateParallel measures create throughput with concurrent
// writers, whose storage writes share commits: CPU per create shows more
// here than in the one-writer BenchmarkCreate.
func BenchmarkCreateParallel(b *testing.B) {
	e := newEnv(b)
	res := e.widgets(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := e.reg.Create(ctx, res, "default", widget(fmt.Sprintf("w%d", i), map[string]any{"size": i, "color": "red"}), registry.WriteOptions{FieldManager: "bench"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUpdateStatus measures the first status update of objects of a
// typed schema, as a controller reporting on new objects makes: the body
// is the stored object, managedFields included, with a status set.
func BenchmarkUpdateStatus(b *testing.B) {
	e := newEnv(b)
	res := e.things(b)
	ctx := context.Background()
	objs := make([]*unstructured.Unstructured, b.N)
	for i := range objs {
		o := obj(map[string]any{"apiVersion": "example.com/v1", "kind": "Thing",
			"metadata": map[string]any{"name": fmt.Sprintf("t%d", i), "labels": map[string]any{"bucket": "b7"}},
			"spec":     map[string]any{"size": int64(i), "tags": []any{"x"}, "extra": map[string]any{"data": strings.Repeat("x", 700)}}})
		r, err := e.reg.Create(ctx, res, "default", obj(o.Object), registry.WriteOptions{FieldManager: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		r.Object.Object["status"] = map[string]any{"ready": true}
		objs[i] = r.Object
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := e.reg.Update(ctx, res, "default", objs[i].GetName(), objs[i], registry.WriteOptions{FieldManager: "bench", Subresource: "status"}); err != nil {
			b.Fatal(err)
		}
	}
}
