package main

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func mt(t time.Time) *metav1.MicroTime { return ptr(metav1.NewMicroTime(t)) }

// TestAdvance walks one run through advance's decisions with a fixed clock:
// claim, wait for another's claim, renew, complete and claim the next step
// in one write, take over a lapsed claim, finish.
func TestAdvance(t *testing.T) {
	const lease = 10 * time.Second
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r := &PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Generation: 1},
		Spec: PipelineRunSpec{Steps: []Step{{Name: "a", Duration: "30s"}, {Name: "b", Duration: "1s"}}}}

	p := advance(r, "w1", lease, t0)
	s := r.Status.Steps
	if !p.write || p.claimed != "a" || p.after != lease/2 || s[0].Holder != "w1" || s[0].Attempts != 1 || r.Status.Phase != PhaseRunning || r.Status.ObservedGeneration != 1 {
		t.Fatalf("first advance: %+v, status %+v", p, r.Status)
	}

	// Another worker waits for w1's claim to lapse, and writes nothing.
	if p := advance(copyRun(r), "w2", lease, t0.Add(time.Second)); p.write || p.after != 9*time.Second {
		t.Fatalf("w2 while w1 holds a: %+v", p)
	}

	// w1 renews its claim once half the lease is gone.
	if p := advance(r, "w1", lease, t0.Add(4*time.Second)); p.write || p.after != time.Second {
		t.Fatalf("w1 before renewing: %+v", p)
	}
	p = advance(r, "w1", lease, t0.Add(5*time.Second))
	if !p.write || !r.Status.Steps[0].ClaimExpires.Equal(mt(t0.Add(15*time.Second))) || p.after != 5*time.Second {
		t.Fatalf("w1 renewing: %+v, claim until %v", p, r.Status.Steps[0].ClaimExpires)
	}

	// w1 stops renewing; once its claim lapsed, w2 takes a over and starts
	// its work again.
	p = advance(r, "w2", lease, t0.Add(15*time.Second))
	a := r.Status.Steps[0]
	if !p.write || p.claimed != "a" || a.Holder != "w2" || a.Attempts != 2 || !a.StartedAt.Equal(mt(t0.Add(15*time.Second))) {
		t.Fatalf("w2 taking over: %+v, step %+v", p, a)
	}
	// w1 comes back: the step is w2's now.
	if p := advance(copyRun(r), "w1", lease, t0.Add(16*time.Second)); p.write {
		t.Fatalf("w1 after losing a: %+v", p)
	}

	// w2 completes a after 30s of its own attempt, and claims b in the
	// same write.
	p = advance(r, "w2", lease, t0.Add(45*time.Second))
	if !p.write || len(p.completed) != 1 || p.completed[0] != "a" || p.claimed != "b" || r.Status.CompletedSteps != 1 || r.Status.Steps[0].CompletedBy != "w2" {
		t.Fatalf("w2 completing a: %+v, status %+v", p, r.Status)
	}
	p = advance(r, "w2", lease, t0.Add(46*time.Second))
	if !p.write || r.Status.Phase != PhaseSucceeded || r.Status.CompletedSteps != 2 || succeededCondition(r).Status != metav1.ConditionTrue {
		t.Fatalf("w2 completing b: %+v, status %+v", p, r.Status)
	}
	if p := advance(r, "w1", lease, t0.Add(50*time.Second)); p.write || p.after != 0 {
		t.Fatalf("advance of a finished run: %+v", p)
	}

	// A new step in the spec runs after the finished ones.
	r.Generation = 2
	r.Spec.Steps = append(r.Spec.Steps, Step{Name: "c", Duration: "0s"})
	p = advance(r, "w1", lease, t0.Add(60*time.Second))
	if !p.write || p.claimed != "c" || r.Status.ObservedGeneration != 2 || r.Status.CompletedSteps != 2 || r.Status.Steps[1].State != PhaseSucceeded {
		t.Fatalf("after adding step c: %+v, status %+v", p, r.Status)
	}
}

// TestAdvanceInvalidSpec: steps the schema lets through but advance cannot
// run (repeated names) fail the run once, with the reason in its condition.
func TestAdvanceInvalidSpec(t *testing.T) {
	r := &PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Generation: 3},
		Spec: PipelineRunSpec{Steps: []Step{{Name: "a", Duration: "1s"}, {Name: "a", Duration: "1s"}}}}
	p := advance(r, "w1", time.Second, time.Now())
	c := succeededCondition(r)
	if !p.write || r.Status.Phase != PhaseFailed || c == nil || c.Status != metav1.ConditionFalse || c.Reason != "InvalidSpec" || r.Status.ObservedGeneration != 3 {
		t.Fatalf("invalid spec: %+v, status %+v", p, r.Status)
	}
	if p := advance(r, "w2", time.Second, time.Now()); p.write {
		t.Fatalf("second advance of a failed run wrote: %+v", p)
	}
}
