package registry_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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
