package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// setpointBin is the binary under test: $SETPOINT_BIN, or one TestMain built.
var setpointBin string

// listeningPrefix starts the line "setpoint serve" prints on stderr once it
// accepts requests; the address follows it.
const listeningPrefix = "Setpoint is listening on "

// Timeouts for process life-cycle steps. They bound waits on events; no test
// sleeps for them.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// TestMain finds or builds the binary once for all tests.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests finds or builds the binary, then runs the tests.
func runTests(m *testing.M) int {
	setpointBin = os.Getenv("SETPOINT_BIN")
	if setpointBin == "" {
		dir, err := os.MkdirTemp("", "setpoint-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: temp dir for the binary:", err)
			return 2
		}
		defer os.RemoveAll(dir)
		setpointBin = filepath.Join(dir, "setpoint")
		build := exec.Command("go", "build", "-o", setpointBin, "./cmd/setpoint")
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build setpoint: %v\n%s", err, out)
			return 2
		}
	}
	if _, err := os.Stat(setpointBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: SETPOINT_BIN:", err)
		return 2
	}
	return m.Run()
}

// server is one "setpoint serve" process on a data directory that outlives
// the process, so a test can stop, kill and restart it.
type server struct {
	t       testing.TB
	dataDir string
	// kubeconfig is where the server writes its kubeconfig.
	kubeconfig string
	// extraArgs are appended to every start's command line.
	extraArgs []string
	// env is added to every start's environment.
	env []string
	// listen is the address the next start listens on.
	listen string

	// The fields below describe the current process; start sets them.
	proc *process
	// addr is the host:port the current process printed.
	addr string
	// config reaches the current process; tests copy it before changing it.
	config *rest.Config

	// logs holds the stderr of every process this server ran, in order.
	logs []*lineLog
}

// process is one run of the binary.
type process struct {
	cmd *exec.Cmd
	// exited is closed once the process has exited and err is set.
	exited chan struct{}
	err    error
}

// startServer starts a server on a fresh data directory and stops it when
// the test ends. Its stderr goes to the test log if the test fails.
func startServer(t testing.TB, extraArgs ...string) *server {
	t.Helper()
	return startServerEnv(t, nil, extraArgs...)
}

// startServerEnv is startServer with extra environment variables
// ("NAME=value") for every start.
func startServerEnv(t testing.TB, env []string, extraArgs ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{
		t:          t,
		dataDir:    filepath.Join(dir, "data"),
		kubeconfig: filepath.Join(dir, "kubeconfig"),
		extraArgs:  extraArgs,
		env:        env,
		listen:     "127.0.0.1:0",
	}
	t.Cleanup(func() {
		if s.running() {
			s.stop()
		}
		if t.Failed() {
			for i, l := range s.logs {
				t.Logf("stderr of setpoint process %d:\n%s", i+1, l.String())
			}
		}
	})
	s.start()
	return s
}

// running reports whether the current process has not exited yet.
func (s *server) running() bool {
	if s.proc == nil {
		return false
	}
	select {
	case <-s.proc.exited:
		return false
	default:
		return true
	}
}

// start runs the binary on s.dataDir and waits for its listening line.
func (s *server) start() {
	s.t.Helper()
	if s.running() {
		s.t.Fatal("start: the server is already running")
	}
	log := &lineLog{}
	listening := log.waitFor(func(line string) bool { return strings.Contains(line, listeningPrefix) })
	s.logs = append(s.logs, log)
	args := append([]string{"serve",
		"--data-dir", s.dataDir,
		"--listen", s.listen,
		"--kubeconfig-out", s.kubeconfig,
	}, s.extraArgs...)
	cmd := exec.Command(setpointBin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", setpointBin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.proc = p

	timeout := time.NewTimer(startTimeout)
	defer timeout.Stop()
	select {
	case line := <-listening:
		_, after, _ := strings.Cut(line, listeningPrefix)
		word, _, _ := strings.Cut(after, " ")
		s.addr = strings.TrimRight(word, ".")
	case <-p.exited:
		s.t.Fatalf("setpoint exited before listening: %v\n%s", p.err, log.String())
	case <-timeout.C:
		s.kill()
		s.t.Fatalf("setpoint did not print %q within %v\n%s", listeningPrefix, startTimeout, log.String())
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		s.t.Fatalf("load the kubeconfig the server wrote: %v", err)
	}
	if !strings.Contains(cfg.Host, s.addr) {
		s.t.Fatalf("kubeconfig points at %q, the server listens on %q", cfg.Host, s.addr)
	}
	// The suite drives load on purpose: no client-side throttling.
	cfg.QPS = 1e6
	cfg.Burst = 1e6
	s.config = cfg
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	p := s.proc
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("SIGTERM: %v", err)
	}
	timeout := time.NewTimer(stopTimeout)
	defer timeout.Stop()
	select {
	case <-p.exited:
	case <-timeout.C:
		s.kill()
		s.t.Fatalf("setpoint did not exit within %v of SIGTERM", stopTimeout)
	}
	if p.err != nil {
		s.t.Errorf("setpoint exited uncleanly after SIGTERM: %v", p.err)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.t.Helper()
	p := s.proc
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("SIGKILL: %v", err)
	}
	<-p.exited
}

// restartInPlace stops the server cleanly and starts it again on the same
// data and the same address, so running clients reconnect by themselves.
func (s *server) restartInPlace() {
	s.t.Helper()
	s.stop()
	s.listen = s.addr
	s.start()
}

// restConfig returns a copy of the client configuration for the server.
func (s *server) restConfig() *rest.Config {
	return rest.CopyConfig(s.config)
}

// httpClient returns a client for raw HTTP requests to the server, which
// trusts its CA and authenticates as its administrator, with timeout (0:
// none).
func (s *server) httpClient(timeout time.Duration) *http.Client {
	s.t.Helper()
	cfg := s.restConfig()
	cfg.Timeout = timeout
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		s.t.Fatalf("HTTP client for the server: %v", err)
	}
	return hc
}

// baseURL is the scheme and host to send raw HTTP requests to.
func (s *server) baseURL() string {
	return strings.TrimSuffix(s.config.Host, "/")
}

// lineLog keeps everything a process writes and hands complete lines to
// whoever waits for one.
type lineLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	scan    int      // offset in buf of the first byte not yet split into lines
	lines   []string // the complete lines so far
	waiters []*logWaiter
}

// logWaiter waits for the first line that match accepts.
type logWaiter struct {
	match func(string) bool
	found chan string
}

// Write keeps p and hands each line it completes to the waiters.
func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		rest := l.buf.Bytes()[l.scan:]
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			break
		}
		line := string(rest[:end])
		l.scan += end + 1
		l.lines = append(l.lines, line)
		l.waiters = slices.DeleteFunc(l.waiters, func(w *logWaiter) bool { return w.offer(line) })
	}
	return len(p), nil
}

// offer hands line to w if it matches, and reports whether it did.
func (w *logWaiter) offer(line string) bool {
	if !w.match(line) {
		return false
	}
	w.found <- line
	return true
}

// waitFor returns a channel that receives the first line, written so far or
// later, that match accepts.
func (l *lineLog) waitFor(match func(string) bool) <-chan string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &logWaiter{match: match, found: make(chan string, 1)}
	for _, line := range l.lines {
		if w.offer(line) {
			return w.found
		}
	}
	l.waiters = append(l.waiters, w)
	return w.found
}

// String returns everything written so far.
func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitLog waits until the current process logs a line that match accepts,
// and returns it.
func (s *server) waitLog(what string, match func(string) bool) string {
	s.t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	select {
	case line := <-s.logs[len(s.logs)-1].waitFor(match):
		return line
	case <-s.proc.exited:
		s.t.Fatalf("setpoint exited while waiting for %s", what)
	case <-timeout.C:
		s.t.Fatalf("setpoint did not log %s within a minute", what)
	}
	return ""
}

// testContext returns a context that ends with the test or after d.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
