package controller_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/shard"
)

// BenchmarkStack measures reconciles per second through the whole stack: N
// widgets (N from $SETPOINT_BENCH_OBJECTS, default 1,000) stored in a test
// server, listed and watched by informers over HTTP, and reconciled once each
// by controllers. The informers sync before the clock starts (their sync is
// reported as sync-ms; pkg/informer's BenchmarkSync measures it in detail),
// so the figure is the queue and the workers: from building the
// controllers, which enqueues every cached widget, to the last widget's
// first reconcile.
//
// The reconciler is a no-op, or sleeps 5ms as a reconciler waiting on I/O
// would. With replicas=3 the widgets are shared among three in-process
// replicas, each with its own informer and connection, through pkg/shard.
func BenchmarkStack(b *testing.B) {
	n := 1000
	if s := os.Getenv("SETPOINT_BENCH_OBJECTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("SETPOINT_BENCH_OBJECTS: %v", err)
		}
	}
	e := newEnv(b)
	if err := createWidgets(e.widgets, n); err != nil {
		b.Fatal(err)
	}
	noop := func(context.Context) {}
	io5ms := func(ctx context.Context) {
		t := time.NewTimer(5 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	for _, c := range []struct {
		name              string
		work              func(context.Context)
		replicas, workers int
	}{
		{"noop", noop, 1, 1},
		{"noop", noop, 1, 4},
		{"io5ms", io5ms, 1, 16},
		{"io5ms", io5ms, 3, 16},
		{"io5ms", io5ms, 1, 64},
		{"io5ms", io5ms, 3, 64},
	} {
		b.Run(fmt.Sprintf("%s/replicas=%d/workers=%d", c.name, c.replicas, c.workers), func(b *testing.B) {
			benchStack(b, e, n, c.replicas, c.workers, c.work)
		})
	}
}

// stackReplica is one replica's informer and, when sharded, its member.
type stackReplica struct {
	inf    *informer.Informer[Widget, *Widget]
	member *shard.Member
}

func benchStack(b *testing.B, e *env, n, replicas, workers int, work func(context.Context)) {
	logger := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	start := time.Now()
	reps := make([]stackReplica, replicas)
	for i := range reps {
		widgets, err := client.New[Widget](e.cfg, widgetResource)
		if err != nil {
			b.Fatal(err)
		}
		reps[i].inf = informer.New(widgets, informer.Options[*Widget]{Namespace: "default", Logger: logger})
		wg.Go(func() { _ = reps[i].inf.Run(ctx) })
		if replicas > 1 {
			m, err := shard.New(shard.Options{
				Config: e.cfg, Namespace: "default", Name: fmt.Sprintf("bench-%d-%d", replicas, workers), Identity: "r" + strconv.Itoa(i),
				LeaseDuration: 5 * time.Second, RenewDeadline: 3 * time.Second, RenewPeriod: 200 * time.Millisecond, Logger: logger,
			})
			if err != nil {
				b.Fatal(err)
			}
			reps[i].member = m
			wg.Go(func() { _ = m.Run(ctx) })
		}
	}
	for _, r := range reps {
		if err := r.inf.WaitForSync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	synced := time.Since(start)
	for _, r := range reps {
		if r.member != nil {
			awaitMembers(b, ctx, r.member, replicas)
		}
	}

	var elapsed time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		var mu sync.Mutex
		seen := make(map[controller.Request]bool, n)
		all := make(chan struct{})
		rec := controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
			work(ctx)
			mu.Lock()
			if !seen[req] {
				seen[req] = true
				if len(seen) == n {
					close(all)
				}
			}
			mu.Unlock()
			return controller.Result{}, nil
		})
		runCtx, stop := context.WithCancel(ctx)
		var running sync.WaitGroup
		b.StartTimer()
		began := time.Now()
		for _, r := range reps {
			c, err := controller.For(r.inf).WithOptions(controller.Options{Workers: workers, Shard: r.member, Logger: logger}).Complete(rec)
			if err != nil {
				b.Fatal(err)
			}
			running.Go(func() { _ = c.Run(runCtx) })
		}
		<-all
		elapsed += time.Since(began)
		b.StopTimer()
		stop()
		running.Wait()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "reconciles/s")
	b.ReportMetric(float64(synced.Milliseconds()), "sync-ms") // after ResetTimer, which drops metrics
}

// awaitMembers waits until m's active view has want members.
func awaitMembers(b *testing.B, ctx context.Context, m *shard.Member, want int) {
	deadline := time.After(time.Minute)
	for {
		changed := m.Changed()
		if len(m.Members()) == want {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			b.Fatalf("member %s sees %v, want %d members", m.Identity(), m.Members(), want)
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		}
	}
}
