package audit

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// count reads a counter.
func count(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// stuckWriter blocks every Write until released.
type stuckWriter struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
	closed  bool
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.entered <- struct{}{}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *stuckWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

// TestFullQueueWaitsThenDrops fills the queue behind a stuck disk: a put
// waits its block timeout, then drops and counts the line; lines queued
// before are written once the disk moves, and close waits for them.
func TestFullQueueWaitsThenDrops(t *testing.T) {
	out := &stuckWriter{entered: make(chan struct{}, 10), release: make(chan struct{})}
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "failed"})
	var logs bytes.Buffer
	q := newQueue(out, 2, 20*time.Millisecond, failed, slog.New(slog.NewTextHandler(&logs, nil)), time.Now)
	q.put([]byte("a\n"))
	<-out.entered // the writer holds "a" in a stuck Write
	q.put([]byte("b\n"))
	q.put([]byte("c\n"))
	start := time.Now()
	q.put([]byte("d\n")) // the queue is full
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Errorf("put into a full queue returned after %v, want it to wait its block timeout", waited)
	}
	if got := count(t, failed); got != 1 {
		t.Errorf("failures %v, want 1", got)
	}
	q.put([]byte("e\n"))
	if got := count(t, failed); got != 2 || strings.Count(logs.String(), "audit queue full") != 1 {
		t.Errorf("failures %v, logs %q: want 2 failures and one warning", got, logs.String())
	}
	close(out.release)
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if got := out.buf.String(); got != "a\nb\nc\n" || !out.closed {
		t.Errorf("written %q (closed %v), want a, b and c", got, out.closed)
	}
	q.put([]byte("f\n"))
	if got := count(t, failed); got != 3 {
		t.Errorf("failures after close %v, want 3", got)
	}
	if err := q.close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// brokenWriter fails every write.
type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
func (brokenWriter) Close() error              { return nil }

func TestWriteFailuresCounted(t *testing.T) {
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "failed"})
	q := newQueue(brokenWriter{}, 10, time.Second, failed, slog.New(slog.DiscardHandler), time.Now)
	q.put([]byte("a\n"))
	q.put([]byte("b\n"))
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, failed); got != 2 {
		t.Errorf("failures %v, want 2", got)
	}
}

func TestInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]Config{
		"size":   {Path: filepath.Join(dir, "a.log"), MaxSizeMB: -1},
		"age":    {Path: filepath.Join(dir, "a.log"), MaxAgeDays: -1},
		"body":   {Path: filepath.Join(dir, "a.log"), MaxBodyBytes: -1},
		"policy": {Path: filepath.Join(dir, "a.log"), PolicyFile: filepath.Join(dir, "none.yaml")},
		"dir":    {Path: filepath.Join("/proc", "audit.log")},
	} {
		t.Run(name, func(t *testing.T) {
			if l, err := New(cfg); err == nil {
				l.Close()
				t.Error("accepted")
			}
		})
	}
}

// clock is a settable time for rotation tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	// A file left with a wide mode is narrowed.
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	w, err := openRotating(path, rotation{maxBytes: 10, maxBackups: 2, maxAge: 48 * time.Hour, now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		t.Helper()
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("12345\n") // 4+6 bytes: fits
	write("abcdef\n")
	write("ghijkl\n") // same millisecond: a distinct name
	c.t = c.t.Add(time.Hour)
	write("mnopqr\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			info, _ := e.Info()
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v", e.Name(), info.Mode().Perm())
			}
			out = append(out, e.Name())
		}
		return out
	}
	want := []string{"audit-2026-01-02T03-04-05.001.log", "audit-2026-01-02T04-04-05.000.log", "audit.log"}
	if got := names(); !slices.Equal(got, want) {
		t.Errorf("files %v, want %v (the oldest backup pruned)", got, want)
	}
	data, _ := os.ReadFile(filepath.Join(dir, want[1]))
	if string(data) != "ghijkl\n" {
		t.Errorf("last backup holds %q", data)
	}
	// Three days later the next rotation removes the backups by age.
	if w, err = openRotating(path, rotation{maxBytes: 10, maxBackups: -1, maxAge: 48 * time.Hour, now: c.now}); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(72 * time.Hour)
	if _, err := io.WriteString(w, "stuvwx\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := names(); !slices.Equal(got, []string{"audit-2026-01-05T04-04-05.000.log", "audit.log"}) {
		t.Errorf("files %v after the age limit passed", got)
	}
}
