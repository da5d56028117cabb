package controller

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a reconcile, the values of the result label of
// setpoint_controller_reconcile_total.
const (
	OutcomeSuccess       = "success"        // no error, nothing requested
	OutcomeRequeue       = "requeue"        // Result.Requeue
	OutcomeRequeueAfter  = "requeue_after"  // Result.RequeueAfter
	OutcomeError         = "error"          // an error, retried with backoff
	OutcomeTerminalError = "terminal_error" // a TerminalError, not retried
	OutcomePanic         = "panic"          // a recovered panic, retried with backoff
)

// Metrics holds the Prometheus metrics of the controllers given it in
// Options.Metrics. It is a prometheus.Collector: the caller registers it once
// with its registry. Its metrics, labelled by controller name, are
//
//	setpoint_controller_reconcile_total{controller,result}      counter
//	setpoint_controller_reconcile_duration_seconds{controller}  histogram
//	setpoint_controller_queue_depth{controller}                 gauge, read at scrape time
type Metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	depth    *prometheus.Desc

	mu     sync.Mutex
	queues map[string]func() int // controller name -> queue length
}

// NewMetrics returns metrics no controller reports to yet.
func NewMetrics() *Metrics {
	return &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "setpoint_controller_reconcile_total",
			Help: "Reconciles by controller and outcome.",
		}, []string{"controller", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "setpoint_controller_reconcile_duration_seconds",
			Help:    "Time a reconcile took, by controller.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"controller"}),
		depth: prometheus.NewDesc("setpoint_controller_queue_depth",
			"Keys waiting in the controller's work queue.", []string{"controller"}, nil),
		queues: map[string]func() int{},
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.total.Describe(ch)
	m.duration.Describe(ch)
	ch <- m.depth
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.total.Collect(ch)
	m.duration.Collect(ch)
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, length := range m.queues {
		ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(length()), name)
	}
}

// addQueue reports the depth of a controller's queue; controller names must
// be unique per Metrics.
func (m *Metrics) addQueue(name string, length func() int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.queues[name]; ok {
		return fmt.Errorf("controller: metrics: a controller named %q already reports here", name)
	}
	m.queues[name] = length
	return nil
}

func (m *Metrics) observe(name, outcome string, seconds float64) {
	m.total.WithLabelValues(name, outcome).Inc()
	m.duration.WithLabelValues(name).Observe(seconds)
}
