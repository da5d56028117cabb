// Package server wires storage, the change feed, the registry and the HTTP
// API into one Setpoint server. It is the only place parts are connected.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/setpoint/setpoint/internal/apiserver"
	"github.com/setpoint/setpoint/internal/audit"
	"github.com/setpoint/setpoint/internal/authn"
	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/flowcontrol"
	"github.com/setpoint/setpoint/internal/rbac"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/requestinfo"
	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/webhook"
)

// Config is everything a server needs. Zero values take the documented
// defaults.
type Config struct {
	// DataDir holds the SQLite database when Storage is empty. Default
	// "./setpoint-data".
	DataDir string
	// Storage selects where objects are stored: "" keeps them in an
	// embedded SQLite database in DataDir; a postgres:// or postgresql://
	// URL (postgres://user@host:port/database?sslmode=disable, and
	// search_path=schema to use another schema than public) keeps them in
	// that PostgreSQL database, which any number of servers, each with
	// its own DataDir and Listen, serve as replicas. Anything else is a
	// configuration error. The password in the URL is never logged nor
	// put in errors (see RedactStorage). Default "".
	Storage string
	// Listen is the TCP address to serve on. Default "127.0.0.1:6443".
	// Port 0 picks a free port (see Server.Addr).
	Listen string
	// Listener, when set, is used instead of Listen (tests).
	Listener net.Listener
	// MaxBodyBytes bounds request bodies; larger ones get 413. Default 3 MiB.
	MaxBodyBytes int64
	// MaxObjectBytes bounds an object as stored (its JSON, managedFields
	// included): a write that would store a larger one gets 413. Default
	// 1.5 MiB, etcd's default bound on a request, which bounds Kubernetes
	// objects.
	MaxObjectBytes int
	// FlowControl bounds the requests and the watches each user, and all
	// users together, run at once; beyond, requests wait their turn in a
	// short queue per user or get 429 (package flowcontrol). Zero fields
	// take flowcontrol's defaults.
	FlowControl flowcontrol.Options
	// RequestTimeout bounds every request but watches, as Kubernetes'
	// --request-timeout: a request still running then (a database too
	// slow to answer) ends with 504 Timeout. A shorter timeout query
	// parameter takes precedence. Default 60s.
	RequestTimeout time.Duration
	// CompactionWindow keeps the change log for at least this long; watches
	// resuming from an older revision get 410. Default 5m.
	CompactionWindow time.Duration
	// CompactionInterval is how often compaction runs. Default 1m.
	CompactionInterval time.Duration
	// EventTTL is how long an Event is kept after it was last observed, as
	// Kubernetes' --event-ttl. Default 1h.
	EventTTL time.Duration
	// KubeconfigPath, when not empty, is written once the server listens,
	// pointing at it. Default "" (the CLI sets DataDir/kubeconfig).
	KubeconfigPath string
	// DisableGarbageCollector turns the owner-reference garbage collector
	// off, as kube-controller-manager's --enable-garbage-collector=false.
	// Default false: the collector runs.
	DisableGarbageCollector bool
	// DisableNamespaceController turns the namespace controller off, as
	// leaving it out of kube-controller-manager's --controllers: deleted
	// namespaces then stay Terminating until someone finalizes them.
	// Default false: the controller runs.
	DisableNamespaceController bool
	// LeaderElection tunes the election that, on PostgreSQL, lets one
	// replica at a time run the garbage collector and the namespace
	// controller, so standbys do not watch every resource. On SQLite the
	// server is alone and runs them without an election.
	LeaderElection LeaderElection
	// Forwarding tunes how, on PostgreSQL, replicas send their writes to
	// one elected replica, which commits them together (package forward).
	// Ignored on SQLite.
	Forwarding Forwarding
	// Profiling serves Go's net/http/pprof under /debug/pprof/, behind
	// authentication, as kube-apiserver's --profiling. Default false.
	Profiling bool
	// Audit configures the audit log. Its MaxBodyBytes defaults to
	// MaxBodyBytes. Default: no audit log.
	Audit audit.Config
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger

	// PKIDir holds the CA, serving certificate and admin client
	// certificate the server makes on first start and reuses after
	// (package pki). Replicas on one PostgreSQL database may share it so
	// that one CA signs for all. Default DataDir/pki.
	PKIDir string
	// TLSSANs are names (DNS names or IP addresses) the generated serving
	// certificate is valid for besides localhost, 127.0.0.1, ::1, the
	// host name and the listen host.
	TLSSANs []string
	// TLSCertFile and TLSKeyFile, both or neither, replace the generated
	// serving certificate, as kube-apiserver's --tls-cert-file and
	// --tls-private-key-file. The kubeconfig then carries no CA: clients
	// trust the certificate as their system does.
	TLSCertFile, TLSKeyFile string
	// ClientCAFile, when set, holds the PEM CAs that client certificates
	// are checked against instead of the generated CA, as kube-apiserver's
	// --client-ca-file. The kubeconfig then carries no client certificate.
	ClientCAFile string
	// TokenAuthFile is a file of hashed bearer tokens (see
	// authn.TokenFileFormat). Default none.
	TokenAuthFile string
	// OIDC accepts ID tokens of an OpenID Connect issuer as bearer
	// tokens when OIDC.IssuerURL is set. Default off.
	OIDC authn.OIDCOptions
	// InsecureHTTP serves plain HTTP without TLS (and so without client
	// certificates). Refused on an address that is not loopback unless
	// AllowInsecureNonLoopback is set. Default false.
	InsecureHTTP bool
	// AnonymousAuth lets requests without credentials in as
	// system:anonymous in group system:unauthenticated; authorization
	// decides what they may do. Refused on an address that is not
	// loopback unless AllowInsecureNonLoopback is set. Default false.
	AnonymousAuth bool
	// AllowInsecureNonLoopback confirms InsecureHTTP or AnonymousAuth on
	// an address other machines may reach.
	AllowInsecureNonLoopback bool

	// postgres is set by withDefaults when Storage is a PostgreSQL URL.
	postgres bool
}

// Defaults of Config's fields.
const (
	DefaultDataDir            = "./setpoint-data"
	DefaultListen             = "127.0.0.1:6443"
	DefaultMaxBodyBytes       = 3 << 20
	DefaultRequestTimeout     = apiserver.DefaultRequestTimeout
	DefaultCompactionWindow   = 5 * time.Minute
	DefaultCompactionInterval = time.Minute
	DefaultEventTTL           = time.Hour
)

// databaseFile is the SQLite database's name inside Config.DataDir.
const databaseFile = "setpoint.db"

// shutdownGrace is how long Run waits for requests in flight to finish
// once its context ends. Watches are ended at once.
const shutdownGrace = 10 * time.Second

func (c *Config) withDefaults() error {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.CompactionWindow == 0 {
		c.CompactionWindow = DefaultCompactionWindow
	}
	if c.CompactionInterval == 0 {
		c.CompactionInterval = DefaultCompactionInterval
	}
	if c.EventTTL == 0 {
		c.EventTTL = DefaultEventTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Audit.MaxBodyBytes == 0 {
		c.Audit.MaxBodyBytes = c.MaxBodyBytes
	}
	if c.Audit.Logger == nil {
		c.Audit.Logger = c.Logger
	}
	if c.PKIDir == "" {
		c.PKIDir = defaultPKIDir(c.DataDir)
	}
	var errs []error
	var err error
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLSCertFile and TLSKeyFile go together"))
	}
	if err := checkExposure(c); err != nil {
		errs = append(errs, err)
	}
	if c.postgres, err = checkStorage(c.Storage); err != nil {
		errs = append(errs, err)
	}
	if err := c.LeaderElection.withDefaults(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxBodyBytes %d is negative", c.MaxBodyBytes))
	}
	if c.MaxObjectBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxObjectBytes %d is negative", c.MaxObjectBytes))
	}
	if err := c.FlowControl.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.CompactionWindow < 0 {
		errs = append(errs, fmt.Errorf("CompactionWindow %v is negative", c.CompactionWindow))
	}
	if c.EventTTL < 0 {
		errs = append(errs, fmt.Errorf("EventTTL %v is negative", c.EventTTL))
	}
	if c.CompactionInterval < 0 {
		errs = append(errs, fmt.Errorf("CompactionInterval %v is negative", c.CompactionInterval))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("RequestTimeout %v is negative", c.RequestTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: invalid config: %w", err)
	}
	return nil
}

// Server is a Setpoint server: built by New, run once by Run.
type Server struct {
	cfg   Config
	store storage.Store
	feed  *feed.Feed
	reg   *registry.Registry
	sec   *security
	authz *rbac.Authorizer
	audit *audit.Logger

	ready chan struct{}
	// addr is set before ready is closed and not changed after.
	addr string
}

// New checks cfg and opens storage. It does not listen until Run; if New
// fails nothing is left open.
func New(cfg Config) (*Server, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: create data directory: %w", err)
	}
	sec, err := newSecurity(&cfg)
	if err != nil {
		return nil, err
	}
	auditLog, err := audit.New(cfg.Audit)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	store, err := openStorage(context.Background(), &cfg)
	if err != nil {
		return nil, errors.Join(err, auditLog.Close())
	}
	cfg.Logger.Info("storage opened", "storage", RedactStorage(cfg.Storage))
	f := feed.New(store, feed.Options{Logger: cfg.Logger})
	reg, err := registry.New(registry.Options{
		Store: store, Feed: f, EventTTL: cfg.EventTTL, MaxObjectBytes: cfg.MaxObjectBytes,
		Webhooks: webhook.New(webhook.Options{Logger: cfg.Logger}),
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("server: %w", err), f.Close(), store.Close(), auditLog.Close())
	}
	az, err := rbac.New(reg)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("server: %w", err), reg.Close(), f.Close(), store.Close(), auditLog.Close())
	}
	return &Server{cfg: cfg, store: store, feed: f, reg: reg, sec: sec, authz: az, audit: auditLog, ready: make(chan struct{})}, nil
}

// Ready is closed when the server accepts requests.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the address the server listens on once Ready, and ""
// before.
func (s *Server) Addr() string {
	select {
	case <-s.ready:
		return s.addr
	default:
		return ""
	}
}

// Run serves until ctx ends, then shuts down gracefully and closes
// storage. It returns ctx's error after a shutdown that ctx asked for, and
// the first failure of a part otherwise. Run may be called once.
func (s *Server) Run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
		err = errors.Join(err, s.reg.Close(), s.feed.Close(), s.store.Close(), s.audit.Close())
	}()
	// fail ends the server because a part stopped.
	fail := func(what string, err error) {
		if ctx.Err() == nil {
			cancel(fmt.Errorf("server: %s stopped: %w", what, err))
		}
	}
	// The feed and the registry survive a database that is gone for a
	// while: they retry, and requests answer 503 meanwhile.
	wg.Go(func() { fail("change feed", s.retry(ctx, "change feed", func() error { return s.feed.Run(ctx) })) })
	if err := s.retry(ctx, "start registry", func() error { return s.reg.Start(ctx) }); err != nil {
		return fmt.Errorf("server: start registry: %w", err)
	}
	if err := s.retry(ctx, "bootstrap RBAC", func() error { return rbac.Bootstrap(ctx, s.reg) }); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	compactor := storage.NewCompactor(s.store, storage.CompactorOptions{
		Window: s.cfg.CompactionWindow, Interval: s.cfg.CompactionInterval, Logger: s.cfg.Logger,
	})
	wg.Go(func() { fail("compactor", compactor.Run(ctx)) })

	handler, err := s.handler()
	if err != nil {
		return err
	}
	ln := s.cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("server: listen: %w", err)
		}
	}
	s.addr = ln.Addr().String()
	url := s.sec.scheme() + "://" + reachable(s.addr)
	s.sec.loopback.Host = url
	if s.cfg.KubeconfigPath != "" {
		if err := writeKubeconfig(s.cfg.KubeconfigPath, url, s.sec.caPEM, s.sec.admin); err != nil {
			ln.Close()
			return err
		}
	}
	// The controllers use the public API, like any controller. They stop
	// before the HTTP server does, so a leader can release its Lease.
	controllersDone := make(chan struct{})
	wg.Go(func() {
		defer close(controllersDone)
		if err := s.runControllers(ctx); err != nil {
			fail("controllers", err)
		}
	})
	return s.serve(ctx, ln, handler, controllersDone)
}

// Backoff between attempts of a part that failed on storage that is
// unavailable.
const (
	retryMinDelay = 100 * time.Millisecond
	retryMaxDelay = 5 * time.Second
)

// retry runs attempt until it returns nil, an error that is not
// transient, or ctx ends, pausing with exponential backoff between
// attempts and logging each failure. It returns attempt's last error, or
// ctx's.
func (s *Server) retry(ctx context.Context, what string, attempt func() error) error {
	delay := retryMinDelay
	for {
		err := attempt()
		if err == nil || ctx.Err() != nil || !transient(err) {
			return err
		}
		s.cfg.Logger.Warn("storage unavailable, retrying", "part", what, "retryIn", delay, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, retryMaxDelay)
	}
}

// transient reports whether err is a storage failure that may pass: the
// database cannot be reached or is too slow. A closed store is not.
func transient(err error) bool {
	if errors.Is(err, storage.ErrClosed) || errors.Is(err, feed.ErrClosed) {
		return false
	}
	return errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err)
}

// handler builds the HTTP API with the server's metrics and readiness,
// and the profiler when Config.Profiling is set.
func (s *Server) handler() (http.Handler, error) {
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics.MustRegister(s.audit.Collectors()...)
	h, err := apiserver.New(apiserver.Options{
		Registry:       s.reg,
		MaxBodyBytes:   s.cfg.MaxBodyBytes,
		Logger:         s.cfg.Logger,
		Metrics:        metrics,
		RequestTimeout: s.cfg.RequestTimeout,
		Ready: func(ctx context.Context) error {
			_, err := s.store.CurrentRevision(ctx)
			return err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("server: build HTTP API: %w", err)
	}
	if s.cfg.Profiling {
		h = withProfiler(h)
	}
	// The filters in front of the API, innermost first: each wraps the
	// ones after it, so a request meets them in the reverse order.
	h = rbac.With(h, s.authz)
	if h, err = flowcontrol.With(h, s.cfg.FlowControl, metrics); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	h = audit.With(h, s.audit)
	h = authn.With(h, s.sec.auth, audit.WithFailedAuthentication(http.HandlerFunc(authn.Unauthorized), s.audit))
	h = requestinfo.With(h)
	return h, nil
}

// withProfiler serves Go's profiler under /debug/pprof/ and everything
// else with h.
func withProfiler(h http.Handler) http.Handler {
	// Only /debug/pprof/ goes through a ServeMux, which would otherwise
	// redirect API paths it finds unclean.
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			mux.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serve runs the HTTP server on ln until ctx ends, then waits for first,
// which still uses the API, to be closed. Watches end as soon as shutdown
// starts; other requests get shutdownGrace to finish.
func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler, first <-chan struct{}) error {
	watches, endWatches := context.WithCancel(context.Background())
	defer endWatches()
	var fresh freshConns
	srv := &http.Server{
		Handler:           endOnShutdown(watches, h),
		ConnState:         fresh.track,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	if s.sec.tls != nil {
		srv.TLSConfig = s.sec.tls
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { served <- srv.Serve(ln) }()
	}
	close(s.ready)
	s.cfg.Logger.Info("serving", "addr", s.addr, "data", s.cfg.DataDir, "storage", RedactStorage(s.cfg.Storage))

	select {
	case err := <-served:
		return fmt.Errorf("server: serve HTTP: %w", err)
	case <-ctx.Done():
		<-first
	}
	endWatches()
	fresh.closeAll()
	grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(grace); err != nil {
		srv.Close()
		s.cfg.Logger.Warn("requests still running at shutdown were cut off", "err", err)
	}
	<-served
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		return cause
	}
	return ctx.Err()
}

// freshConns tracks connections that have not sent a request yet. At
// shutdown http.Server closes idle connections at once but waits five
// seconds for fresh ones, which clients such as client-go leave open after
// bursts; closeAll closes them instead.
type freshConns struct {
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
}

// track is the http.Server ConnState hook.
func (f *freshConns) track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state != http.StateNew {
		delete(f.conns, c)
		return
	}
	if f.closing {
		c.Close()
		return
	}
	if f.conns == nil {
		f.conns = map[net.Conn]struct{}{}
	}
	f.conns[c] = struct{}{}
}

// closeAll closes the fresh connections, and those accepted from now on.
func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closing = true
	for c := range f.conns {
		c.Close()
	}
	clear(f.conns)
}

// endOnShutdown ends the context of long-running requests (watches) when
// watches ends, so a graceful shutdown does not wait for them.
func endOnShutdown(watches context.Context, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isWatch(r) {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(watches, cancel)
		defer stop()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// isWatch reports whether r asks for a watch stream: ?watch=true, or a
// legacy path with "watch" after the group version (/api/v1/watch/...,
// /apis/<group>/<version>/watch/...).
func isWatch(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	if v := r.URL.Query().Get("watch"); v == "true" || v == "1" {
		return true
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	switch {
	case len(parts) > 2 && parts[0] == "api":
		return parts[2] == "watch"
	case len(parts) > 3 && parts[0] == "apis":
		return parts[3] == "watch"
	}
	return false
}
