// Package apiserver serves the registry over HTTP with the Kubernetes REST
// paths, bodies and errors that kubectl and client-go expect.
//
// The package only does HTTP: routing (routes.go), content negotiation
// (negotiate.go), body decoding (decode.go) and encoding (encode.go), one
// file per verb, and one place that turns errors into Status responses
// (status.go). Semantics live in the registry.
package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setpoint/setpoint/internal/registry"
)

// Options configures the HTTP API.
type Options struct {
	// Registry serves the resources. Required.
	Registry *registry.Registry
	// MaxBodyBytes bounds request bodies; larger ones get 413. Default 3 MiB.
	MaxBodyBytes int64
	// Logger receives request errors. Default slog.Default().
	Logger *slog.Logger
	// Ready is checked by /readyz; nil means always ready.
	Ready func(context.Context) error
	// RequestTimeout bounds every request but watches, as Kubernetes'
	// --request-timeout: a request still running then ends with 504
	// Timeout. A shorter timeout query parameter takes precedence.
	// Default 60s.
	RequestTimeout time.Duration
	// Metrics, when not nil, receives the request metrics and is served
	// at /metrics.
	Metrics *prometheus.Registry
}

// Defaults of Options, Kubernetes' own.
const (
	defaultMaxBodyBytes   = 3 << 20
	DefaultRequestTimeout = 60 * time.Second
)

// server is the handler New returns.
type server struct {
	reg     *registry.Registry
	maxBody int64
	log     *slog.Logger
	ready   func(context.Context) error
	// requestTimeout is Options.RequestTimeout with its default.
	requestTimeout time.Duration
	// metrics is nil when Options.Metrics is nil.
	metrics *metrics
}

// New returns the handler for every path the server serves: resources,
// discovery, OpenAPI, /version, /healthz, /livez, /readyz and /metrics.
// It fails when Registry is missing or the metrics cannot be registered.
func New(opts Options) (http.Handler, error) {
	if opts.Registry == nil {
		return nil, errors.New("apiserver: Options.Registry is required")
	}
	s := &server{
		reg:     opts.Registry,
		maxBody: opts.MaxBodyBytes,
		log:     opts.Logger,
		ready:   opts.Ready,
	}
	if s.maxBody <= 0 {
		s.maxBody = defaultMaxBodyBytes
	}
	s.requestTimeout = opts.RequestTimeout
	if s.requestTimeout <= 0 {
		s.requestTimeout = DefaultRequestTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if opts.Metrics != nil {
		m, err := newMetrics(opts.Metrics)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	return s, nil
}
