package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/yaml"

	opsv1 "github.com/setpoint/setpoint/test/e2e/operator/api/v1"
)

// The operator's names: the label that selects a Pipeline's Stages and the
// name its event recorder reports as.
const (
	pipelineLabel   = "ops.e2e.setpoint.dev/pipeline"
	operatorName    = "pipeline-operator"
	readyCondition  = "Ready"
	stageFieldOwner = "pipeline-operator"
)

var pipelinesGVR = opsv1.GroupVersion.WithResource("pipelines")

// operatorScheme knows the built-in types (Leases, Events) and the
// operator's.
func operatorScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := opsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// installOperatorCRDs creates the CRDs controller-gen generated from the
// operator's types (testdata/crds) and waits until they are Established.
func installOperatorCRDs(t testing.TB, c *clients) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "crds", "*.yaml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("controller-gen CRDs in testdata/crds: %v (%v)", files, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		installCRD(t, c, crd)
	}
}

// pipelineReconciler keeps one Stage per entry of a Pipeline's spec, owned
// by the Pipeline, and reports in the Pipeline's status: Status().Update
// when it acts on a new generation, Status().Patch when it restores Stages
// someone else changed or deleted. It records an events.k8s.io/v1 Event
// for both.
type pipelineReconciler struct {
	client   client.Client
	scheme   *runtime.Scheme
	recorder recorder.EventRecorder
	// onReconcile, when set, hears of every reconcile that found its
	// Pipeline.
	onReconcile func(key client.ObjectKey)
}

// Reconcile brings req's Stages and status in line with its spec.
func (r *pipelineReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	p := &opsv1.Pipeline{}
	if err := r.client.Get(ctx, req.NamespacedName, p); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if r.onReconcile != nil {
		r.onReconcile(req.NamespacedName)
	}
	if !p.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	var have opsv1.StageList
	if err := r.client.List(ctx, &have, client.InNamespace(p.Namespace), client.MatchingLabels{pipelineLabel: p.Name}); err != nil {
		return reconcile.Result{}, err
	}
	existing := map[string]*opsv1.Stage{}
	for i := range have.Items {
		existing[have.Items[i].Name] = &have.Items[i]
	}
	newGeneration := p.Status.ObservedGeneration != p.Generation
	changed := 0
	for i, tmpl := range p.Spec.Stages {
		name := p.Name + "-" + tmpl.Name
		want := opsv1.StageSpec{Pipeline: p.Name, Index: int32(i), Image: tmpl.Image, Replicas: ptr.Deref(p.Spec.Replicas, 1)}
		st, ok := existing[name]
		delete(existing, name)
		switch {
		case !ok:
			st = &opsv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: name, Labels: map[string]string{pipelineLabel: p.Name}}, Spec: want}
			if err := controllerutil.SetControllerReference(p, st, r.scheme); err != nil {
				return reconcile.Result{}, err
			}
			err := r.client.Create(ctx, st, client.FieldOwner(stageFieldOwner))
			if apierrors.IsAlreadyExists(err) {
				// The cache has not seen our own earlier create yet.
				continue
			}
			if err != nil {
				return reconcile.Result{}, err
			}
			changed++
		case st.Spec != want:
			st.Spec = want
			if err := r.client.Update(ctx, st, client.FieldOwner(stageFieldOwner)); err != nil {
				return reconcile.Result{}, err
			}
			changed++
		}
	}
	for _, stale := range existing {
		if err := r.client.Delete(ctx, stale, client.Preconditions{UID: &stale.UID}); client.IgnoreNotFound(err) != nil {
			return reconcile.Result{}, err
		}
	}
	if newGeneration {
		return reconcile.Result{}, r.updateStatus(ctx, p)
	}
	if changed > 0 {
		return reconcile.Result{}, r.patchRepairs(ctx, p, changed)
	}
	return reconcile.Result{}, nil
}

// updateStatus writes the whole status for p's current generation through
// the status subresource.
func (r *pipelineReconciler) updateStatus(ctx context.Context, p *opsv1.Pipeline) error {
	n := int32(len(p.Spec.Stages))
	p.Status.ObservedGeneration = p.Generation
	p.Status.Stages = n
	p.Status.Replicas = ptr.Deref(p.Spec.Replicas, 1)
	p.Status.Selector = pipelineLabel + "=" + p.Name
	p.Status.Phase = "Pending"
	cond := metav1.Condition{Type: readyCondition, Status: metav1.ConditionFalse, Reason: "NoStages", Message: "the pipeline has no stages", ObservedGeneration: p.Generation}
	if n > 0 {
		p.Status.Phase = "Ready"
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "StagesInPlace", fmt.Sprintf("%d stages in place", n)
	}
	meta.SetStatusCondition(&p.Status.Conditions, cond)
	if err := r.client.Status().Update(ctx, p); err != nil {
		return err
	}
	r.recorder.Eventf(p, nil, "Normal", "Synced", "Reconcile", "generation %d: %d stages", p.Generation, n)
	return nil
}

// patchRepairs adds n to p's status.repairs with a merge patch on the
// status subresource.
func (r *pipelineReconciler) patchRepairs(ctx context.Context, p *opsv1.Pipeline, n int) error {
	base := p.DeepCopy()
	p.Status.Repairs += int32(n)
	if err := r.client.Status().Patch(ctx, p, client.MergeFrom(base)); err != nil {
		return err
	}
	r.recorder.Eventf(p, nil, "Warning", "Repaired", "RestoreStages", "restored %d stages", n)
	return nil
}

// operatorManager is one manager running the pipeline operator and what its
// reconciler did.
type operatorManager struct {
	manager.Manager
	// report, when set before Start, hears of every reconcile that found
	// its Pipeline.
	report     func(client.ObjectKey)
	mu         sync.Mutex
	reconciled map[client.ObjectKey]int
}

// count returns how often the manager's reconciler handled key.
func (m *operatorManager) count(key client.ObjectKey) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reconciled[key]
}

// total returns how many reconciles found their Pipeline.
func (m *operatorManager) total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.reconciled {
		n += c
	}
	return n
}

// Timings of leader election short enough for a test, long enough for a
// busy machine.
var (
	testLeaseDuration = 8 * time.Second
	testRenewDeadline = 6 * time.Second
	testRetryPeriod   = 500 * time.Millisecond
)

// newOperatorManager builds a manager for namespace ns running the pipeline
// operator. With a non-empty identity it elects a leader on the Lease
// electionID in ns, holding it as identity and releasing it when stopped.
func newOperatorManager(t testing.TB, cfg *rest.Config, ns, identity string) *operatorManager {
	t.Helper()
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	scheme := operatorScheme(t)
	opts := manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  ctrlcache.Options{DefaultNamespaces: map[string]ctrlcache.Config{ns: {}}},
		// Several managers in one test process run a controller of the
		// same name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	var lock *resourcelock.LeaseLock
	if identity != "" {
		coord, err := coordinationv1client.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// controller-runtime's own lock, built the way it builds it, but
		// with an identity the test knows instead of hostname_uuid.
		lock = &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: electionID},
			Client:     coord,
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		}
		opts.LeaderElection = true
		opts.LeaderElectionID = electionID
		opts.LeaderElectionNamespace = ns
		opts.LeaderElectionResourceLockInterface = lock
		opts.LeaderElectionReleaseOnCancel = true
		opts.LeaseDuration = &testLeaseDuration
		opts.RenewDeadline = &testRenewDeadline
		opts.RetryPeriod = &testRetryPeriod
	}
	mgr, err := manager.New(cfg, opts)
	if err != nil {
		t.Fatalf("controller-runtime manager: %v", err)
	}
	if lock != nil {
		// As controller-runtime does: the lock reports leadership changes
		// as core v1 Events.
		lock.LockConfig.EventRecorder = mgr.GetEventRecorderFor(identity) //nolint:staticcheck // the lock takes the core v1 recorder
	}
	om := &operatorManager{Manager: mgr, reconciled: map[client.ObjectKey]int{}}
	r := &pipelineReconciler{
		client:   mgr.GetClient(),
		scheme:   scheme,
		recorder: mgr.GetEventRecorder(operatorName),
		onReconcile: func(key client.ObjectKey) {
			om.mu.Lock()
			om.reconciled[key]++
			om.mu.Unlock()
			if om.report != nil {
				om.report(key)
			}
		},
	}
	err = builder.ControllerManagedBy(mgr).
		For(&opsv1.Pipeline{}).
		Owns(&opsv1.Stage{}).
		Complete(r)
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	return om
}

// electionID names the Lease the operator's managers elect a leader on.
const electionID = "pipeline-operator-lock"

// newDirectClient is a controller-runtime client without a cache, for the
// test's own reads and writes.
func newDirectClient(t testing.TB, s *server) client.Client {
	t.Helper()
	cl, err := client.New(s.restConfig(), client.Options{Scheme: operatorScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// pipeline builds a Pipeline with one stage per name, each running image.
func pipeline(ns, name, image string, stages ...string) *opsv1.Pipeline {
	p := &opsv1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, s := range stages {
		p.Spec.Stages = append(p.Spec.Stages, opsv1.StageTemplate{Name: s, Image: image})
	}
	return p
}

// waitPipeline watches the Pipeline ns/name until cond holds.
func waitPipeline(t testing.TB, c *clients, ns, name string, cond func(*opsv1.Pipeline) bool) *opsv1.Pipeline {
	t.Helper()
	var p *opsv1.Pipeline
	waitForObject(t, c.dynamic.Resource(pipelinesGVR).Namespace(ns), name, func(u *unstructured.Unstructured) bool {
		p = &opsv1.Pipeline{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p); err != nil {
			t.Fatalf("pipeline %s: %v", name, err)
		}
		return cond(p)
	})
	return p
}

// synced reports whether the operator acted on p's current generation.
func synced(p *opsv1.Pipeline) bool {
	return p.Status.ObservedGeneration == p.Generation
}

// stagesOf lists the Stages of Pipeline name in ns through the API, sorted
// by index.
func stagesOf(t testing.TB, ctx context.Context, cl client.Client, ns, name string) []opsv1.Stage {
	t.Helper()
	var list opsv1.StageList
	if err := cl.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{pipelineLabel: name}); err != nil {
		t.Fatalf("list stages of %s: %v", name, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Spec.Index < list.Items[j].Spec.Index })
	return list.Items
}

// wantOwnedBy fails the test unless st's only owner reference is p as its
// controller, blocking p's deletion.
func wantOwnedBy(t testing.TB, st *opsv1.Stage, p *opsv1.Pipeline) {
	t.Helper()
	refs := st.GetOwnerReferences()
	want := metav1.OwnerReference{
		APIVersion: opsv1.GroupVersion.String(), Kind: "Pipeline", Name: p.Name, UID: p.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
	if len(refs) != 1 || refs[0].APIVersion != want.APIVersion || refs[0].Kind != want.Kind || refs[0].Name != want.Name ||
		refs[0].UID != want.UID || !ptr.Deref(refs[0].Controller, false) || !ptr.Deref(refs[0].BlockOwnerDeletion, false) {
		t.Errorf("stage %s ownerReferences %+v, want [%+v]", st.Name, refs, want)
	}
}

// servesResource reports whether discovery lists resource (which may name a
// subresource, "pipelines/scale") in groupVersion.
func servesResource(t testing.TB, s *server, groupVersion, resource string) bool {
	t.Helper()
	c := newClients(t, s)
	list, err := c.core.Discovery().ServerResourcesForGroupVersion(groupVersion)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("discovery of %s: %v", groupVersion, err)
	}
	for _, r := range list.APIResources {
		if r.Name == resource {
			return true
		}
	}
	return false
}

// TestControllerRuntimeOperator runs a typed controller-runtime operator on
// CRDs controller-gen generated: the manager's cache syncs; the reconciler
// creates Stages with controller owner references, updates them when the
// spec changes, deletes the ones the spec drops; Owns() brings it back when
// someone changes or deletes a Stage; it reports through the status
// subresource with Status().Update and Status().Patch; the server applies
// the CRD's defaults and printer columns.
func TestControllerRuntimeOperator(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	installOperatorCRDs(t, c)
	createNamespace(t, c, "ops")
	cl := newDirectClient(t, s)

	mgr := newOperatorManager(t, s.restConfig(), "ops", "")
	startManager(t, mgr)
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("controller-runtime cache did not sync")
	}

	p := pipeline("ops", "build", "golang:1.26", "fetch", "compile")
	if err := cl.Create(ctx, p); err != nil {
		t.Fatalf("create pipeline: %v", err)
	}
	if p.Spec.Replicas == nil || *p.Spec.Replicas != 1 {
		t.Errorf("spec.replicas %v, want the CRD's default 1", p.Spec.Replicas)
	}
	got := waitPipeline(t, c, "ops", "build", synced)
	if got.Status.Phase != "Ready" || got.Status.Stages != 2 || got.Status.Replicas != 1 || got.Status.Selector != pipelineLabel+"=build" {
		t.Errorf("status %+v, want Ready with 2 stages, 1 replica and its selector", got.Status)
	}
	if cond := meta.FindStatusCondition(got.Status.Conditions, readyCondition); cond == nil || cond.Status != metav1.ConditionTrue || cond.ObservedGeneration != got.Generation || cond.LastTransitionTime.IsZero() {
		t.Errorf("Ready condition %+v, want True for generation %d", cond, got.Generation)
	}
	stages := stagesOf(t, ctx, cl, "ops", "build")
	if len(stages) != 2 || stages[0].Name != "build-fetch" || stages[1].Name != "build-compile" {
		t.Fatalf("stages %v, want build-fetch and build-compile", stageNames(stages))
	}
	for i := range stages {
		wantOwnedBy(t, &stages[i], got)
		if stages[i].Spec != (opsv1.StageSpec{Pipeline: "build", Index: int32(i), Image: "golang:1.26", Replicas: 1}) {
			t.Errorf("stage %s spec %+v", stages[i].Name, stages[i].Spec)
		}
	}

	t.Run("SpecChange", func(t *testing.T) {
		// A new image, a new stage at the end, one stage dropped.
		cur := &opsv1.Pipeline{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
			t.Fatal(err)
		}
		cur.Spec.Stages = []opsv1.StageTemplate{{Name: "compile", Image: "golang:1.27"}, {Name: "test", Image: "golang:1.27"}}
		cur.Spec.Replicas = ptr.To[int32](2)
		if err := cl.Update(ctx, cur); err != nil {
			t.Fatalf("update pipeline: %v", err)
		}
		got := waitPipeline(t, c, "ops", "build", func(p *opsv1.Pipeline) bool { return p.Generation == cur.Generation && synced(p) })
		if got.Status.Stages != 2 || got.Status.Replicas != 2 {
			t.Errorf("status %+v, want 2 stages and 2 replicas", got.Status)
		}
		stages := stagesOf(t, ctx, cl, "ops", "build")
		if len(stages) != 2 || stages[0].Name != "build-compile" || stages[1].Name != "build-test" {
			t.Fatalf("stages %v, want build-compile and build-test", stageNames(stages))
		}
		for i, st := range stages {
			if st.Spec != (opsv1.StageSpec{Pipeline: "build", Index: int32(i), Image: "golang:1.27", Replicas: 2}) {
				t.Errorf("stage %s spec %+v", st.Name, st.Spec)
			}
		}
		wantNotFound(t, ctx, c.dynamic.Resource(opsv1.GroupVersion.WithResource("stages")).Namespace("ops"), "build-fetch")
	})

	t.Run("OwnedStageChanged", func(t *testing.T) {
		before := waitPipeline(t, c, "ops", "build", synced)
		st := &opsv1.Stage{}
		if err := cl.Get(ctx, client.ObjectKey{Namespace: "ops", Name: "build-test"}, st); err != nil {
			t.Fatal(err)
		}
		st.Spec.Image = "busybox"
		if err := cl.Update(ctx, st); err != nil {
			t.Fatalf("update stage: %v", err)
		}
		got := waitPipeline(t, c, "ops", "build", func(p *opsv1.Pipeline) bool { return p.Status.Repairs > before.Status.Repairs })
		if got.Status.ObservedGeneration != before.Status.ObservedGeneration || got.Status.Stages != 2 {
			t.Errorf("status after the repair %+v, want the rest as before (%+v)", got.Status, before.Status)
		}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(st), st); err != nil || st.Spec.Image != "golang:1.27" {
			t.Errorf("stage build-test image %q (%v), want it restored to golang:1.27", st.Spec.Image, err)
		}
	})

	t.Run("OwnedStageDeleted", func(t *testing.T) {
		before := waitPipeline(t, c, "ops", "build", synced)
		st := &opsv1.Stage{}
		if err := cl.Get(ctx, client.ObjectKey{Namespace: "ops", Name: "build-compile"}, st); err != nil {
			t.Fatal(err)
		}
		if err := cl.Delete(ctx, st); err != nil {
			t.Fatalf("delete stage: %v", err)
		}
		waitPipeline(t, c, "ops", "build", func(p *opsv1.Pipeline) bool { return p.Status.Repairs > before.Status.Repairs })
		again := &opsv1.Stage{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(st), again); err != nil || again.UID == st.UID {
			t.Fatalf("stage build-compile after delete: uid %s (was %s), %v; want it recreated", again.UID, st.UID, err)
		}
		wantOwnedBy(t, again, before)
	})

	t.Run("PrinterColumns", func(t *testing.T) {
		raw, err := c.core.Discovery().RESTClient().Get().AbsPath("/apis/ops.e2e.setpoint.dev/v1/namespaces/ops/pipelines").
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
		if err != nil {
			t.Fatalf("pipelines as a Table: %v (%s)", err, raw)
		}
		var table metav1.Table
		if err := json.Unmarshal(raw, &table); err != nil {
			t.Fatalf("decode Table: %v\n%s", err, raw)
		}
		var cols []string
		for _, col := range table.ColumnDefinitions {
			cols = append(cols, fmt.Sprintf("%s/%d", col.Name, col.Priority))
		}
		if fmt.Sprint(cols) != "[Name/0 Stages/0 Replicas/0 Phase/0 Repairs/1 Age/0]" {
			t.Errorf("table columns %v", cols)
		}
		if len(table.Rows) != 1 || len(table.Rows[0].Cells) != 6 {
			t.Fatalf("table rows %+v, want one row of 6 cells", table.Rows)
		}
		if cells := fmt.Sprint(table.Rows[0].Cells[:4]); cells != "[build 2 2 Ready]" {
			t.Errorf("row %s, want [build 2 2 Ready]", cells)
		}
	})

	t.Run("ScaleSubresource", func(t *testing.T) {
		if !servesResource(t, s, opsv1.GroupVersion.String(), "pipelines/scale") {
			t.Fatal("the server does not serve the scale subresource of custom resources")
		}
		cur := waitPipeline(t, c, "ops", "build", synced)
		replicas := ptr.Deref(cur.Spec.Replicas, 0)
		scale := &autoscalingv1.Scale{}
		if err := cl.SubResource("scale").Get(ctx, cur, scale); err != nil {
			t.Fatalf("get scale: %v", err)
		}
		if scale.Name != "build" || scale.Spec.Replicas != replicas || scale.Status.Replicas != replicas || scale.Status.Selector != pipelineLabel+"=build" {
			t.Errorf("scale %+v, want %d replicas and the pipeline's selector", scale, replicas)
		}
		scale.Spec.Replicas = replicas + 1
		if err := cl.SubResource("scale").Update(ctx, cur, client.WithSubResourceBody(scale)); err != nil {
			t.Fatalf("update scale: %v", err)
		}
		got := waitPipeline(t, c, "ops", "build", func(p *opsv1.Pipeline) bool { return synced(p) && p.Status.Replicas == replicas+1 })
		if got.Generation <= cur.Generation || ptr.Deref(got.Spec.Replicas, 0) != replicas+1 {
			t.Errorf("after scaling: generation %d (was %d), spec.replicas %v, want a new generation with %d", got.Generation, cur.Generation, got.Spec.Replicas, replicas+1)
		}
		for _, st := range stagesOf(t, ctx, cl, "ops", "build") {
			if st.Spec.Replicas != replicas+1 {
				t.Errorf("stage %s replicas %d, want %d", st.Name, st.Spec.Replicas, replicas+1)
			}
		}
	})

	t.Run("Events", func(t *testing.T) {
		if !servesResource(t, s, "events.k8s.io/v1", "events") {
			t.Fatal("the server does not serve events.k8s.io/v1 Events")
		}
		synced := wantPipelineEvent(t, c, "ops", "build", "Normal", "Synced")
		repaired := wantPipelineEvent(t, c, "ops", "build", "Warning", "Repaired")
		if repaired.Action != "RestoreStages" || repaired.Note != "restored 1 stages" || repaired.Regarding.UID != p.UID {
			t.Errorf("Repaired event: action %q note %q regarding %+v", repaired.Action, repaired.Note, repaired.Regarding)
		}
		if !servesResource(t, s, "v1", "events") {
			return
		}
		// kubectl describe reads core v1 Events: the same Event is there.
		core, err := c.core.CoreV1().Events("ops").Get(ctx, synced.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the Synced event through core v1: %v", err)
		}
		if core.InvolvedObject.Kind != "Pipeline" || core.InvolvedObject.Name != "build" || core.Reason != "Synced" ||
			core.Message != synced.Note || core.ReportingController != operatorName {
			t.Errorf("core v1 view of the Synced event: involvedObject %+v reason %q message %q reportingComponent %q",
				core.InvolvedObject, core.Reason, core.Message, core.ReportingController)
		}
	})
}

// stageNames returns the names of stages, in order.
func stageNames(stages []opsv1.Stage) []string {
	out := make([]string, 0, len(stages))
	for _, st := range stages {
		out = append(out, st.Name)
	}
	return out
}

// wantPipelineEvent waits until an events.k8s.io/v1 Event of the operator
// with type and reason regards the Pipeline ns/name.
func wantPipelineEvent(t *testing.T, c *clients, ns, name, typ, reason string) *eventsv1.Event {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	ec := c.core.EventsV1().Events(ns)
	match := func(e *eventsv1.Event) bool {
		return e.Regarding.Kind == "Pipeline" && e.Regarding.APIVersion == opsv1.GroupVersion.String() && e.Regarding.Name == name &&
			e.Type == typ && e.Reason == reason && e.ReportingController == operatorName
	}
	list, err := ec.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list events.k8s.io/v1 Events: %v", err)
	}
	for i := range list.Items {
		if match(&list.Items[i]) {
			return &list.Items[i]
		}
	}
	w, err := ec.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("watch events.k8s.io/v1 Events: %v", err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if e, ok := ev.Object.(*eventsv1.Event); ok && ev.Type != watch.Deleted && match(e) {
			return e
		}
	}
	t.Fatalf("no %s %s events.k8s.io/v1 Event regarding Pipeline %s/%s (%v)", typ, reason, ns, name, ctx.Err())
	return nil
}

// waitStageGone waits until the Stage ns/name no longer exists.
func waitStageGone(t *testing.T, c *clients, ns, name string) {
	t.Helper()
	sc := c.dynamic.Resource(opsv1.GroupVersion.WithResource("stages")).Namespace(ns)
	waitResourceGone(t, sc, "stage "+ns+"/"+name, name)
}

// waitResourceGone waits until cl no longer has the object called name.
func waitResourceGone(t *testing.T, cl dynamic.ResourceInterface, what, name string) {
	t.Helper()
	ctx := testContext(t, time.Minute)
	waitGone(t, what, func(o metav1.ListOptions) (string, error) {
		l, err := cl.List(ctx, o)
		if err != nil || len(l.Items) == 0 {
			return "", err
		}
		return l.GetResourceVersion(), nil
	}, func(o metav1.ListOptions) (watch.Interface, error) { return cl.Watch(ctx, o) }, name)
}

// TestControllerRuntimeGarbageCollection deletes Pipelines whose Stages
// carry controller owner references: background propagation deletes the
// Stages after the Pipeline, foreground keeps the Pipeline (with the
// foregroundDeletion finalizer) until its Stages are gone, orphan keeps the
// Stages without the owner reference.
func TestControllerRuntimeGarbageCollection(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	installOperatorCRDs(t, c)
	createNamespace(t, c, "gc")
	cl := newDirectClient(t, s)
	mgr := newOperatorManager(t, s.restConfig(), "gc", "")
	startManager(t, mgr)
	pc := c.dynamic.Resource(pipelinesGVR).Namespace("gc")

	// running creates a Pipeline with stages a and b and waits for them.
	running := func(t *testing.T, ctx context.Context, name string) (*opsv1.Pipeline, []opsv1.Stage) {
		t.Helper()
		if err := cl.Create(ctx, pipeline("gc", name, "alpine", "a", "b")); err != nil {
			t.Fatal(err)
		}
		p := waitPipeline(t, c, "gc", name, synced)
		stages := stagesOf(t, ctx, cl, "gc", name)
		if len(stages) != 2 {
			t.Fatalf("stages of %s: %v", name, stageNames(stages))
		}
		for i := range stages {
			wantOwnedBy(t, &stages[i], p)
		}
		return p, stages
	}

	t.Run("Background", func(t *testing.T) {
		ctx := testContext(t, 2*time.Minute)
		p, stages := running(t, ctx, "bg")
		if err := cl.Delete(ctx, p, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
			t.Fatal(err)
		}
		waitResourceGone(t, pc, "pipeline bg", "bg")
		for _, st := range stages {
			waitStageGone(t, c, "gc", st.Name)
		}
	})

	t.Run("Foreground", func(t *testing.T) {
		ctx := testContext(t, 2*time.Minute)
		p, _ := running(t, ctx, "fg")
		held := &opsv1.Stage{}
		if err := cl.Get(ctx, client.ObjectKey{Namespace: "gc", Name: "fg-a"}, held); err != nil {
			t.Fatal(err)
		}
		held.Finalizers = []string{holdFinalizer}
		if err := cl.Update(ctx, held); err != nil {
			t.Fatal(err)
		}
		if err := cl.Delete(ctx, p, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
			t.Fatal(err)
		}
		waitStageGone(t, c, "gc", "fg-b")
		// fg-a is being deleted but held: the Pipeline waits for it.
		waitForObject(t, c.dynamic.Resource(opsv1.GroupVersion.WithResource("stages")).Namespace("gc"), "fg-a",
			func(u *unstructured.Unstructured) bool { return u.GetDeletionTimestamp() != nil })
		cur := &opsv1.Pipeline{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
			t.Fatalf("pipeline fg while a stage remains: %v, want it kept", err)
		}
		if cur.DeletionTimestamp.IsZero() || !controllerutil.ContainsFinalizer(cur, metav1.FinalizerDeleteDependents) {
			t.Errorf("pipeline fg: deletionTimestamp %v finalizers %v, want it being deleted with %s", cur.DeletionTimestamp, cur.Finalizers, metav1.FinalizerDeleteDependents)
		}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(held), held); err != nil {
			t.Fatal(err)
		}
		held.Finalizers = nil
		if err := cl.Update(ctx, held); err != nil {
			t.Fatal(err)
		}
		waitStageGone(t, c, "gc", "fg-a")
		waitResourceGone(t, pc, "pipeline fg", "fg")
	})

	t.Run("Orphan", func(t *testing.T) {
		ctx := testContext(t, 2*time.Minute)
		p, stages := running(t, ctx, "or")
		if err := cl.Delete(ctx, p, client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil {
			t.Fatal(err)
		}
		waitResourceGone(t, pc, "pipeline or", "or")
		for _, st := range stages {
			got := &opsv1.Stage{}
			if err := cl.Get(ctx, client.ObjectKeyFromObject(&st), got); err != nil || len(got.OwnerReferences) != 0 {
				t.Errorf("orphaned stage %s: ownerReferences %v (%v), want it kept without them", st.Name, got.OwnerReferences, err)
			}
		}
	})
}
