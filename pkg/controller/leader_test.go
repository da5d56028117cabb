package controller_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

var leaseResource = client.Resource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Kind: "Lease", Namespaced: true}

// election returns leader election settings for the test Lease, quick enough
// for tests: a replica retries every 20ms, and a holder that stops renewing
// loses the Lease after 2s.
func election(cfg *rest.Config, id string, seen chan<- string) *controller.LeaderElection {
	return &controller.LeaderElection{
		Config: cfg, Namespace: "default", Name: "widget-controller", Identity: id,
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 20 * time.Millisecond,
		OnNewLeader: func(holder string) {
			if seen != nil {
				seen <- holder
			}
		},
	}
}

// timeline records what runnables do, in order.
type timeline struct {
	mu     sync.Mutex
	events []string
}

func (l *timeline) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *timeline) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// leaderWork is a leader-only runnable that records its start and stop,
// and closes started once it started.
func leaderWork(l *timeline, id string, started chan<- struct{}) controller.Runnable {
	return controller.RunnableFunc(func(ctx context.Context) error {
		l.add(id + " start")
		close(started)
		<-ctx.Done()
		l.add(id + " stop")
		return nil
	})
}

// cacheLike is a runnable with HasSynced, as informers have: a Manager runs
// it whether it leads or not.
type cacheLike struct{ started chan struct{} }

func (c *cacheLike) Run(ctx context.Context) error {
	close(c.started)
	<-ctx.Done()
	return nil
}

func (c *cacheLike) HasSynced() bool { return true }

func elected(m *controller.Manager) bool {
	select {
	case <-m.Elected():
		return true
	default:
		return false
	}
}

// TestLeaderElectionHandsOver runs two managers on one Lease: the first
// leads and renews, the second waits; when the first is cancelled it stops
// its work and releases the Lease, and the second takes over at once.
func TestLeaderElectionHandsOver(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	cfg := s.RESTConfig()
	leases := must(client.New[coordinationv1.Lease](cfg, leaseResource))
	var tl timeline

	a, err := controller.NewManager(controller.ManagerOptions{LeaderElection: election(cfg, "a", nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(leaderWork(&tl, "a", make(chan struct{}))); err != nil {
		t.Fatal(err)
	}
	stopA := run(t, a)
	await(t, a.Elected(), "a to lead")
	first := waitLease(t, leases, func(l *coordinationv1.Lease) bool {
		return l.Spec.RenewTime.After(l.Spec.AcquireTime.Time) // renewed at least once
	})
	if holder(first) != "a" || *first.Spec.LeaseTransitions != 0 || *first.Spec.LeaseDurationSeconds != 2 {
		t.Fatalf("lease after a acquired and renewed it: %+v", first.Spec)
	}

	seenByB := make(chan string, 16)
	b, err := controller.NewManager(controller.ManagerOptions{LeaderElection: election(cfg, "b", seenByB)})
	if err != nil {
		t.Fatal(err)
	}
	bStarted := make(chan struct{})
	if err := b.Add(leaderWork(&tl, "b", bStarted)); err != nil {
		t.Fatal(err)
	}
	bCache := &cacheLike{started: make(chan struct{})}
	if err := b.Add(bCache); err != nil {
		t.Fatal(err)
	}
	run(t, b)
	await(t, bCache.started, "b's cache to run while b waits") // caches run on standbys too
	if got := await(t, seenByB, "b to see the leader"); got != "a" {
		t.Fatalf("b sees %q lead, want a", got)
	}
	if elected(b) {
		t.Fatal("b leads while a holds the lease")
	}

	stopA() // returns once a stopped its work and released the lease
	await(t, b.Elected(), "b to take over")
	var seen []string
	for len(seen) == 0 || seen[len(seen)-1] != "b" {
		seen = append(seen, await(t, seenByB, "b to see itself lead"))
	}
	if !slices.Equal(seen, []string{"", "b"}) {
		t.Errorf("b saw holders %q after a stopped, want the release then itself", seen)
	}
	second := waitLease(t, leases, func(l *coordinationv1.Lease) bool { return holder(l) == "b" })
	if *second.Spec.LeaseTransitions != 1 || !second.Spec.AcquireTime.After(first.Spec.AcquireTime.Time) {
		t.Errorf("lease after b took over: %+v, before: %+v", second.Spec, first.Spec)
	}
	await(t, bStarted, "b to start its work")
	if want := []string{"a start", "a stop", "b start"}; !slices.Equal(tl.get(), want) {
		t.Errorf("timeline %q, want %q", tl.get(), want)
	}
}

// TestLeaderTakesOverExpiredLease starts a manager on a Lease whose holder
// stopped renewing: it waits one lease duration on its own clock from when it
// first saw the Lease, then takes it over and counts a transition.
func TestLeaderTakesOverExpiredLease(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	cfg := s.RESTConfig()
	leases := must(client.New[coordinationv1.Lease](cfg, leaseResource))
	clock := newFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	past := metav1.NewMicroTime(clock.Now().Add(-time.Hour))
	dead := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "widget-controller"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: new("dead"), LeaseDurationSeconds: new(int32(30)),
			AcquireTime: &past, RenewTime: &past, LeaseTransitions: new(int32(4)),
		},
	}
	if _, err := leases.Create(t.Context(), dead, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 16)
	le := election(cfg, "heir", seen)
	le.Now = clock.Now
	m, err := controller.NewManager(controller.ManagerOptions{LeaderElection: le})
	if err != nil {
		t.Fatal(err)
	}
	run(t, m)
	if got := await(t, seen, "the heir to see the lease"); got != "dead" {
		t.Fatalf("the heir sees %q hold the lease, want dead", got)
	}
	clock.Advance(29 * time.Second)
	clock.awaitReads(t, 2) // one whole attempt after the advance
	if l := must(leases.Get(t.Context(), "default", "widget-controller")); holder(l) != "dead" || elected(m) {
		t.Fatalf("the heir took a lease 29s into its 30s term: %+v", l.Spec)
	}
	clock.Advance(2 * time.Second)
	await(t, m.Elected(), "the heir to take over")
	l := waitLease(t, leases, func(l *coordinationv1.Lease) bool { return holder(l) == "heir" })
	if *l.Spec.LeaseTransitions != 5 || *l.Spec.LeaseDurationSeconds != 2 || !l.Spec.AcquireTime.Time.Equal(clock.Now()) {
		t.Errorf("taken-over lease: %+v", l.Spec)
	}
}

// fakeClock is a clock the test moves, and that tells the test when it is
// read.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	reads chan struct{} // a value per read, dropped when full
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, reads: make(chan struct{}, 1024)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case c.reads <- struct{}{}:
	default:
	}
	return c.now
}

// Advance moves the clock on by d and forgets earlier reads.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for len(c.reads) > 0 {
		<-c.reads
	}
}

// awaitReads waits until the clock has been read n times since the last
// Advance.
func (c *fakeClock) awaitReads(t *testing.T, n int) {
	t.Helper()
	for range n {
		await(t, c.reads, "the clock to be read")
	}
}

// TestLeaderElectionInteropsWithClientGo shares one Lease between a Manager
// and client-go's leaderelection: each waits while the other leads, and takes
// over when the other releases.
func TestLeaderElectionInteropsWithClientGo(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	cfg := s.RESTConfig()
	leases := must(client.New[coordinationv1.Lease](cfg, leaseResource))
	cs := must(kubernetes.NewForConfig(cfg))

	// client-go leads first.
	kubeLed := make(chan struct{})
	kubeCtx, stopKube := context.WithCancel(t.Context())
	kubeDone := make(chan struct{})
	go func() {
		defer close(kubeDone)
		leaderelection.RunOrDie(kubeCtx, clientGoConfig(cs, "client-go", func(context.Context) { close(kubeLed) }, nil))
	}()
	t.Cleanup(func() { stopKube(); <-kubeDone })
	await(t, kubeLed, "client-go to lead")

	seen := make(chan string, 16)
	m, err := controller.NewManager(controller.ManagerOptions{LeaderElection: election(cfg, "setpoint", seen)})
	if err != nil {
		t.Fatal(err)
	}
	stopM := run(t, m)
	if got := await(t, seen, "the manager to see client-go lead"); got != "client-go" || elected(m) {
		t.Fatalf("the manager sees %q lead (elected %v), want client-go", got, elected(m))
	}
	stopKube()
	<-kubeDone
	await(t, m.Elected(), "the manager to take over from client-go")
	l := waitLease(t, leases, func(l *coordinationv1.Lease) bool { return holder(l) == "setpoint" })
	if *l.Spec.LeaseTransitions != 1 {
		t.Errorf("lease after the manager took over: %+v", l.Spec)
	}

	// client-go waits for the manager, then takes over when it releases.
	newLeader := make(chan string, 16)
	kubeLed2 := make(chan struct{})
	kubeCtx2, stopKube2 := context.WithCancel(t.Context())
	kubeDone2 := make(chan struct{})
	go func() {
		defer close(kubeDone2)
		leaderelection.RunOrDie(kubeCtx2, clientGoConfig(cs, "client-go-2", func(context.Context) { close(kubeLed2) }, newLeader))
	}()
	t.Cleanup(func() { stopKube2(); <-kubeDone2 })
	if got := await(t, newLeader, "client-go to see the manager lead"); got != "setpoint" {
		t.Fatalf("client-go sees %q lead, want setpoint", got)
	}
	stopM()
	await(t, kubeLed2, "client-go to take over from the manager")
	l = waitLease(t, leases, func(l *coordinationv1.Lease) bool { return holder(l) == "client-go-2" })
	if *l.Spec.LeaseTransitions != 2 {
		t.Errorf("lease after client-go took over: %+v", l.Spec)
	}
}

// clientGoConfig is a client-go leader election on the test Lease.
func clientGoConfig(cs kubernetes.Interface, id string, led func(context.Context), newLeader chan<- string) leaderelection.LeaderElectionConfig {
	return leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: "default", Name: "widget-controller"},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		},
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 20 * time.Millisecond,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: led,
			OnStoppedLeading: func() {},
			OnNewLeader: func(identity string) {
				if newLeader != nil && identity != id {
					newLeader <- identity
				}
			},
		},
	}
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// waitLease watches the test Lease until cond holds, and returns it.
func waitLease(t *testing.T, leases *client.Client[coordinationv1.Lease, *coordinationv1.Lease], cond func(*coordinationv1.Lease) bool) *coordinationv1.Lease {
	t.Helper()
	ctx := t.Context()
	l, err := leases.Get(ctx, "default", "widget-controller")
	if err != nil {
		t.Fatal(err)
	}
	if cond(l) {
		return l
	}
	w, err := leases.Watch(ctx, "default", metav1.ListOptions{FieldSelector: "metadata.name=widget-controller", ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.Events() {
		if ev.Object != nil && ev.Object.Name == "widget-controller" && cond(ev.Object) {
			return ev.Object
		}
	}
	t.Fatalf("the lease's watch ended before the condition held: %v", w.Err())
	return nil
}

// TestLeaderElectionLost takes the Lease away from a leader behind its back:
// it stops its leader-only work once it has failed to renew for
// RenewDeadline, and Run returns ErrLeaderElectionLost.
func TestLeaderElectionLost(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	cfg := s.RESTConfig()
	leases := must(client.New[coordinationv1.Lease](cfg, leaseResource))
	var tl timeline
	m, err := controller.NewManager(controller.ManagerOptions{LeaderElection: election(cfg, "a", nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add(leaderWork(&tl, "a", make(chan struct{}))); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(t.Context()) }()
	await(t, m.Elected(), "a to lead")

	l := waitLease(t, leases, func(l *coordinationv1.Lease) bool { return holder(l) == "a" })
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity = new("usurper")
	l.Spec.LeaseDurationSeconds = new(int32(3600))
	l.Spec.RenewTime = &now
	for {
		_, err := leases.Update(t.Context(), l, metav1.UpdateOptions{})
		if err == nil {
			break
		}
		if !client.IsConflict(err) { // a renewed in between: take the new version
			t.Fatal(err)
		}
		l = must(leases.Get(t.Context(), "default", "widget-controller"))
		l.Spec.HolderIdentity = new("usurper")
		l.Spec.LeaseDurationSeconds = new(int32(3600))
		l.Spec.RenewTime = &now
	}
	if err := await(t, done, "a to give up"); !errors.Is(err, controller.ErrLeaderElectionLost) {
		t.Fatalf("Run returned %v, want ErrLeaderElectionLost", err)
	}
	if want := []string{"a start", "a stop"}; !slices.Equal(tl.get(), want) {
		t.Errorf("timeline %q, want %q", tl.get(), want)
	}
	if l := must(leases.Get(t.Context(), "default", "widget-controller")); holder(l) != "usurper" {
		t.Errorf("the lease's holder is %q after a lost it, want usurper", holder(l))
	}
}
