package controller_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
)

// handSource is a Source the benchmark feeds by hand.
type handSource struct{ h controller.EventHandler }

func (s *handSource) AddHandler(h controller.EventHandler)  { s.h = h }
func (s *handSource) WaitForSync(ctx context.Context) error { return nil }
func (s *handSource) add(obj client.Object)                 { s.h.OnAdd(obj) }

// BenchmarkNoopReconcile measures the controller's own cost per key: b.N
// distinct keys through the queue and a no-op reconciler.
func BenchmarkNoopReconcile(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.ReportAllocs()
			inf := newEnv(b).widgetInformer() // no widgets: the keys come from src
			src := &handSource{}
			var left atomic.Int64
			left.Store(int64(b.N))
			done := make(chan struct{})
			c, err := controller.For(inf).Watches(src, func(obj client.Object) []controller.Request {
				return []controller.Request{{Namespace: obj.GetNamespace(), Name: obj.GetName()}}
			}).WithOptions(controller.Options{
				Workers: workers, Logger: slog.New(slog.DiscardHandler),
			}).Complete(controller.ReconcilerFunc(func(context.Context, controller.Request) (controller.Result, error) {
				if left.Add(-1) == 0 {
					close(done)
				}
				return controller.Result{}, nil
			}))
			if err != nil {
				b.Fatal(err)
			}
			objs := make([]*Widget, b.N)
			for i := range objs {
				objs[i] = &Widget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "w" + strconv.Itoa(i)}}
			}
			ctx, cancel := context.WithCancel(b.Context())
			stopped := make(chan error, 1)
			go func() { stopped <- inf.Run(ctx) }()
			ran := make(chan error, 1)
			go func() { ran <- c.Run(ctx) }()
			b.ResetTimer()
			for _, o := range objs {
				src.add(o)
			}
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reconciles/s")
			cancel()
			<-ran
			<-stopped
		})
	}
}
