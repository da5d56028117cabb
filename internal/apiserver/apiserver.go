// Package apiserver serves the registry over HTTP with the Kubernetes REST
// paths, bodies and errors that kubectl and client-go expect.
//
// API CONTRACT (skeleton written by the lead; the apiserver owner fills it in).
package apiserver

import (
	"context"
	"log/slog"
	"net/http"

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
	// Metrics, when not nil, receives the request metrics and is served
	// at /metrics.
	Metrics *prometheus.Registry
}

// New returns the handler for every path the server serves: resources,
// discovery, OpenAPI, /version, /healthz, /livez, /readyz and /metrics.
func New(opts Options) (http.Handler, error) { panic("unimplemented") }
