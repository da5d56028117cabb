package workqueue

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// TestMetrics checks each series under a fake clock, so durations are exact.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics()
	reg.MustRegister(m)
	c := newFakeClock()
	q := newTestQueue(t, c, Options{Name: "pods", Metrics: m})
	other := newTestQueue(t, c, Options{Name: "nodes", Metrics: m})

	q.Add("a")
	q.Add("a") // duplicate: not counted
	q.Add("b")
	other.Add("x")
	c.Step(2 * time.Second)
	q.Get() // a waited 2s
	c.Step(3 * time.Second)
	q.Done("a") // a worked 3s
	q.AddRateLimited("a")
	q.AddRateLimited("a")

	if got := value(t, reg, "workqueue_depth", "pods"); got != 1 {
		t.Errorf("depth = %v, want 1", got)
	}
	if got := value(t, reg, "workqueue_depth", "nodes"); got != 1 {
		t.Errorf("nodes depth = %v, want 1", got)
	}
	if got := value(t, reg, "workqueue_adds_total", "pods"); got != 2 {
		t.Errorf("adds = %v, want 2", got)
	}
	if got := value(t, reg, "workqueue_retries_total", "pods"); got != 2 {
		t.Errorf("retries = %v, want 2", got)
	}
	c.Step(5 * time.Millisecond)
	if got := q.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
	if got := value(t, reg, "workqueue_adds_total", "pods"); got != 3 {
		t.Errorf("adds after backoff = %v, want 3", got)
	}
	if got := value(t, reg, "workqueue_depth", "pods"); got != 2 {
		t.Errorf("depth after backoff = %v, want 2", got)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	wantHist := map[string]float64{
		"workqueue_queue_duration_seconds": 2,
		"workqueue_work_duration_seconds":  3,
	}
	for _, f := range families {
		want, ok := wantHist[f.GetName()]
		if !ok {
			continue
		}
		delete(wantHist, f.GetName())
		h := seriesOf(f, "pods").GetHistogram()
		if h.GetSampleCount() != 1 || h.GetSampleSum() != want {
			t.Errorf("%s: count %d sum %v, want 1 and %v", f.GetName(), h.GetSampleCount(), h.GetSampleSum(), want)
		}
	}
	if len(wantHist) > 0 {
		t.Errorf("histograms not gathered: %v", wantHist)
	}

	q.ShutDown()
	if got := value(t, reg, "workqueue_depth", "pods"); got != 0 {
		t.Errorf("depth after ShutDown = %v, want 0", got)
	}
}

// value gathers reg and returns the gauge or counter value of the series
// called metric with name=queue.
func value(t *testing.T, reg *prometheus.Registry, metric, queue string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
		if m := seriesOf(f, queue); m != nil {
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s{name=%q}", metric, queue)
	return 0
}

// seriesOf returns f's metric labelled name=queue, or nil.
func seriesOf(f *dto.MetricFamily, queue string) *dto.Metric {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "name" && l.GetValue() == queue {
				return m
			}
		}
	}
	return nil
}

// TestMetricsLint checks the series' names and help with Prometheus' linter.
func TestMetricsLint(t *testing.T) {
	m := NewMetrics()
	q := newTestQueue(t, nil, Options{Metrics: m})
	q.Add("a")
	q.Get()
	q.Done("a")
	q.AddRateLimited("a")
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
