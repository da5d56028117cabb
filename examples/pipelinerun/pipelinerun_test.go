package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/setpointtest"
	"github.com/setpoint/setpoint/pkg/shard"
)

var crdResource = client.Resource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions", Kind: "CustomResourceDefinition"}

// installCRD creates the CRD of crd.yaml and waits until it is Established.
func installCRD(t *testing.T, cfg *rest.Config) {
	t.Helper()
	data, err := os.ReadFile("crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatalf("decoding crd.yaml: %v", err)
	}
	crds, err := client.New[apiextv1.CustomResourceDefinition](cfg, crdResource)
	if err != nil {
		t.Fatal(err)
	}
	created, err := crds.Create(t.Context(), crd, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the CRD: %v", err)
	}
	w, err := crds.Watch(t.Context(), "", metav1.ListOptions{FieldSelector: "metadata.name=" + crd.Name, ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for obj := created; ; {
		for _, c := range obj.Status.Conditions {
			if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
				return
			}
		}
		ev, ok := <-w.Events()
		if !ok {
			t.Fatalf("the CRD watch ended before it was Established: %v", w.Err())
		}
		if ev.Type != watch.Bookmark {
			obj = ev.Object
		}
	}
}

func newRuns(t *testing.T) (*rest.Config, *client.Client[PipelineRun, *PipelineRun]) {
	t.Helper()
	cfg := setpointtest.Start(t, setpointtest.Options{}).RESTConfig()
	installCRD(t, cfg)
	runs, err := client.New[PipelineRun](cfg, pipelineRunResource)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, runs
}

// TestSamples creates the sample runs of pipelinerun.yaml: the CRD's schema
// accepts them and their steps parse.
func TestSamples(t *testing.T) {
	_, runs := newRuns(t)
	data, err := os.ReadFile("pipelinerun.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		r := &PipelineRun{}
		if err := yaml.UnmarshalStrict([]byte(doc), r); err != nil {
			t.Fatalf("decoding a sample: %v", err)
		}
		if _, err := parseSteps(r.Spec.Steps); err != nil {
			t.Errorf("sample %s: %v", r.Name, err)
		}
		r.Namespace = "default"
		if _, err := runs.Create(t.Context(), r, metav1.CreateOptions{}); err != nil {
			t.Errorf("creating sample %s: %v", r.Name, err)
		}
	}
}

// TestSchemaRejectsBadDurations: the CRD's pattern turns away a duration
// that is not a Go duration, with 422.
func TestSchemaRejectsBadDurations(t *testing.T) {
	_, runs := newRuns(t)
	r := &PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bad"},
		Spec: PipelineRunSpec{Steps: []Step{{Name: "a", Duration: "soon"}}}}
	if _, err := runs.Create(t.Context(), r, metav1.CreateOptions{}); !client.IsInvalid(err) {
		t.Fatalf("creating a run with duration %q: got %v, want 422 Invalid", "soon", err)
	}
}

// worker is one in-process worker and what it reported.
type worker struct {
	id     string
	cancel context.CancelFunc
	done   chan error
	err    error // what run returned, once stopped

	stopOnce sync.Once

	mu        sync.Mutex
	completed map[string]int // "run/step" -> completions recorded
	total     int
	changed   chan struct{} // closed and replaced on every completion
}

func startWorker(t *testing.T, cfg *rest.Config, id string, lease time.Duration, so *shard.Options) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{id: id, cancel: cancel, done: make(chan error, 1), completed: map[string]int{}, changed: make(chan struct{})}
	go func() {
		w.done <- run(ctx, cfg, options{
			Namespace: "default", Identity: id, Workers: 2, Lease: lease, Shard: so,
			Logger: slog.New(slog.DiscardHandler),
			OnStepDone: func(r controller.Request, step string) {
				w.mu.Lock()
				w.completed[r.Name+"/"+step]++
				w.total++
				close(w.changed)
				w.changed = make(chan struct{})
				w.mu.Unlock()
			},
		})
	}()
	t.Cleanup(func() {
		w.stop()
		if w.err != nil {
			t.Errorf("worker %s: %v", id, w.err)
		}
	})
	return w
}

// stop ends the worker as a crash would for the others: its claims stay.
// It returns once the worker's goroutines have stopped.
func (w *worker) stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		w.err = <-w.done
	})
}

// completions returns the steps the worker recorded as done, how often.
func (w *worker) completions() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.completed)
}

// awaitCompletions waits until the worker recorded n completions in all.
// The server's watch can show a status before the worker that wrote it
// has its answer, so the test waits for the worker too.
func (w *worker) awaitCompletions(ctx context.Context, n int) error {
	for {
		w.mu.Lock()
		total, changed := w.total, w.changed
		w.mu.Unlock()
		if total >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("worker %s recorded %d completions, want %d: %w", w.id, total, n, ctx.Err())
		}
	}
}

// TestCrashedWorkersStepsAreRetried runs two workers on eight runs, stops
// whichever is first seen holding a claim, and checks that every run
// succeeds: each step recorded as done exactly once, and every step the
// stopped worker had claimed without finishing taken over and finished by
// the other worker in a second attempt. The workers coordinate by claims
// alone, or also share the runs with pkg/shard.
func TestCrashedWorkersStepsAreRetried(t *testing.T) {
	t.Run("claims", func(t *testing.T) { testCrashedWorker(t, nil) })
	t.Run("sharded", func(t *testing.T) {
		testCrashedWorker(t, &shard.Options{Namespace: "default", LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RenewPeriod: 250 * time.Millisecond})
	})
}

func testCrashedWorker(t *testing.T, so *shard.Options) {
	cfg, runs := newRuns(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	const n = 8
	steps := []Step{{Name: "checkout", Duration: "3s"}, {Name: "build", Duration: "200ms"}, {Name: "test", Duration: "100ms"}}
	list, err := runs.List(ctx, "default", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	watcher, err := runs.Watch(ctx, "default", metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Stop()
	for i := range n {
		r := &PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("run-%d", i)}, Spec: PipelineRunSpec{Steps: steps}}
		if _, err := runs.Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	const lease = time.Second
	workers := map[string]*worker{}
	for _, id := range []string{"worker-a", "worker-b"} {
		workers[id] = startWorker(t, cfg, id, lease, so)
	}

	// claimed is every run/step each worker was seen holding.
	claimed := map[string]map[string]bool{}
	last := map[string]*PipelineRun{}
	next := func() *PipelineRun {
		t.Helper()
		for {
			select {
			case ev, ok := <-watcher.Events():
				if !ok {
					t.Fatalf("watch ended: %v", watcher.Err())
				}
				if ev.Type == watch.Bookmark {
					continue
				}
				r := ev.Object
				last[r.Name] = r
				for _, s := range r.Status.Steps {
					if s.Holder != "" {
						if claimed[s.Holder] == nil {
							claimed[s.Holder] = map[string]bool{}
						}
						claimed[s.Holder][r.Name+"/"+s.Name] = true
					}
				}
				return r
			case <-ctx.Done():
				t.Fatalf("timed out; last states: %s", describe(last))
			}
		}
	}
	for len(claimed) == 0 {
		next()
	}
	var victim, survivor *worker
	for id, w := range workers {
		if claimed[id] != nil && victim == nil {
			victim = w
		} else {
			survivor = w
		}
	}
	victim.stop() // the victim "crashes" holding its claims
	victimDone := victim.completions()

	for succeeded := 0; succeeded < n; {
		if r := next(); r.Status.Phase == PhaseSucceeded {
			succeeded = 0
			for _, r := range last {
				if r.Status.Phase == PhaseSucceeded {
					succeeded++
				}
			}
		}
	}
	if err := survivor.awaitCompletions(ctx, n*len(steps)-len(victimDone)); err != nil {
		t.Fatal(err)
	}
	survivor.stop()
	survivorDone := survivor.completions()
	// Claims the victim wrote just before it stopped may show in the watch
	// only later, so its claims are read once everything is done.
	victimClaimed := claimed[victim.id]

	retried := 0
	for name, r := range last {
		if got := len(r.Status.Steps); got != len(steps) {
			t.Fatalf("%s has %d step statuses, want %d", name, got, len(steps))
		}
		if c := succeededCondition(r); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("%s: condition Succeeded = %v, want True", name, c)
		}
		if r.Status.CompletedSteps != len(steps) || r.Status.ObservedGeneration != r.Generation {
			t.Errorf("%s: completedSteps %d observedGeneration %d, want %d and %d", name, r.Status.CompletedSteps, r.Status.ObservedGeneration, len(steps), r.Generation)
		}
		for _, s := range r.Status.Steps {
			key := name + "/" + s.Name
			if s.State != PhaseSucceeded || s.Holder != "" || s.FinishedAt == nil {
				t.Errorf("%s: state %s holder %q, want Succeeded without holder", key, s.State, s.Holder)
			}
			if got := victimDone[key] + survivorDone[key]; got != 1 {
				t.Errorf("%s recorded done %d times (%d by the stopped worker), want once", key, got, victimDone[key])
			}
			if want := map[bool]string{true: victim.id, false: survivor.id}[victimDone[key] == 1]; s.CompletedBy != want {
				t.Errorf("%s completed by %q, want %q", key, s.CompletedBy, want)
			}
			if victimClaimed[key] && victimDone[key] == 0 {
				retried++
				if s.Attempts != 2 {
					t.Errorf("%s was claimed by the stopped worker: %d attempts, want 2", key, s.Attempts)
				}
			} else if s.Attempts != 1 {
				t.Errorf("%s: %d attempts, want 1", key, s.Attempts)
			}
		}
	}
	if retried == 0 {
		t.Errorf("no step of the stopped worker was retried; it claimed %v and finished %v", victimClaimed, victimDone)
	}
	t.Logf("%s claimed %d steps and finished %d before it stopped; %s finished %d, %d of them retried",
		victim.id, len(victimClaimed), len(victimDone), survivor.id, len(survivorDone), retried)
}

func succeededCondition(r *PipelineRun) *metav1.Condition {
	for i, c := range r.Status.Conditions {
		if c.Type == ConditionSucceeded {
			return &r.Status.Conditions[i]
		}
	}
	return nil
}

func describe(runs map[string]*PipelineRun) string {
	var b strings.Builder
	for name, r := range runs {
		fmt.Fprintf(&b, "\n%s %s:", name, r.Status.Phase)
		for _, s := range r.Status.Steps {
			fmt.Fprintf(&b, " %s=%s/%s/%d", s.Name, s.State, s.Holder, s.Attempts)
		}
	}
	return b.String()
}
