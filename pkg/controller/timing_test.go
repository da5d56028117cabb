package controller_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/controller"
)

// records is a slog.Handler that hands each record's message and attributes
// to the test, in order.
type records chan map[string]string

func (r records) Enabled(context.Context, slog.Level) bool { return true }
func (r records) WithGroup(string) slog.Handler            { return r }

func (r records) WithAttrs(as []slog.Attr) slog.Handler {
	return attrs{r, as}
}

func (r records) Handle(_ context.Context, rec slog.Record) error {
	return attrs{r, nil}.Handle(context.Background(), rec)
}

// attrs is records with attributes added by Logger.With.
type attrs struct {
	r  records
	as []slog.Attr
}

func (a attrs) Enabled(context.Context, slog.Level) bool { return true }
func (a attrs) WithGroup(string) slog.Handler            { return a }
func (a attrs) WithAttrs(as []slog.Attr) slog.Handler {
	return attrs{a.r, append(append([]slog.Attr(nil), a.as...), as...)}
}

func (a attrs) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]string{"msg": rec.Message}
	for _, at := range a.as {
		m[at.Key] = at.Value.String()
	}
	rec.Attrs(func(at slog.Attr) bool {
		m[at.Key] = at.Value.String()
		return true
	})
	if strings.HasPrefix(rec.Message, "reconcile") { // one per reconcile; not start and stop
		a.r <- m
	}
	return nil
}

// timed is a one-worker controller for a widget "t" under a fake clock,
// with its logs and metrics in the test's hands. Widgets named b1, b2...
// are barriers the test creates; they are reconciled at once.
type timed struct {
	e        *env
	barriers int
	clock    *fakeClock
	logs     records
	reg      *prometheus.Registry
	metrics  *controller.Metrics
}

func startTimed(t *testing.T, r controller.Reconciler) *timed {
	t.Helper()
	e := newEnv(t)
	tm := &timed{
		e:       e,
		clock:   newFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)),
		logs:    make(records, 64),
		reg:     prometheus.NewRegistry(),
		metrics: controller.NewMetrics(),
	}
	tm.reg.MustRegister(tm.metrics)
	widgets := e.widgetInformer()
	c, err := controller.For(widgets).WithOptions(controller.Options{
		BaseDelay: time.Second, Now: tm.clock.Now, Logger: slog.New(tm.logs), Metrics: tm.metrics,
	}).Complete(controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
		if req.Name != "t" {
			return controller.Result{}, nil
		}
		return r.Reconcile(ctx, req)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.widgets.Create(t.Context(), widget("t", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	manage(t, widgets, c)
	return tm
}

// next returns the controller's next log record, which says what became of
// a reconcile once the queue has been told.
func (tm *timed) next(t *testing.T) map[string]string {
	t.Helper()
	return await(t, tm.logs, "a reconcile")
}

// depth reads the queue depth metric; reading it also makes the queue take
// in the delayed keys that are due on the fake clock.
func (tm *timed) depth(t *testing.T) float64 {
	t.Helper()
	return gather(t, tm.reg)[`setpoint_controller_queue_depth{controller="widget"}`]
}

// wantDueAfter checks that widget t, just reconciled, is due again exactly
// d later on the fake clock. A barrier widget created 1ms before that is
// reconciled before t: every add first takes in the delayed keys that are
// due, and one worker takes keys in order. Reading the queue depth 1ms later
// takes t in.
func (tm *timed) wantDueAfter(t *testing.T, d time.Duration) {
	t.Helper()
	tm.clock.Advance(d - time.Millisecond)
	tm.barrier(t)
	tm.clock.Advance(time.Millisecond)
	tm.depth(t)
}

// barrier creates the next barrier widget and checks that it is the next
// key reconciled.
func (tm *timed) barrier(t *testing.T) {
	t.Helper()
	tm.barriers++
	name := "b" + strconv.Itoa(tm.barriers)
	if _, err := tm.e.widgets.Create(t.Context(), widget(name, 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rec := tm.next(t); rec["request"] != "default/"+name {
		t.Fatalf("%s was reconciled before barrier %s: %v", rec["request"], name, rec)
	}
}

// TestRequeueAfter reconciles a key again after the delay its Result asked
// for, and not before.
func TestRequeueAfter(t *testing.T) {
	var calls atomic.Int32
	tm := startTimed(t, controller.ReconcilerFunc(func(context.Context, controller.Request) (controller.Result, error) {
		if calls.Add(1) == 1 {
			return controller.Result{RequeueAfter: time.Hour}, nil
		}
		return controller.Result{}, nil
	}))
	if rec := tm.next(t); rec["outcome"] != controller.OutcomeRequeueAfter || rec["request"] != "default/t" {
		t.Fatalf("first reconcile: %v", rec)
	}
	tm.wantDueAfter(t, time.Hour)
	if rec := tm.next(t); rec["outcome"] != controller.OutcomeSuccess {
		t.Fatalf("second reconcile: %v", rec)
	}
}

// TestErrorBackoff retries a failing key after a delay that doubles with each
// failure, and resets the backoff after a success.
func TestErrorBackoff(t *testing.T) {
	var calls atomic.Int32
	tm := startTimed(t, controller.ReconcilerFunc(func(context.Context, controller.Request) (controller.Result, error) {
		switch calls.Add(1) {
		case 1, 2, 3:
			return controller.Result{}, errors.New("not yet")
		case 4:
			return controller.Result{Requeue: true}, nil // backoff goes on
		}
		return controller.Result{}, nil
	}))
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		rec := tm.next(t)
		if rec["msg"] != "reconcile failed; retrying" || rec["error"] != "not yet" || rec["retries"] != []string{"1", "2", "3"}[i] {
			t.Fatalf("failure %d: %v", i+1, rec)
		}
		tm.wantDueAfter(t, d)
	}
	if rec := tm.next(t); rec["outcome"] != controller.OutcomeRequeue || rec["retries"] != "4" {
		t.Fatalf("requeue: %v", rec)
	}
	tm.wantDueAfter(t, 8*time.Second)
	if rec := tm.next(t); rec["outcome"] != controller.OutcomeSuccess {
		t.Fatalf("success: %v", rec)
	}
	got := gather(t, tm.reg)
	for outcome, want := range map[string]float64{"error": 3, "requeue": 1, "success": 1 + float64(tm.barriers)} {
		if v := got[`setpoint_controller_reconcile_total{controller="widget",result="`+outcome+`"}`]; v != want {
			t.Errorf("%s reconciles = %v, want %v", outcome, v, want)
		}
	}
}

// TestTerminalErrorNotRetried logs a TerminalError and does not retry its
// key, however long one waits.
func TestTerminalErrorNotRetried(t *testing.T) {
	var calls atomic.Int32
	tm := startTimed(t, controller.ReconcilerFunc(func(context.Context, controller.Request) (controller.Result, error) {
		calls.Add(1)
		return controller.Result{}, controller.TerminalError(errors.New("spec.size is not a size"))
	}))
	if rec := tm.next(t); rec["msg"] != "reconcile failed; not retrying" || rec["error"] != "terminal error: spec.size is not a size" {
		t.Fatalf("terminal failure: %v", rec)
	}
	tm.clock.Advance(time.Hour)
	tm.barrier(t)
	if calls.Load() != 1 {
		t.Fatalf("a terminal error was retried: %d calls", calls.Load())
	}
	if v := gather(t, tm.reg)[`setpoint_controller_reconcile_total{controller="widget",result="terminal_error"}`]; v != 1 {
		t.Errorf("terminal errors counted %v, want 1", v)
	}
}

// TestTerminalErrorUnwraps checks that errors.Is sees through TerminalError.
func TestTerminalErrorUnwraps(t *testing.T) {
	base := errors.New("bad spec")
	if err := controller.TerminalError(base); !errors.Is(err, base) {
		t.Errorf("errors.Is(TerminalError(err), err) is false for %v", err)
	}
}
