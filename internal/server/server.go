// Package server wires storage, the change feed, the registry and the HTTP
// API into one Setpoint server. It is the only place parts are connected.
//
// API CONTRACT (skeleton written by the lead).
package server

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Config is everything a server needs. Zero values take the documented
// defaults; Validate reports bad values.
type Config struct {
	// DataDir holds the SQLite database. Default "./setpoint-data".
	DataDir string
	// Listen is the TCP address to serve on. Default "127.0.0.1:6443".
	// Port 0 picks a free port (see Server.Addr).
	Listen string
	// Listener, when set, is used instead of Listen (tests).
	Listener net.Listener
	// MaxBodyBytes bounds request bodies; larger ones get 413. Default 3 MiB.
	MaxBodyBytes int64
	// CompactionWindow keeps the change log for at least this long; watches
	// resuming from an older revision get 410. Default 5m.
	CompactionWindow time.Duration
	// CompactionInterval is how often compaction runs. Default 1m.
	CompactionInterval time.Duration
	// KubeconfigPath, when not empty, is written once the server listens,
	// pointing at it. Default "" (the CLI sets DataDir/kubeconfig).
	KubeconfigPath string
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// Server is a running Setpoint server.
type Server struct{}

// New checks cfg and opens storage. It does not listen until Run.
func New(cfg Config) (*Server, error) { panic("unimplemented") }

// Run serves until ctx ends, then shuts down gracefully and closes storage.
func (s *Server) Run(ctx context.Context) error { panic("unimplemented") }

// Ready is closed when the server accepts requests.
func (s *Server) Ready() <-chan struct{} { panic("unimplemented") }

// Addr returns the address the server listens on, once Ready.
func (s *Server) Addr() string { panic("unimplemented") }
