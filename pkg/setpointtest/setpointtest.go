// Package setpointtest runs a real Setpoint server inside a test process,
// on SQLite in a temporary directory, the way net/http/httptest runs an
// HTTP server: start it, point clients at it, and it stops when the test
// ends.
package setpointtest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

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

// Server is a running test server.
type Server struct {
	// URL is the server's base URL, such as http://127.0.0.1:41233.
	URL string
	// DataDir holds the server's database.
	DataDir string
	// Kubeconfig is the path of a kubeconfig pointing at the server.
	Kubeconfig string

	stop func() error
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
	return &Server{URL: "http://" + srv.Addr(), DataDir: dir, Kubeconfig: kubeconfig, stop: stop}, nil
}

// Stop shuts the server down and waits until its database is closed. The
// test's cleanup calls it too; calls after the first return its result.
func (s *Server) Stop() error { return s.stop() }

// RESTConfig returns a client-go configuration for the server, without
// client-side rate limits.
func (s *Server) RESTConfig() *rest.Config {
	return &rest.Config{Host: s.URL, QPS: -1}
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
