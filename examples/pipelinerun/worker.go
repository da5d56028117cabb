package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/informer"
)

// ConditionSucceeded is the condition a PipelineRun reports: Unknown while
// it runs, True when every step succeeded, False when its spec is invalid.
const ConditionSucceeded = "Succeeded"

// Worker runs the steps of PipelineRuns; it is the example's Reconciler.
// Any number of workers, in one process or many, may run at once. They
// coordinate only through the claims in each run's status, which they
// write with the resourceVersion they read: when two workers race for a
// step, the server accepts one write and answers the other 409 Conflict.
// A claim lasts Lease unless its holder renews it; a worker that crashed
// stops renewing, and once the claim lapses another worker claims the step
// and runs it again. Claims compare wall clocks, so the workers' clocks
// must agree to well within Lease.
type Worker struct {
	// Identity names the worker in claims; workers need distinct ones.
	Identity string
	// Lease is how long a claim lasts without renewal.
	Lease time.Duration
	// Client writes the runs' status.
	Client *client.Client[PipelineRun, *PipelineRun]
	// Cache is the informer the worker reads runs from.
	Cache *informer.Informer[PipelineRun, *PipelineRun]
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnStepDone, when set, is called after the worker recorded a step as
	// succeeded (the tests count completions with it).
	OnStepDone func(run controller.Request, step string)
	// Logger receives claims and completions; default slog.Default().
	Logger *slog.Logger
}

// Reconcile advances the run req names by one write at most: it claims the
// next step, renews or completes the worker's own claim, or waits for
// another worker's claim to finish or lapse.
func (w *Worker) Reconcile(ctx context.Context, req controller.Request) (controller.Result, error) {
	cached, ok := w.Cache.Get(req.Namespace, req.Name)
	if !ok {
		return controller.Result{}, nil
	}
	run := copyRun(cached)
	now := w.now()
	p := advance(run, w.Identity, w.Lease, now)
	if !p.write {
		return controller.Result{RequeueAfter: p.after}, nil
	}
	if _, err := w.Client.UpdateStatus(ctx, run, metav1.UpdateOptions{}); err != nil {
		if client.IsConflict(err) || client.IsNotFound(err) {
			// Another worker wrote first, or the run is gone: the
			// informer's next event brings the key back if needed.
			return controller.Result{Requeue: client.IsConflict(err)}, nil
		}
		return controller.Result{}, fmt.Errorf("updating the status of PipelineRun %s: %w", req, err)
	}
	log := w.logger().With("run", req.String(), "worker", w.Identity)
	for _, s := range p.completed {
		log.Info("step succeeded", "step", s)
		if w.OnStepDone != nil {
			w.OnStepDone(req, s)
		}
	}
	if p.claimed != "" {
		log.Info("step claimed", "step", p.claimed)
	}
	if run.Status.Phase == PhaseSucceeded || run.Status.Phase == PhaseFailed {
		log.Info("run finished", "phase", run.Status.Phase)
	}
	return controller.Result{RequeueAfter: p.after}, nil
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Worker) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}

// plan is what advance decided.
type plan struct {
	write     bool          // the status changed and must be written
	after     time.Duration // look at the run again after this long; 0 = only on change
	completed []string      // steps this write records as succeeded
	claimed   string        // step this write claims
}

// advance moves run's status on as far as worker me may at now, and says
// whether to write it and when to look again. It changes only run.Status.
func advance(run *PipelineRun, me string, lease time.Duration, now time.Time) plan {
	var p plan
	st := &run.Status
	durations, err := parseSteps(run.Spec.Steps)
	if err != nil {
		if st.Phase == PhaseFailed && st.ObservedGeneration == run.Generation {
			return p
		}
		st.ObservedGeneration = run.Generation
		st.Phase = PhaseFailed
		st.CurrentStep = ""
		setCondition(run, metav1.ConditionFalse, "InvalidSpec", err.Error())
		p.write = true
		return p
	}
	if st.ObservedGeneration != run.Generation || len(st.Steps) != len(run.Spec.Steps) {
		syncSteps(run)
		p.write = true
	}
	if st.Phase == "" {
		st.Phase = PhasePending
		setCondition(run, metav1.ConditionUnknown, "Pending", "no step has started")
		p.write = true
	}
	mt := metav1.NewMicroTime(now)
	for i := range st.Steps {
		s := &st.Steps[i]
		if s.State == PhaseSucceeded {
			continue
		}
		claimed := s.State == PhaseRunning && s.ClaimExpires != nil && s.StartedAt != nil
		if claimed && s.Holder == me {
			finish := s.StartedAt.Add(durations[i])
			if now.Before(finish) {
				renewAt := s.ClaimExpires.Add(-lease / 2)
				if !now.Before(renewAt) {
					s.ClaimExpires = ptr(metav1.NewMicroTime(now.Add(lease)))
					renewAt = now.Add(lease / 2)
					p.write = true
				}
				p.after = min(finish.Sub(now), renewAt.Sub(now))
				return p
			}
			// The work is done: record it, and go on to claim the next
			// step in the same write.
			s.State = PhaseSucceeded
			s.FinishedAt = ptr(mt)
			s.CompletedBy = me
			s.Holder = ""
			s.ClaimExpires = nil
			st.CompletedSteps++
			p.completed = append(p.completed, s.Name)
			p.write = true
			continue
		}
		if claimed && now.Before(s.ClaimExpires.Time) {
			// Another worker holds the step: look again when its claim
			// would lapse; its renewals and completion bring events sooner.
			p.after = s.ClaimExpires.Sub(now)
			return p
		}
		// The step is pending, or its holder's claim lapsed: claim it and
		// (re)start its work.
		s.State = PhaseRunning
		s.Holder = me
		s.StartedAt = ptr(mt)
		s.ClaimExpires = ptr(metav1.NewMicroTime(now.Add(lease)))
		s.Attempts++
		st.Phase = PhaseRunning
		st.CurrentStep = s.Name
		setCondition(run, metav1.ConditionUnknown, "Running", fmt.Sprintf("step %s is running on %s", s.Name, me))
		p.claimed = s.Name
		p.write = true
		p.after = max(min(durations[i], lease/2), time.Millisecond)
		return p
	}
	if st.Phase != PhaseSucceeded {
		st.Phase = PhaseSucceeded
		st.CurrentStep = ""
		setCondition(run, metav1.ConditionTrue, "Completed", fmt.Sprintf("all %d steps succeeded", len(st.Steps)))
		p.write = true
	}
	return p
}

// parseSteps returns the duration of every step, or why the steps are
// invalid.
func parseSteps(steps []Step) ([]time.Duration, error) {
	ds := make([]time.Duration, len(steps))
	seen := make(map[string]bool, len(steps))
	for i, s := range steps {
		if s.Name == "" || seen[s.Name] {
			return nil, fmt.Errorf("step %d: the name %q is empty or repeated", i, s.Name)
		}
		seen[s.Name] = true
		d, err := time.ParseDuration(s.Duration)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("step %s: duration %q is not a non-negative Go duration", s.Name, s.Duration)
		}
		ds[i] = d
	}
	return ds, nil
}

// syncSteps rebuilds the step statuses from the spec, keeping the state of
// steps whose names it still lists, and records the generation observed.
func syncSteps(run *PipelineRun) {
	st := &run.Status
	old := make(map[string]StepStatus, len(st.Steps))
	for _, s := range st.Steps {
		old[s.Name] = s
	}
	st.Steps = make([]StepStatus, len(run.Spec.Steps))
	st.CompletedSteps = 0
	for i, s := range run.Spec.Steps {
		st.Steps[i] = StepStatus{Name: s.Name, State: PhasePending}
		if o, ok := old[s.Name]; ok {
			st.Steps[i] = o
		}
		if st.Steps[i].State == PhaseSucceeded {
			st.CompletedSteps++
		}
	}
	if st.Phase == PhaseSucceeded || st.Phase == PhaseFailed {
		st.Phase = PhaseRunning // a new step, or a spec fixed: run again
	}
	st.ObservedGeneration = run.Generation
}

func setCondition(run *PipelineRun, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
		Type: ConditionSucceeded, Status: status, Reason: reason, Message: msg, ObservedGeneration: run.Generation,
	})
}

// copyRun copies a cached run deeply enough for advance to change its
// status: advance replaces the time pointers, never writes through them.
func copyRun(r *PipelineRun) *PipelineRun {
	out := *r
	out.ObjectMeta = *r.ObjectMeta.DeepCopy()
	out.Spec.Steps = slices.Clone(r.Spec.Steps)
	out.Status.Steps = slices.Clone(r.Status.Steps)
	out.Status.Conditions = slices.Clone(r.Status.Conditions)
	return &out
}

func ptr[T any](v T) *T { return &v }
