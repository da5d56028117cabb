package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// listeningLine starts the line "setpoint serve" prints to stderr once it
// accepts requests; the address follows it.
const listeningLine = "Setpoint is listening on "

// process is a running "setpoint serve" on an empty data directory of its
// own.
type process struct {
	cmd *exec.Cmd
	// dir holds the data directory and the kubeconfig; stop removes it.
	dir string
	// kubeconfig is the file the server wrote for its clients.
	kubeconfig string
	// addr is the host:port the server listens on.
	addr string
	// started is when the process was executed.
	started time.Time
	// listening is how long after started the listening line came.
	listening time.Duration
	// logs keeps the end of the server's stderr for error messages.
	logs *tail
	// exited is closed once the process has ended; exitErr is then set.
	exited  chan struct{}
	exitErr error
}

// startProcess runs bin serve on a fresh data directory, listening on a
// free loopback port, with the extra environment env and the extra flags
// args, and returns once the server printed its listening line.
func startProcess(ctx context.Context, bin string, env, args []string) (*process, error) {
	dir, err := os.MkdirTemp("", "setpoint-bench-")
	if err != nil {
		return nil, fmt.Errorf("server directory: %w", err)
	}
	p := &process{
		dir:        dir,
		kubeconfig: filepath.Join(dir, "kubeconfig"),
		logs:       &tail{max: 64 << 10},
		exited:     make(chan struct{}),
	}
	p.cmd = exec.Command(bin, append([]string{"serve",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen", "127.0.0.1:0",
		"--kubeconfig-out", p.kubeconfig}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("server stderr: %w", err)
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	addrs := make(chan string, 1)
	go p.readLogs(stderr, addrs)
	select {
	case p.addr = <-addrs:
		p.listening = time.Since(p.started)
		return p, nil
	case <-p.exited:
		err = fmt.Errorf("server exited before listening: %v\n%s", p.exitErr, p.logs)
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("server not listening after 30s:\n%s", p.logs)
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.stop()
	return nil, err
}

// readLogs copies the server's stderr into p.logs, sends the address of
// the listening line on addrs, and records the exit once stderr closes.
func (p *process) readLogs(stderr io.Reader, addrs chan<- string) {
	s := bufio.NewScanner(stderr)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		p.logs.add(line)
		if rest, ok := strings.CutPrefix(line, listeningLine); ok && addrs != nil {
			addr, _, _ := strings.Cut(rest, " ")
			addrs <- addr
			addrs = nil
		}
	}
	p.exitErr = p.cmd.Wait()
	close(p.exited)
}

// waitReady polls GET /readyz with c, the clients of the server's
// kubeconfig, until it answers 200 and returns how long after exec that
// was.
func (p *process) waitReady(ctx context.Context, c *clients) (time.Duration, error) {
	if err := pollReady(ctx, c.http, c.base+"/readyz", p.exited); err != nil {
		if errors.Is(err, errExited) {
			return 0, fmt.Errorf("%w: %v\n%s", err, p.exitErr, p.logs)
		}
		return 0, err
	}
	return time.Since(p.started), nil
}

// errExited is the error of pollReady when the server exits first.
var errExited = errors.New("server exited before ready")

// pollReady polls GET url every 0.2 ms until it answers 200, for at most
// 30s. It gives up with errExited once exited is closed; a nil exited is
// never closed.
func pollReady(ctx context.Context, client *http.Client, url string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("readyz request: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz: %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server not ready: last error %v: %w", err, ctx.Err())
		case <-exited:
			return errExited
		case <-time.After(200 * time.Microsecond):
		}
	}
}

// stopGrace is how long stop waits after SIGTERM: longer than the 10s the
// server itself gives requests still running before it cuts them off.
const stopGrace = 30 * time.Second

// stop ends the server with SIGTERM (SIGKILL after stopGrace), waits for it and
// removes its directory.
func (p *process) stop() error {
	defer os.RemoveAll(p.dir)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop server: %w", err)
	}
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("server ignored SIGTERM for %s:\n%s", stopGrace, p.logs)
	}
	var exit *exec.ExitError
	if p.exitErr != nil && !errors.As(p.exitErr, &exit) {
		return fmt.Errorf("server: %w", p.exitErr)
	}
	if exit != nil && !exit.Exited() {
		return nil // ended by our signal
	}
	if exit != nil {
		return fmt.Errorf("server exited with %w:\n%s", exit, p.logs)
	}
	return nil
}

// tail keeps the last max bytes of the lines added to it.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
	size  int
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	t.size += len(line) + 1
	for t.size > t.max && len(t.lines) > 1 {
		t.size -= len(t.lines[0]) + 1
		t.lines = t.lines[1:]
	}
}

// String returns the kept lines.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
