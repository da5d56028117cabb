// Package setpointtest runs a real Setpoint server inside a test process,
// on SQLite in a temporary directory, the way net/http/httptest runs an
// HTTP server: start it, point clients at it, and it stops when the test
// ends.
package setpointtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/setpoint/setpoint/internal/server"
)

// Options tune a test server. The zero value is the server's defaults.
type Options struct {
	// DataDir holds the database; default a new t.TempDir(). Start a second
	// server on the same DataDir after the first stopped to test restarts.
	DataDir string
	// CompactionWindow and CompactionInterval set change-log compaction;
	// default the server's (5m and 1m).
	CompactionWindow   time.Duration
	CompactionInterval time.Duration
	// MaxBodyBytes bounds request bodies; default 3 MiB.
	MaxBodyBytes int64
	// DisableGarbageCollector turns the server's owner-reference garbage
	// collector off; default false (it runs).
	DisableGarbageCollector bool
	// DisableNamespaceController turns the server's namespace controller
	// off, for tests that run their own.
	DisableNamespaceController bool
	// Logs receives the server's logs; default discarded.
	Logs io.Writer
	// LogLevel is the lowest level written to Logs; default slog.LevelInfo.
	LogLevel slog.Level
}

// Server is a running test server. It serves HTTPS with a certificate
// of its own CA and requires authentication, as "setpoint serve" does;
// RESTConfig and Client carry the CA and the administrator's client
// certificate.
type Server struct {
	// URL is the server's base URL, such as https://127.0.0.1:41233.
	URL string
	// DataDir holds the server's database and its PKI.
	DataDir string
	// Kubeconfig is the path of the administrator's kubeconfig for the
	// server.
	Kubeconfig string

	config *rest.Config
	stop   func() error
}

// Start runs a server until the test ends, failing the test if it cannot.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	s, err := start(opts)
	if err != nil {
		t.Fatalf("setpointtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("setpointtest: %v", err)
		}
	})
	return s
}

func start(opts Options) (*Server, error) {
	dir := opts.DataDir
	logs := opts.Logs
	if logs == nil {
		logs = io.Discard
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	srv, err := server.New(server.Config{
		DataDir:                    dir,
		Listener:                   ln,
		MaxBodyBytes:               opts.MaxBodyBytes,
		CompactionWindow:           opts.CompactionWindow,
		CompactionInterval:         opts.CompactionInterval,
		KubeconfigPath:             kubeconfig,
		DisableGarbageCollector:    opts.DisableGarbageCollector,
		DisableNamespaceController: opts.DisableNamespaceController,
		Logger:                     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: opts.LogLevel})),
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		cancel()
		return nil, err
	}
	stop := sync.OnceValue(func() error {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("load the server's kubeconfig: %w", err), stop())
	}
	cfg.QPS = -1
	return &Server{URL: cfg.Host, DataDir: dir, Kubeconfig: kubeconfig, config: cfg, stop: stop}, nil
}

// Stop shuts the server down and waits until its database is closed. The
// test's cleanup calls it too; calls after the first return its result.
func (s *Server) Stop() error { return s.stop() }

// RESTConfig returns a new client-go configuration for the server, as
// its administrator (user setpoint-admin in group system:masters), without
// client-side rate limits.
func (s *Server) RESTConfig() *rest.Config {
	return rest.CopyConfig(s.config)
}

// Client returns an HTTP client for raw requests to URL, which trusts the
// server's CA and authenticates as its administrator.
func (s *Server) Client() (*http.Client, error) {
	return rest.HTTPClientFor(s.RESTConfig())
}

// New runs a server outside a test, such as in TestMain or an Example
// function; the caller stops it with Stop. Without opts.DataDir it uses a
// new temporary directory, which Stop removes.
func New(opts Options) (*Server, error) {
	if opts.DataDir != "" {
		return start(opts)
	}
	dir, err := os.MkdirTemp("", "setpointtest-")
	if err != nil {
		return nil, err
	}
	opts.DataDir = dir
	s, err := start(opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop := s.stop
	s.stop = sync.OnceValue(func() error {
		err := stop()
		return errors.Join(err, os.RemoveAll(dir))
	})
	return s, nil
}
