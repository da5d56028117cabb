package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/shard"
)

// replica is one sharded widget controller: an informer, a shard member and
// a controller that marks each widget's status, reporting each reconcile's
// start and end to record.
type replica struct {
	member  *shard.Member
	manager *controller.Manager
}

// newReplica builds a replica named id. The reconciler copies spec.size to
// status.observedSize through the status subresource.
func newReplica(cfg *rest.Config, id string, so shard.Options, record func(event, key string)) (*replica, error) {
	widgets, err := client.New[Widget](cfg, widgetResource)
	if err != nil {
		return nil, err
	}
	inf := informer.New(widgets, informer.Options[*Widget]{Namespace: "default"})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	so.Config, so.Namespace, so.Name, so.Identity, so.Logger = cfg, "default", "widget", id, logger
	member, err := shard.New(so)
	if err != nil {
		return nil, err
	}
	r := controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
		record("start", req.String())
		defer record("end", req.String())
		w, ok := inf.Get(req.Namespace, req.Name)
		if !ok || w.Status.ObservedSize == w.Spec.Size {
			return controller.Result{}, nil
		}
		w = w.DeepCopyObject()
		w.Status.ObservedSize = w.Spec.Size
		_, err := widgets.UpdateStatus(ctx, w, metav1.UpdateOptions{})
		if client.IsNotFound(err) {
			return controller.Result{}, nil
		}
		return controller.Result{}, err
	})
	c, err := controller.For(inf).WithOptions(controller.Options{Workers: 4, Shard: member, Logger: logger}).Complete(r)
	if err != nil {
		return nil, err
	}
	mgr, err := controller.NewManager(controller.ManagerOptions{Logger: logger})
	if err != nil {
		return nil, err
	}
	for _, run := range []controller.Runnable{inf, member, c} {
		if err := mgr.Add(run); err != nil {
			return nil, err
		}
	}
	return &replica{member: member, manager: mgr}, nil
}

// DeepCopyObject copies a widget; its fields are all values.
func (w *Widget) DeepCopyObject() *Widget {
	c := *w
	c.ObjectMeta = *w.ObjectMeta.DeepCopy()
	return &c
}

// ownership checks, across replicas in one process, that no key is
// reconciled by two replicas at once, and counts reconciles per replica.
type ownership struct {
	mu       sync.Mutex
	running  map[string]string // key -> replica reconciling it
	overlaps []string
	count    map[string]int
}

func (o *ownership) recorder(id string) func(event, key string) {
	return func(event, key string) {
		o.mu.Lock()
		defer o.mu.Unlock()
		switch event {
		case "start":
			if other, ok := o.running[key]; ok {
				o.overlaps = append(o.overlaps, fmt.Sprintf("%s started %s while %s reconciled it", id, key, other))
			}
			o.running[key] = id
			o.count[id]++
		case "end":
			delete(o.running, key)
		}
	}
}

// createWidgets creates n widgets w0..w(n-1) with size 1, from 8 goroutines.
func createWidgets(widgets *client.Client[Widget, *Widget], n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				if _, err := widgets.Create(context.Background(), widget("w"+strconv.Itoa(i), 1), metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("creating widgets: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// awaitConverged watches the widgets until n of them have status.observedSize
// equal to spec.size, calling progress with the count after each change.
func awaitConverged(t testing.TB, widgets *client.Client[Widget, *Widget], n int, progress func(int)) {
	t.Helper()
	ctx := t.Context()
	list, err := widgets.ListAll(ctx, "default", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	for _, w := range list.Items {
		done[w.Name] = converged(&w)
	}
	count := func() int {
		c := 0
		for _, ok := range done {
			if ok {
				c++
			}
		}
		return c
	}
	if count() >= n {
		return
	}
	w, err := widgets.Watch(ctx, "default", metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	c := count()
	for ev := range w.Events() {
		if ev.Object == nil || ev.Object.Name == "" {
			continue
		}
		was := done[ev.Object.Name]
		now := converged(ev.Object)
		done[ev.Object.Name] = now
		if was != now {
			if now {
				c++
			} else {
				c--
			}
			progress(c)
		}
		if c >= n {
			return
		}
	}
	t.Fatalf("widget watch ended at %d of %d converged: %v", c, n, errors.Join(w.Err(), ctx.Err()))
}

// awaitView waits until m's active view is members.
func awaitView(t *testing.T, m *shard.Member, members []string) {
	t.Helper()
	for {
		changed := m.Changed()
		if slices.Equal(m.Members(), members) {
			return
		}
		await(t, changed, fmt.Sprintf("%s to activate %v", m.Identity(), members))
	}
}

// TestShardedReplicasShareWork runs three sharded replicas of a controller
// in one process on one server: once all three share a view they split 300
// new widgets, one of them stops
// cleanly while they work, and the other two finish every widget, with no
// widget ever reconciled by two replicas at once.
func TestShardedReplicasShareWork(t *testing.T) {
	e := newEnv(t)
	const n = 300
	own := &ownership{running: map[string]string{}, count: map[string]int{}}
	so := shard.Options{LeaseDuration: 5 * time.Second, RenewDeadline: 4 * time.Second, RenewPeriod: 100 * time.Millisecond}
	ids := []string{"r0", "r1", "r2"}
	var reps []*replica
	var stops []context.CancelFunc
	for _, id := range ids {
		r, err := newReplica(e.cfg, id, so, own.recorder(id))
		if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, r)
		stops = append(stops, run(t, r.manager))
	}
	for _, r := range reps {
		awaitView(t, r.member, ids)
	}
	created := make(chan error, 1)
	go func() { created <- createWidgets(e.widgets, n) }()

	// Stop r1 once a third of the widgets converged.
	awaitConverged(t, e.widgets, n/3, func(int) {})
	stops[1]()
	if err := await(t, created, "the widgets to be created"); err != nil {
		t.Fatal(err)
	}
	awaitView(t, reps[0].member, []string{"r0", "r2"})
	awaitConverged(t, e.widgets, n, func(int) {})

	own.mu.Lock()
	defer own.mu.Unlock()
	for _, o := range own.overlaps {
		t.Error(o)
	}
	t.Logf("reconciles per replica: %v", own.count)
	for _, id := range ids {
		if own.count[id] == 0 {
			t.Errorf("replica %s reconciled nothing", id)
		}
	}
}
