package apiserver

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the request metrics.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	handler  http.Handler
}

// newMetrics registers the request metrics in reg.
func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Requests by verb, resource and HTTP status code.",
		}, []string{"verb", "resource", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "Request latency by verb and resource (watches: stream duration).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60},
		}, []string{"verb", "resource"}),
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("apiserver: register metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one request; m may be nil.
func (m *metrics) observe(l *metricLabels, code int, d time.Duration) {
	if m == nil {
		return
	}
	if code == 0 {
		code = http.StatusOK
	}
	m.requests.WithLabelValues(l.verb, l.resource, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(l.verb, l.resource).Observe(d.Seconds())
}

// serveMetrics serves /metrics, or 404 when metrics are off.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		s.writeError(w, r, output{}, errNotFound())
		return
	}
	s.metrics.handler.ServeHTTP(w, r)
}
