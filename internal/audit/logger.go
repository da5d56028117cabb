// Package audit writes the audit log: one JSON line per request, in the
// audit.k8s.io/v1 Event format of kube-apiserver's log backend, so tools
// that read Kubernetes audit logs read Setpoint's. A Policy (the
// audit.k8s.io/v1 Policy format) sets how much of each request is
// written; Secrets and other credential-bearing resources are never
// written above Metadata level, whatever it says.
//
// Lines go through a bounded queue to a goroutine that writes them to a
// file it rotates by size, or to stdout, so a slow disk delays requests
// by at most Config.BlockTimeout.
package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// Config configures the audit log, as kube-apiserver's --audit-log-* and
// --audit-policy-file flags. Zero values take the documented defaults.
type Config struct {
	// Path is the file the log is written to; "-" writes it to Stdout.
	// Default "": no audit log.
	Path string
	// PolicyFile is an audit.k8s.io/v1 Policy file. Default "":
	// DefaultPolicy.
	PolicyFile string
	// MaxSizeMB is the size in megabytes at which the file is rotated:
	// renamed to <name>-<UTC timestamp><ext> and started anew.
	// Default 100.
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept; older ones are
	// removed. Default 10; negative keeps all.
	MaxBackups int
	// MaxAgeDays removes rotated files older than this many days.
	// Default 0: files are kept whatever their age.
	MaxAgeDays int
	// MaxBodyBytes bounds each request or response body the policy asks
	// to log; a larger one is left out, and an annotation says so.
	// Default 3 MiB (the server's request body limit).
	MaxBodyBytes int64
	// QueueSize is how many lines wait to be written at most. Default
	// 10000.
	QueueSize int
	// BlockTimeout is how long a request waits for room in a full queue
	// before its event is dropped (and counted in
	// apiserver_audit_error_total). Default 1s.
	BlockTimeout time.Duration
	// Stdout is where Path "-" writes. Default os.Stdout.
	Stdout io.Writer
	// Logger receives the audit log's own failures. Default
	// slog.Default().
	Logger *slog.Logger
}

// Defaults of Config's fields.
const (
	DefaultMaxSizeMB    = 100
	DefaultMaxBackups   = 10
	DefaultMaxBodyBytes = 3 << 20
	DefaultQueueSize    = 10000
	DefaultBlockTimeout = time.Second
)

// withDefaults fills in defaults and checks c.
func (c *Config) withDefaults() error {
	if c.MaxSizeMB == 0 {
		c.MaxSizeMB = DefaultMaxSizeMB
	}
	if c.MaxBackups == 0 {
		c.MaxBackups = DefaultMaxBackups
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.BlockTimeout == 0 {
		c.BlockTimeout = DefaultBlockTimeout
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var errs []error
	if c.MaxSizeMB < 0 {
		errs = append(errs, fmt.Errorf("audit log max size %d MB is negative", c.MaxSizeMB))
	}
	if c.MaxAgeDays < 0 {
		errs = append(errs, fmt.Errorf("audit log max age %d days is negative", c.MaxAgeDays))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("audit body limit %d is negative", c.MaxBodyBytes))
	}
	if c.QueueSize < 0 || c.BlockTimeout < 0 {
		errs = append(errs, errors.New("audit queue size and block timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// Logger writes audit events. New builds it; Close flushes and stops it.
// A nil *Logger audits nothing.
type Logger struct {
	policy  *Policy
	maxBody int64
	now     func() time.Time
	queue   *queue
	// events counts the events written, failures those lost.
	events   prometheus.Counter
	failures *prometheus.CounterVec
}

// New opens the audit log cfg describes and starts its writer. It returns
// nil and no error when cfg.Path is empty (no audit log).
func New(cfg Config) (*Logger, error) {
	if cfg.Path == "" {
		return nil, nil
	}
	if err := cfg.withDefaults(); err != nil {
		return nil, fmt.Errorf("audit: invalid config: %w", err)
	}
	p, err := LoadPolicy(cfg.PolicyFile)
	if err != nil {
		return nil, err
	}
	var out io.WriteCloser
	if cfg.Path == "-" {
		out = nopCloser{cfg.Stdout}
	} else if out, err = openRotating(cfg.Path, rotation{
		maxBytes:   int64(cfg.MaxSizeMB) << 20,
		maxBackups: cfg.MaxBackups,
		maxAge:     time.Duration(cfg.MaxAgeDays) * 24 * time.Hour,
		now:        time.Now,
	}); err != nil {
		return nil, err
	}
	l := &Logger{
		policy:  p,
		maxBody: cfg.MaxBodyBytes,
		now:     time.Now,
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apiserver_audit_event_total",
			Help: "Audit events generated and sent to the audit log.",
		}),
	}
	l.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apiserver_audit_error_total",
		Help: "Audit events that were not written: dropped from a full queue or failed to write.",
	}, []string{"plugin"})
	l.queue = newQueue(out, cfg.QueueSize, cfg.BlockTimeout, l.failures.WithLabelValues("log"), cfg.Logger, time.Now)
	return l, nil
}

// Collectors are the audit log's metrics: apiserver_audit_event_total and
// apiserver_audit_error_total, named as kube-apiserver's. A nil l has
// none.
func (l *Logger) Collectors() []prometheus.Collector {
	if l == nil {
		return nil
	}
	return []prometheus.Collector{l.events, l.failures}
}

// Close writes the events still queued, stops the writer and closes the
// file. Events of requests still running are dropped. It may be called
// more than once; a nil l is a no-op.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	return l.queue.close()
}

// write encodes ev as one line and queues it.
func (l *Logger) write(ev *auditv1.Event) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		l.queue.fail("encode audit event", err)
		return
	}
	l.events.Inc()
	l.queue.put(buf.Bytes())
}

// nopCloser keeps Close from closing stdout.
type nopCloser struct{ io.Writer }

// Close does nothing.
func (nopCloser) Close() error { return nil }

// queue hands lines to the goroutine that writes them.
type queue struct {
	lines   chan []byte
	block   time.Duration
	failed  prometheus.Counter
	log     *slog.Logger
	now     func() time.Time
	written chan struct{}
	// closeErr is the result of closing out, read after written closes.
	closeErr error

	// mu guards closed; put holds it shared while it sends, so close
	// never closes lines under a sender.
	mu     sync.RWMutex
	closed bool
	// lastWarn rate-limits the warnings of failures; guarded by warnMu.
	warnMu   sync.Mutex
	lastWarn time.Time
}

// writeBatchBytes is how much the writer gathers at most before writing,
// when lines keep coming.
const writeBatchBytes = 64 << 10

// warnEvery is the least time between two warnings of audit failures.
const warnEvery = 10 * time.Second

// newQueue starts the writer of out.
func newQueue(out io.WriteCloser, size int, block time.Duration, failed prometheus.Counter, log *slog.Logger, now func() time.Time) *queue {
	q := &queue{lines: make(chan []byte, size), block: block, failed: failed, log: log, now: now, written: make(chan struct{})}
	go q.run(out)
	return q
}

// put queues line. When the queue is full it waits up to the block
// timeout for room, then drops the line: a stuck disk must not hold every
// request, but an audit log should lose nothing to a short burst.
func (q *queue) put(line []byte) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.fail("audit log closed, event dropped", errors.New("closed"))
		return
	}
	select {
	case q.lines <- line:
		return
	default:
	}
	t := time.NewTimer(q.block)
	defer t.Stop()
	select {
	case q.lines <- line:
	case <-t.C:
		q.fail("audit queue full, event dropped", fmt.Errorf("no room within %v", q.block))
	}
}

// fail counts a lost event and warns, at most once per warnEvery.
func (q *queue) fail(what string, err error) {
	q.failed.Inc()
	q.warnMu.Lock()
	now := q.now()
	warn := now.Sub(q.lastWarn) >= warnEvery
	if warn {
		q.lastWarn = now
	}
	q.warnMu.Unlock()
	if warn {
		q.log.Warn("audit: "+what, "err", err)
	}
}

// run writes lines until the queue is closed and drained, flushing
// whenever no line is waiting, then closes out.
func (q *queue) run(out io.WriteCloser) {
	defer close(q.written)
	var buf bytes.Buffer
	n := 0 // lines in buf
	flush := func() {
		if buf.Len() == 0 {
			return
		}
		if _, err := out.Write(buf.Bytes()); err != nil {
			q.failed.Add(float64(n - 1))
			q.fail("write audit log", err)
		}
		buf.Reset()
		n = 0
	}
	for line := range q.lines {
		buf.Write(line)
		n++
		if len(q.lines) == 0 || buf.Len() >= writeBatchBytes {
			flush()
		}
	}
	flush()
	q.closeErr = out.Close()
}

// close stops accepting lines, waits for the queued ones to be written
// and closes the output.
func (q *queue) close() error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.lines)
	}
	q.mu.Unlock()
	<-q.written
	if q.closeErr != nil {
		return fmt.Errorf("audit: close log: %w", q.closeErr)
	}
	return nil
}
