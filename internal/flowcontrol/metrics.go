package flowcontrol

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the flow-control metrics: the gauges read the limiter when
// scraped, so requests only pay for the rejected counter.
type metrics struct {
	rejected *prometheus.CounterVec
}

// newMetrics registers the metrics of lim in reg, when reg is not nil.
func newMetrics(reg prometheus.Registerer, lim *limiter) (*metrics, error) {
	m := &metrics{rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apiserver_flowcontrol_rejected_requests_total",
		Help: "Requests answered 429 by flow control, by reason: queue-full, time-out, cancelled, watch-limit.",
	}, []string{"reason"})}
	if reg == nil {
		return m, nil
	}
	gauge := func(name, help string, read func(inflight, queued, watches int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			return float64(read(lim.counts()))
		})
	}
	for _, c := range []prometheus.Collector{
		m.rejected,
		gauge("apiserver_flowcontrol_current_executing_requests", "Requests other than watches running, exempt ones aside.",
			func(inflight, _, _ int) int { return inflight }),
		gauge("apiserver_flowcontrol_current_inqueue_requests", "Requests waiting for their turn.",
			func(_, queued, _ int) int { return queued }),
		gauge("apiserver_flowcontrol_current_watches", "Watches open, exempt ones aside.",
			func(_, _, watches int) int { return watches }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("flowcontrol: register metrics: %w", err)
		}
	}
	return m, nil
}
