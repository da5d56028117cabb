package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// quietControllerRuntime gives controller-runtime a logger once, so it does
// not complain that none was set.
var quietControllerRuntime sync.Once

// newWidgetManager builds a controller-runtime manager for namespace ns
// with one controller that sets status.phase to "Seen" and
// status.observedGeneration to the generation of every widget.
func newWidgetManager(t *testing.T, cfg *rest.Config, ns string, opts manager.Options) manager.Manager {
	t.Helper()
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	opts.Metrics = metricsserver.Options{BindAddress: "0"}
	opts.HealthProbeBindAddress = "0"
	opts.Cache = ctrlcache.Options{DefaultNamespaces: map[string]ctrlcache.Config{ns: {}}}
	mgr, err := manager.New(cfg, opts)
	if err != nil {
		t.Fatalf("controller-runtime manager: %v", err)
	}
	newWidget := func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(widgetsGVR.GroupVersion().WithKind("Widget"))
		return u
	}
	rec := reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		u := newWidget()
		if err := mgr.GetClient().Get(ctx, req.NamespacedName, u); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
		if g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); g == u.GetGeneration() {
			return reconcile.Result{}, nil
		}
		patch := client.MergeFrom(u.DeepCopy())
		if err := unstructured.SetNestedField(u.Object, "Seen", "status", "phase"); err != nil {
			return reconcile.Result{}, err
		}
		if err := unstructured.SetNestedField(u.Object, u.GetGeneration(), "status", "observedGeneration"); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, mgr.GetClient().Status().Patch(ctx, u, patch)
	})
	if err := builder.ControllerManagedBy(mgr).Named("widgets-" + ns).For(newWidget()).Complete(rec); err != nil {
		t.Fatalf("controller: %v", err)
	}
	return mgr
}

// startManager starts mgr until the test ends or stop is called, and fails
// the test if it stops with an error. stop cancels the manager's context
// and waits for Start to return.
func startManager(t testing.TB, mgr manager.Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("controller-runtime manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitObserved waits until every widget in ns reports status.phase Seen
// for its current generation.
func waitObserved(t *testing.T, c *clients, ns string, want int) {
	t.Helper()
	ctx := testContext(t, time.Minute)
	wc := c.widgets(ns)
	list, err := wc.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}
	for _, it := range list.Items {
		if !observed(&it) {
			pending[it.GetName()] = true
		}
	}
	if len(list.Items) != want {
		t.Fatalf("%d widgets in %s, want %d", len(list.Items), ns, want)
	}
	if len(pending) == 0 {
		return
	}
	w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for len(pending) > 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended with %v not reconciled", pending)
			}
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && observed(u) {
				delete(pending, u.GetName())
			}
		case <-ctx.Done():
			t.Fatalf("the controller did not reconcile %v within a minute", pending)
		}
	}
}

// observed reports whether the controller reported on u's current spec.
func observed(u *unstructured.Unstructured) bool {
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return phase == "Seen" && g == u.GetGeneration()
}

// TestControllerRuntime runs a controller-runtime manager against the
// server: its cache syncs, the controller reconciles existing and new
// objects and spec changes, and its cached client answers label selectors.
func TestControllerRuntime(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "ctrl")
	wc := c.widgets("ctrl")
	for i := range 3 {
		mustCreate(t, ctx, wc, widget("ctrl", fmt.Sprintf("before-%d", i), map[string]string{"when": "before"}, validSpec()))
	}
	mgr := newWidgetManager(t, s.restConfig(), "ctrl", manager.Options{})
	startManager(t, mgr)
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("controller-runtime cache did not sync")
	}
	for i := range 3 {
		mustCreate(t, ctx, wc, widget("ctrl", fmt.Sprintf("after-%d", i), map[string]string{"when": "after"}, validSpec()))
	}
	waitObserved(t, c, "ctrl", 6)

	if _, err := wc.Patch(ctx, "before-1", types.MergePatchType, []byte(`{"spec":{"size":9}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitObserved(t, c, "ctrl", 6)

	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(widgetsGVR.GroupVersion().WithKind("WidgetList"))
	if err := mgr.GetClient().List(ctx, list, client.InNamespace("ctrl"), client.MatchingLabels{"when": "after"}); err != nil {
		t.Fatalf("cached list: %v", err)
	}
	if len(list.Items) != 3 {
		t.Errorf("cached list when=after: %v, want 3 widgets", names(list.Items))
	}
	// A direct (uncached) read through the API reader.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(widgetsGVR.GroupVersion().WithKind("Widget"))
	if err := mgr.GetAPIReader().Get(ctx, client.ObjectKey{Namespace: "ctrl", Name: "before-1"}, u); err != nil || u.GetGeneration() != 2 {
		t.Errorf("API reader get before-1: generation %d, %v", u.GetGeneration(), err)
	}
}

// requireLeases fails the test unless the server serves
// coordination.k8s.io/v1 Leases.
func requireLeases(t *testing.T, s *server) {
	t.Helper()
	if !servesResource(t, s, "coordination.k8s.io/v1", "leases") {
		t.Fatal("the server does not serve coordination.k8s.io/v1 Leases: leader election cannot be tested")
	}
}

// leaseHistory gets the operator's Lease in ns (waiting for it to exist),
// or watches it from resourceVersion from, until cond holds. It returns
// every version seen, in order; the last one satisfies cond.
func leaseHistory(t *testing.T, c *clients, ns string, from string, cond func(*coordinationv1.Lease) bool) []*coordinationv1.Lease {
	t.Helper()
	ctx := testContext(t, time.Minute)
	lc := c.core.CoordinationV1().Leases(ns)
	sel := fields.OneTermEqualSelector("metadata.name", electionID).String()
	var seen []*coordinationv1.Lease
	if from == "" {
		list, err := lc.List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			t.Fatalf("list leases: %v", err)
		}
		if len(list.Items) == 1 {
			l := &list.Items[0]
			seen = append(seen, l)
			if cond(l) {
				return seen
			}
		}
		from = list.ResourceVersion
	}
	w, err := lc.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: from})
	if err != nil {
		t.Fatalf("watch lease: %v", err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		l, ok := ev.Object.(*coordinationv1.Lease)
		if !ok || ev.Type == watch.Deleted {
			t.Fatalf("lease watch: %s %v", ev.Type, ev.Object)
		}
		seen = append(seen, l)
		if cond(l) {
			return seen
		}
	}
	t.Fatalf("lease %s/%s: watch ended with holders %q before the condition held (%v)", ns, electionID, holders(seen), ctx.Err())
	return nil
}

// holders returns the holderIdentity of each version of a Lease.
func holders(versions []*coordinationv1.Lease) []string {
	out := make([]string, 0, len(versions))
	for _, l := range versions {
		out = append(out, ptr.Deref(l.Spec.HolderIdentity, ""))
	}
	return out
}

// last returns the last element of versions.
func last(versions []*coordinationv1.Lease) *coordinationv1.Lease {
	return versions[len(versions)-1]
}

// heldBy returns a Lease condition: identity holds it.
func heldBy(identity string) func(*coordinationv1.Lease) bool {
	return func(l *coordinationv1.Lease) bool { return ptr.Deref(l.Spec.HolderIdentity, "") == identity }
}

// elected reports whether mgr has been elected leader.
func elected(mgr manager.Manager) bool {
	select {
	case <-mgr.Elected():
		return true
	default:
		return false
	}
}

// wantLeaderEvent waits until a core v1 Event on the operator's Lease in
// ns reports that identity became leader, as controller-runtime's lock
// records it.
func wantLeaderEvent(t *testing.T, c *clients, ns, identity string) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	ec := c.core.CoreV1().Events(ns)
	match := func(e *corev1.Event) bool {
		return e.InvolvedObject.Kind == "Lease" && e.InvolvedObject.Name == electionID && e.Reason == "LeaderElection" &&
			e.Message == identity+" became leader" && e.Source.Component == identity
	}
	list, err := ec.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list core v1 Events: %v", err)
	}
	for i := range list.Items {
		if match(&list.Items[i]) {
			return
		}
	}
	w, err := ec.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("watch core v1 Events: %v", err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if e, ok := ev.Object.(*corev1.Event); ok && match(e) {
			return
		}
	}
	t.Fatalf("no core v1 Event says %q became leader of %s/%s (%v)", identity, ns, electionID, ctx.Err())
}

// TestControllerRuntimeLeaderElection runs two operator managers electing a
// leader on the same coordination.k8s.io/v1 Lease: exactly one is elected,
// the Lease names it and only its reconciler runs. Cancelling it releases
// the Lease (LeaderElectionReleaseOnCancel) and the other takes over at
// once. It fails if the server does not serve Leases.
func TestControllerRuntimeLeaderElection(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	requireLeases(t, s)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	installOperatorCRDs(t, c)
	createNamespace(t, c, "elect")
	cl := newDirectClient(t, s)

	a := newOperatorManager(t, s.restConfig(), "elect", "manager-a")
	b := newOperatorManager(t, s.restConfig(), "elect", "manager-b")
	managers := map[string]*operatorManager{"manager-a": a, "manager-b": b}
	stops := map[string]func(){"manager-a": startManager(t, a), "manager-b": startManager(t, b)}

	lease := last(leaseHistory(t, c, "elect", "", func(l *coordinationv1.Lease) bool { return ptr.Deref(l.Spec.HolderIdentity, "") != "" }))
	leaderID := *lease.Spec.HolderIdentity
	leader, ok := managers[leaderID]
	if !ok {
		t.Fatalf("lease holderIdentity %q names neither manager", leaderID)
	}
	followerID := "manager-a"
	if leaderID == followerID {
		followerID = "manager-b"
	}
	follower := managers[followerID]
	if d := ptr.Deref(lease.Spec.LeaseDurationSeconds, 0); d != int32(testLeaseDuration/time.Second) || lease.Spec.AcquireTime == nil || lease.Spec.RenewTime == nil {
		t.Errorf("lease spec %+v, want leaseDurationSeconds %d and acquire/renew times", lease.Spec, int32(testLeaseDuration/time.Second))
	}
	select {
	case <-leader.Elected():
	case <-ctx.Done():
		t.Fatalf("%s holds the lease but was not elected", leaderID)
	}

	first := client.ObjectKey{Namespace: "elect", Name: "first"}
	if err := cl.Create(ctx, pipeline("elect", "first", "alpine", "only")); err != nil {
		t.Fatal(err)
	}
	waitPipeline(t, c, "elect", "first", synced)
	if leader.count(first) == 0 || follower.total() != 0 || elected(follower) {
		t.Fatalf("leader %s reconciled first %d times; follower %s reconciled %d times (elected %v), want only the leader",
			leaderID, leader.count(first), followerID, follower.total(), elected(follower))
	}

	// The leader steps down: it releases the lease and the follower takes
	// over without waiting for the lease to expire.
	stopped := time.Now()
	stops[leaderID]()
	history := leaseHistory(t, c, "elect", lease.ResourceVersion, heldBy(followerID))
	taken := last(history)
	t.Logf("%s took over %v after %s was told to stop", followerID, time.Since(stopped).Round(time.Millisecond), leaderID)
	// The leader may have renewed the lease before it stopped.
	seen := slices.Compact(holders(history))
	if seen[0] == leaderID {
		seen = seen[1:]
	}
	if !slices.Equal(seen, []string{"", followerID}) {
		t.Errorf("holders after the leader stopped %q, want the release (\"\"), then %s", seen, followerID)
	}
	if got, want := ptr.Deref(taken.Spec.LeaseTransitions, 0), ptr.Deref(lease.Spec.LeaseTransitions, 0)+1; got != want {
		t.Errorf("leaseTransitions %d, want %d", got, want)
	}
	select {
	case <-follower.Elected():
	case <-ctx.Done():
		t.Fatalf("%s holds the lease but was not elected", followerID)
	}
	second := client.ObjectKey{Namespace: "elect", Name: "second"}
	before := leader.total()
	if err := cl.Create(ctx, pipeline("elect", "second", "alpine", "only")); err != nil {
		t.Fatal(err)
	}
	waitPipeline(t, c, "elect", "second", synced)
	if follower.count(second) == 0 || leader.total() != before {
		t.Errorf("new leader %s reconciled second %d times; stopped %s reconciled %d more times",
			followerID, follower.count(second), leaderID, leader.total()-before)
	}

	t.Run("Events", func(t *testing.T) {
		if !servesResource(t, s, "v1", "events") {
			t.Fatal("the server does not serve v1 Events")
		}
		wantLeaderEvent(t, c, "elect", leaderID)
		wantLeaderEvent(t, c, "elect", followerID)
	})
}

// Environment of the operator manager process that
// TestControllerRuntimeLeaderElectionAbruptStop starts and kills.
const (
	managerProcessEnv    = "E2E_OPERATOR_MANAGER"
	managerKubeconfigEnv = "E2E_OPERATOR_KUBECONFIG"
	managerNamespaceEnv  = "E2E_OPERATOR_NAMESPACE"
)

// TestOperatorManagerProcess is not a test: it is the operator manager
// process TestControllerRuntimeLeaderElectionAbruptStop runs (the test
// binary again) and kills. It prints "elected" once elected and
// "reconciled ns/name" for every reconcile, and runs until killed.
func TestOperatorManagerProcess(t *testing.T) {
	identity := os.Getenv(managerProcessEnv)
	if identity == "" {
		t.Skip("runs only as the manager process of TestControllerRuntimeLeaderElectionAbruptStop")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv(managerKubeconfigEnv))
	if err != nil {
		t.Fatal(err)
	}
	mgr := newOperatorManager(t, cfg, os.Getenv(managerNamespaceEnv), identity)
	mgr.report = func(key client.ObjectKey) { fmt.Printf("reconciled %s\n", key) }
	// The parent kills this process; the timeout only bounds an orphan.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-mgr.Elected():
			fmt.Println("elected")
		case <-ctx.Done():
		}
	}()
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// managerProcess is a running TestOperatorManagerProcess.
type managerProcess struct {
	cmd    *exec.Cmd
	lines  chan string
	exited chan struct{}
}

// startManagerProcess runs the operator manager, holding identity, in a
// process of its own on s's namespace ns. The test kills it at the latest
// when it ends.
func startManagerProcess(t *testing.T, s *server, ns, identity string) *managerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOperatorManagerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		managerProcessEnv+"="+identity,
		managerKubeconfigEnv+"="+s.kubeconfig,
		managerNamespaceEnv+"="+ns,
		"SETPOINT_BIN="+setpointBin,
	)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lineLog{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the manager process: %v", err)
	}
	p := &managerProcess{cmd: cmd, lines: make(chan string, 1024), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("manager process stderr:\n%s", stderr.String())
		}
	})
	return p
}

// kill sends SIGKILL and waits until the process is gone.
func (p *managerProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// waitLine reads the process's output until a line equal to want.
func (p *managerProcess) waitLine(t *testing.T, want string) {
	t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("the manager process exited before printing %q", want)
			}
			if line == want {
				return
			}
		case <-timeout.C:
			t.Fatalf("the manager process did not print %q within a minute", want)
		}
	}
}

// TestControllerRuntimeLeaderElectionAbruptStop kills -9 the leading
// operator manager, a process of its own: the Lease is not released, and
// the standby manager takes over once it has expired, then reconciles.
func TestControllerRuntimeLeaderElectionAbruptStop(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	requireLeases(t, s)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	installOperatorCRDs(t, c)
	createNamespace(t, c, "abrupt")
	cl := newDirectClient(t, s)

	killed := startManagerProcess(t, s, "abrupt", "manager-killed")
	killed.waitLine(t, "elected")
	lease := last(leaseHistory(t, c, "abrupt", "", heldBy("manager-killed")))
	standby := newOperatorManager(t, s.restConfig(), "abrupt", "manager-standby")
	startManager(t, standby)

	if err := cl.Create(ctx, pipeline("abrupt", "first", "alpine", "only")); err != nil {
		t.Fatal(err)
	}
	waitPipeline(t, c, "abrupt", "first", synced)
	killed.waitLine(t, "reconciled abrupt/first")
	if standby.total() != 0 || elected(standby) {
		t.Fatalf("the standby reconciled %d times (elected %v) while the other manager led", standby.total(), elected(standby))
	}

	killed.kill()
	history := leaseHistory(t, c, "abrupt", lease.ResourceVersion, heldBy("manager-standby"))
	taken := last(history)
	// The killed leader's renewals up to its death, then the takeover: no
	// release.
	seen := slices.Compact(holders(history))
	if !slices.Equal(seen, []string{"manager-killed", "manager-standby"}) && !slices.Equal(seen, []string{"manager-standby"}) {
		t.Errorf("holders after the kill %q, want the standby's takeover only (no release)", seen)
	}
	lastRenewal := lease.Spec.RenewTime
	for _, l := range history[:len(history)-1] {
		lastRenewal = l.Spec.RenewTime
	}
	gap := taken.Spec.AcquireTime.Sub(lastRenewal.Time)
	t.Logf("the standby acquired the lease %v after the killed leader's last renewal (lease duration %v)", gap, testLeaseDuration)
	if gap < testLeaseDuration {
		t.Errorf("the standby acquired the lease %v after the dead leader's last renewal, want at least the lease duration %v", gap, testLeaseDuration)
	}
	if got, want := ptr.Deref(taken.Spec.LeaseTransitions, 0), ptr.Deref(lease.Spec.LeaseTransitions, 0)+1; got != want {
		t.Errorf("leaseTransitions %d, want %d", got, want)
	}
	select {
	case <-standby.Elected():
	case <-ctx.Done():
		t.Fatal("the standby holds the lease but was not elected")
	}
	second := client.ObjectKey{Namespace: "abrupt", Name: "second"}
	if err := cl.Create(ctx, pipeline("abrupt", "second", "alpine", "only")); err != nil {
		t.Fatal(err)
	}
	waitPipeline(t, c, "abrupt", "second", synced)
	if standby.count(second) == 0 {
		t.Error("the new leader did not reconcile the pipeline created after the takeover")
	}
}
