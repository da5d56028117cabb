package controller_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/informer"
)

// widgetReconciler converges a Widget: a child ConfigMap, controlled by the
// widget, holds its size, and status.observedSize reports it.
type widgetReconciler struct{ e *env }

func (r widgetReconciler) Reconcile(ctx context.Context, req controller.Request) (controller.Result, error) {
	w, err := r.e.widgets.Get(ctx, req.Namespace, req.Name)
	if client.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, err
	}
	size := strconv.Itoa(w.Spec.Size)
	cm, err := r.e.cms.Get(ctx, w.Namespace, w.Name+"-child")
	switch {
	case client.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name + "-child",
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "test.setpoint.dev/v1", Kind: "Widget", Name: w.Name, UID: w.UID, Controller: new(true),
				}}},
			Data: map[string]string{"size": size},
		}
		if _, err := r.e.cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return controller.Result{}, err
		}
	case err != nil:
		return controller.Result{}, err
	case cm.Data["size"] != size:
		cm.Data = map[string]string{"size": size}
		if _, err := r.e.cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			return controller.Result{}, err
		}
	}
	if w.Status.ObservedSize != w.Spec.Size {
		w.Status.ObservedSize = w.Spec.Size
		if _, err := r.e.widgets.UpdateStatus(ctx, w, metav1.UpdateOptions{}); err != nil {
			return controller.Result{}, err
		}
	}
	return controller.Result{}, nil
}

func converged(w *Widget) bool { return w.Status.ObservedSize == w.Spec.Size }

// TestReconcilerConvergesWidgets runs a controller for a CRD and its owned
// ConfigMaps, starting its workers only once both informers synced: every widget gets its child and its status, a spec change is
// converged again, and a deleted or altered child is restored because Owns
// maps it to its owner. The metrics count the reconciles.
func TestReconcilerConvergesWidgets(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	widgets := e.widgetInformer()
	cms := informer.New(e.cms, informer.Options[*corev1.ConfigMap]{Namespace: "default"})
	metrics := controller.NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)
	var unsynced atomic.Bool // a reconcile ran before both informers synced
	r := controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
		if !widgets.HasSynced() || !cms.HasSynced() {
			unsynced.Store(true)
		}
		return widgetReconciler{e}.Reconcile(ctx, req)
	})
	c, err := controller.For(widgets).
		Owns(controller.Kind(cms)).
		WithOptions(controller.Options{Workers: 3, Metrics: metrics}).
		Complete(r)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "widget" {
		t.Errorf("default controller name = %q, want widget", c.Name())
	}
	const n = 10
	for i := range n {
		if _, err := e.widgets.Create(ctx, widget("w"+strconv.Itoa(i), i+1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	manage(t, widgets, cms, c)
	for i := range n {
		e.waitFor(t, "w"+strconv.Itoa(i), converged)
		cm, err := e.cms.Get(ctx, "default", "w"+strconv.Itoa(i)+"-child")
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["size"] != strconv.Itoa(i+1) {
			t.Errorf("child of w%d has size %q, want %d", i, cm.Data["size"], i+1)
		}
	}

	w3 := e.waitFor(t, "w3", converged)
	w3.Spec.Size = 42
	if _, err := e.widgets.Update(ctx, w3, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "w3", func(w *Widget) bool { return w.Status.ObservedSize == 42 })

	// Owns: only the child's events can bring these back.
	if err := e.cms.Delete(ctx, "default", "w0-child", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitForChild(t, "w0-child", "1")
	cm, err := e.cms.Get(ctx, "default", "w1-child")
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["size"] = "wrong"
	if _, err := e.cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitForChild(t, "w1-child", "2")

	if unsynced.Load() {
		t.Error("a reconcile ran before the informers synced")
	}
	got := gather(t, reg)
	if v := got[`setpoint_controller_reconcile_total{controller="widget",result="success"}`]; v < n {
		t.Errorf("successful reconciles = %v, want at least %d; metrics: %v", v, n, got)
	}
	if _, ok := got[`setpoint_controller_queue_depth{controller="widget"}`]; !ok {
		t.Errorf("no queue depth metric: %v", got)
	}
	if v := got[`setpoint_controller_reconcile_duration_seconds_count{controller="widget"}`]; v < n {
		t.Errorf("reconcile durations observed = %v, want at least %d", v, n)
	}
}

// waitForChild watches the default namespace's config maps until the one
// named name exists with the given size.
func (e *env) waitForChild(t *testing.T, name, size string) {
	t.Helper()
	ctx := t.Context()
	list, err := e.cms.List(ctx, "default", metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) == 1 && list.Items[0].Data["size"] == size {
		return
	}
	w, err := e.cms.Watch(ctx, "default", metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.Events() {
		if (ev.Type == watch.Added || ev.Type == watch.Modified) && ev.Object.Data["size"] == size {
			return
		}
	}
	t.Fatalf("watch of config map %s ended before it had size %s: %v", name, size, errors.Join(w.Err(), ctx.Err()))
}

// gather returns the registry's samples by name and labels, histograms as
// their _count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := f.GetName()
			key := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[name+key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name+key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[name+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestNoKeyReconciledConcurrently runs many workers over few keys whose
// reconciles keep changing their own objects, so keys are re-added while
// they are being processed: no key is ever in two reconciles at once.
func TestNoKeyReconciledConcurrently(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	widgets := e.widgetInformer()
	const keys, rounds = 5, 8
	var inFlight sync.Map // Request -> struct{}
	var overlaps atomic.Int32
	r := controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
		if _, loaded := inFlight.LoadOrStore(req, struct{}{}); loaded {
			overlaps.Add(1)
			t.Errorf("%s is reconciled by two workers at once", req)
			return controller.Result{}, nil
		}
		defer inFlight.Delete(req)
		w, err := e.widgets.Get(ctx, req.Namespace, req.Name)
		if err != nil {
			return controller.Result{}, err
		}
		if w.Spec.Size >= rounds {
			if !converged(w) {
				w.Status.ObservedSize = w.Spec.Size
				if _, err := e.widgets.UpdateStatus(ctx, w, metav1.UpdateOptions{}); err != nil {
					return controller.Result{}, err
				}
			}
			return controller.Result{}, nil
		}
		// Bump the spec: its event re-adds the key while this reconcile
		// still holds it.
		w.Spec.Size++
		if _, err := e.widgets.Update(ctx, w, metav1.UpdateOptions{}); err != nil {
			return controller.Result{}, err
		}
		return controller.Result{Requeue: true}, nil
	})
	c, err := controller.For(widgets).WithOptions(controller.Options{Workers: 8}).Complete(r)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if _, err := e.widgets.Create(ctx, widget("k"+strconv.Itoa(i), 0), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	manage(t, widgets, c)
	for i := range keys {
		w := e.waitFor(t, "k"+strconv.Itoa(i), func(w *Widget) bool { return w.Status.ObservedSize == rounds })
		if w.Spec.Size != rounds {
			t.Errorf("%s has size %d, want %d", w.Name, w.Spec.Size, rounds)
		}
	}
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("%d concurrent reconciles of one key", n)
	}
}

// TestPanicRecovered makes a reconciler panic on its first call: the panic is
// logged with its stack, the key is retried, and the process carries on.
func TestPanicRecovered(t *testing.T) {
	e := newEnv(t)
	widgets := e.widgetInformer()
	var logs syncBuffer
	metrics := controller.NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)
	var calls atomic.Int32
	retried := make(chan struct{})
	r := controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
		if calls.Add(1) == 1 {
			var m map[string]int
			m["boom"]++ // a nil map write: a runtime panic
		}
		close(retried)
		return controller.Result{}, nil
	})
	c, err := controller.For(widgets).WithOptions(controller.Options{
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		Metrics: metrics,
	}).Complete(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.widgets.Create(t.Context(), widget("p", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	manage(t, widgets, c)
	await(t, retried, "the retry after the panic")
	out := logs.String()
	if !strings.Contains(out, "reconciler panicked") || !strings.Contains(out, "assignment to entry in nil map") ||
		!strings.Contains(out, "request=default/p") || !strings.Contains(out, "controller_test.go") {
		t.Errorf("the panic is not logged with its value, request and stack:\n%s", out)
	}
	got := gather(t, reg)
	if got[`setpoint_controller_reconcile_total{controller="widget",result="panic"}`] != 1 {
		t.Errorf("panic outcomes: %v", got)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBuilderCollectsErrors checks that Complete reports every mistake made
// while building.
func TestBuilderCollectsErrors(t *testing.T) {
	e := newEnv(t)
	widgets := e.widgetInformer()
	var noInformer *informer.Informer[corev1.ConfigMap, *corev1.ConfigMap]
	_, err := controller.For(widgets).
		Owns(controller.Kind(noInformer)).
		Watches(controller.Kind(widgets), nil).
		WithOptions(controller.Options{Workers: -1}).
		Complete(nil)
	if err == nil {
		t.Fatal("Complete accepted a broken builder")
	}
	for _, want := range []string{"Owns needs a source", "Watches needs a MapFunc", "Workers is -1", "needs a Reconciler"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Complete's error %q does not say %q", err, want)
		}
	}
	metrics := controller.NewMetrics()
	ok := controller.ReconcilerFunc(func(context.Context, controller.Request) (controller.Result, error) {
		return controller.Result{}, nil
	})
	if _, err := controller.For(widgets).WithOptions(controller.Options{Metrics: metrics}).Complete(ok); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.For(widgets).WithOptions(controller.Options{Metrics: metrics}).Complete(ok); err == nil {
		t.Error("two controllers named widget report to one Metrics")
	}
}

// TestWatchesMapsOtherKinds maps ConfigMaps to the widget their "widget"
// label names: creating or changing such a ConfigMap reconciles the widget.
func TestWatchesMapsOtherKinds(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	widgets := e.widgetInformer()
	cms := informer.New(e.cms, informer.Options[*corev1.ConfigMap]{Namespace: "default"})
	reconciled := make(chan controller.Request, 16)
	r := controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
		reconciled <- req
		return controller.Result{}, nil
	})
	c, err := controller.For(widgets).
		Watches(controller.Kind(cms), func(obj client.Object) []controller.Request {
			if name := obj.GetLabels()["widget"]; name != "" {
				return []controller.Request{{Namespace: obj.GetNamespace(), Name: name}}
			}
			return nil
		}).
		Complete(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.widgets.Create(ctx, widget("watched", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	manage(t, widgets, cms, c)
	if got := await(t, reconciled, "the widget's own reconcile"); got.Name != "watched" {
		t.Fatalf("reconciled %s, want default/watched", got)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "settings", Labels: map[string]string{"widget": "watched"}}}
	if _, err := e.cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := await(t, reconciled, "the reconcile the ConfigMap maps to"); got != (controller.Request{Namespace: "default", Name: "watched"}) {
		t.Fatalf("reconciled %s, want default/watched", got)
	}
}
