package workqueue

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus series of one or more queues, each queue's
// labelled name=Options.Name. Nothing is registered globally: create one
// with NewMetrics, register it on your registry (it is a
// prometheus.Collector), and pass it in Options.Metrics.
type Metrics struct {
	depth        *prometheus.GaugeVec
	adds         *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	workDuration *prometheus.HistogramVec
	retries      *prometheus.CounterVec
}

// NewMetrics returns unregistered queue metrics:
//
//	workqueue_depth                    keys ready for Get
//	workqueue_adds_total               adds that queued a key (duplicates not counted)
//	workqueue_queue_duration_seconds   time from queued to handed out by Get
//	workqueue_work_duration_seconds    time from Get to Done
//	workqueue_retries_total            AddRateLimited calls
func NewMetrics() *Metrics {
	buckets := prometheus.ExponentialBuckets(1e-6, 10, 10) // 1µs to 1000s
	labels := []string{"name"}
	return &Metrics{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_depth",
			Help: "Keys in the queue ready to be handed out.",
		}, labels),
		adds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workqueue_adds_total",
			Help: "Adds that queued a key; adds of a key already queued are not counted.",
		}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workqueue_queue_duration_seconds",
			Help:    "Seconds a key waited in the queue before a worker got it.",
			Buckets: buckets,
		}, labels),
		workDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workqueue_work_duration_seconds",
			Help:    "Seconds from a worker getting a key to calling Done.",
			Buckets: buckets,
		}, labels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workqueue_retries_total",
			Help: "Keys added again after a backoff (AddRateLimited).",
		}, labels),
	}
}

var _ prometheus.Collector = (*Metrics)(nil)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.depth.Describe(ch)
	m.adds.Describe(ch)
	m.latency.Describe(ch)
	m.workDuration.Describe(ch)
	m.retries.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.depth.Collect(ch)
	m.adds.Collect(ch)
	m.latency.Collect(ch)
	m.workDuration.Collect(ch)
	m.retries.Collect(ch)
}

// queueMetrics are one queue's series; the zero value records nothing.
type queueMetrics struct {
	depth        prometheus.Gauge
	adds         prometheus.Counter
	latency      prometheus.Observer
	workDuration prometheus.Observer
	retries      prometheus.Counter
}

// forQueue binds m's series to the queue called name; a nil m gives the
// zero queueMetrics.
func (m *Metrics) forQueue(name string) queueMetrics {
	if m == nil {
		return queueMetrics{}
	}
	return queueMetrics{
		depth:        m.depth.WithLabelValues(name),
		adds:         m.adds.WithLabelValues(name),
		latency:      m.latency.WithLabelValues(name),
		workDuration: m.workDuration.WithLabelValues(name),
		retries:      m.retries.WithLabelValues(name),
	}
}

func (m queueMetrics) setDepth(n int) {
	if m.depth != nil {
		m.depth.Set(float64(n))
	}
}

func (m queueMetrics) add() {
	if m.adds != nil {
		m.adds.Inc()
	}
}

func (m queueMetrics) retry() {
	if m.retries != nil {
		m.retries.Inc()
	}
}

func (m queueMetrics) observeLatency(d time.Duration) {
	if m.latency != nil {
		m.latency.Observe(d.Seconds())
	}
}

func (m queueMetrics) observeWork(d time.Duration) {
	if m.workDuration != nil {
		m.workDuration.Observe(d.Seconds())
	}
}
