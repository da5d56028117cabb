package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/setpoint/setpoint/internal/server"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// get sends GET url as the administrator of the test server s.
func get(t *testing.T, s *setpointtest.Server, url string) (int, string) {
	t.Helper()
	resp, err := client(t, s).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestReadyAndKubeconfig(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	if code, body := get(t, s, s.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	fi, err := os.Stat(s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("kubeconfig mode = %v, want 0600", perm)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != s.URL || !strings.HasPrefix(s.URL, "https://") {
		t.Errorf("kubeconfig server = %q, want %q", cfg.Host, s.URL)
	}
}

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	s := setpointtest.Start(t, setpointtest.Options{DataDir: dir})
	resp, err := client(t, s).Post(s.URL+"/api/v1/namespaces", "application/json",
		strings.NewReader(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"kept"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create namespace: %d", resp.StatusCode)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s = setpointtest.Start(t, setpointtest.Options{DataDir: dir})
	if code, body := get(t, s, s.URL+"/api/v1/namespaces/kept"); code != http.StatusOK {
		t.Fatalf("namespace after restart: %d %s", code, body)
	}
}

// TestShutdownEndsWatches checks that stopping the server ends open watch
// streams instead of waiting for them.
func TestShutdownEndsWatches(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	resp, err := client(t, s).Get(s.URL + "/api/v1/namespaces?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() { // the initial ADDED of "default"
		t.Fatalf("no initial event: %v", lines.Err())
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }()
	for lines.Scan() {
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func TestSecondServerOnSameDataDirFails(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	_, err := server.New(server.Config{DataDir: s.DataDir, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		t.Fatal("a second server opened the same database")
	}
}

func TestInvalidConfig(t *testing.T) {
	_, err := server.New(server.Config{DataDir: t.TempDir(), MaxBodyBytes: -1})
	if err == nil || !strings.Contains(err.Error(), "MaxBodyBytes") {
		t.Fatalf("New with a negative body limit: %v", err)
	}
}

func TestRunStopsOnContext(t *testing.T) {
	srv, err := server.New(server.Config{
		DataDir: filepath.Join(t.TempDir(), "nested", "data"), Listen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run ended before ready: %v", err)
	}
	if srv.Addr() == "" {
		t.Error("no address once ready")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// TestShutdownClosesFreshConnections checks that a connection that never
// sent a request does not hold up shutdown (http.Server alone waits five
// seconds for such connections).
func TestShutdownClosesFreshConnections(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A request on a second connection proves the server accepted and saw
	// the first one before it stops.
	if code, _ := get(t, s, s.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d", code)
	}
	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the fresh connection is still open after shutdown")
	}
	if d := time.Since(start); d >= 5*time.Second {
		t.Errorf("shutdown took %v: it waited for the fresh connection", d)
	}
}

// client returns an HTTP client that trusts s and authenticates as its
// administrator.
func client(t *testing.T, s *setpointtest.Server) *http.Client {
	t.Helper()
	hc, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	return hc
}
