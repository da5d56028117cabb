package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/setpoint/setpoint/internal/audit"
	"github.com/setpoint/setpoint/internal/authn"
	"github.com/setpoint/setpoint/internal/flowcontrol"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/server"
)

// defaultDataDir is where "setpoint serve" keeps its data by default.
const defaultDataDir = "setpoint-data"

// envPrefix starts the environment variable that can set each serve flag.
const envPrefix = "SETPOINT_"

// serveOptions are the flags of "setpoint serve".
type serveOptions struct {
	dataDir        string
	storage        string
	listen         string
	requestTimeout time.Duration
	maxBodyBytes   int64
	maxObjectBytes int
	// flowControl holds the --max-requests-inflight* and --max-watches*
	// flags.
	flowControl        flowcontrol.Options
	compactionWindow   time.Duration
	eventTTL           time.Duration
	compactionInterval time.Duration
	kubeconfigOut      string
	logLevel           string
	logFormat          string
	// leaderElect and the lease times tune the built-in controllers'
	// election (server.LeaderElection).
	leaderElect                               bool
	leaseDuration, renewDeadline, retryPeriod time.Duration
	enableGC                                  bool
	controllers                               []string
	profiling                                 bool
	// TLS and authentication (server.Config's fields of the same names).
	pkiDir, tlsCertFile, tlsKeyFile, clientCAFile, tokenAuthFile string
	tlsSANs                                                      []string
	oidc                                                         authn.OIDCOptions
	insecureHTTP, anonymousAuth, allowInsecureNonLoopback        bool
	// forwardWrites, peerListen and peerAdvertise tune write forwarding
	// between PostgreSQL replicas (server.Forwarding).
	forwardWrites             bool
	peerListen, peerAdvertise string
	// audit holds the --audit-* flags.
	audit audit.Config
	// envFlags are the flags that environment variables can set.
	envFlags []string
}

func newServeCommand(env Env) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Setpoint API server on embedded SQLite or on PostgreSQL",
		Long: `Run a Setpoint API server. With no flags it keeps its data in ./` + defaultDataDir + `,
listens on 127.0.0.1:6443 and writes a kubeconfig for kubectl and the client
verbs of this binary.

It serves HTTPS only, with a certificate of its own CA that it makes on first
start in <data-dir>/pki, and requires every request but health checks to
authenticate: with a client certificate of that CA (the kubeconfig carries
the administrator's), a bearer token of --token-auth-file, or an OIDC ID
token. --insecure-http and --anonymous-auth turn that off, on loopback only
unless --allow-insecure-non-loopback says other machines may reach it so.

With --storage postgres://... it keeps its data in that PostgreSQL database
instead, and any number of servers on the same database serve it as
replicas, each with its own --listen and --data-dir. Prefer
SETPOINT_STORAGE, PGPASSWORD or a .pgpass file to a password in the flag,
which other users can see in the process list.

Every flag can also be set by the environment variable named after it
(SETPOINT_ and the flag name in capitals, dashes as underscores); a flag on
the command line wins.`,
		Example: "  setpoint serve\n  SETPOINT_LISTEN=127.0.0.1:7443 setpoint serve --data-dir /var/lib/setpoint\n" +
			"  setpoint serve --storage 'postgres://setpoint@127.0.0.1:5432/setpoint?sslmode=disable' --listen 127.0.0.1:6444 --data-dir ./replica-1",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(cmd.Flags(), env.Getenv, env.ErrOut)
			if err != nil {
				return err
			}
			cfg.Audit.Stdout = env.Out
			return runServer(cmd.Context(), cfg, env.ErrOut)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func (o *serveOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dataDir, "data-dir", "./"+defaultDataDir, "directory of the SQLite database and the kubeconfig")
	fs.StringVar(&o.storage, "storage", "", "where objects are stored: empty for SQLite in --data-dir, or a postgres:// URL (the password is never logged)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:6443", "TCP address to serve the API on (port 0 picks a free port)")
	fs.Int64Var(&o.maxBodyBytes, "max-body-bytes", 3<<20, "largest request body accepted; larger ones get 413")
	fs.IntVar(&o.flowControl.MaxInflight, "max-requests-inflight", flowcontrol.DefaultMaxInflight,
		"requests other than watches that run at once, all users together (reads and writes: kube-apiserver's --max-requests-inflight and --max-mutating-requests-inflight added up); beyond, requests wait their turn briefly or get 429")
	fs.IntVar(&o.flowControl.MaxInflightPerUser, "max-requests-inflight-per-user", flowcontrol.DefaultMaxInflightPerUser,
		"requests other than watches that one user runs at once; beyond, the user's requests wait their turn briefly or get 429 (system:masters is not limited)")
	fs.IntVar(&o.flowControl.MaxWatches, "max-watches", flowcontrol.DefaultMaxWatches, "watches open at once, all users together; beyond, watches get 429")
	fs.IntVar(&o.flowControl.MaxWatchesPerUser, "max-watches-per-user", flowcontrol.DefaultMaxWatchesPerUser, "watches one user has open at once; beyond, the user's watches get 429")
	fs.IntVar(&o.maxObjectBytes, "max-object-bytes", registry.DefaultMaxObjectBytes, "largest object stored (its JSON, managedFields included); writes of larger ones get 413")
	fs.DurationVar(&o.requestTimeout, "request-timeout", server.DefaultRequestTimeout, "how long a request other than a watch may run before it ends with 504")
	fs.DurationVar(&o.compactionWindow, "compaction-window", 5*time.Minute, "how long the change log is kept for watches to resume from")
	fs.DurationVar(&o.eventTTL, "event-ttl", time.Hour, "how long an Event is kept after it was last observed")
	fs.DurationVar(&o.compactionInterval, "compaction-interval", time.Minute, "how often the change log is compacted")
	fs.StringVar(&o.kubeconfigOut, "kubeconfig-out", "", "where to write a kubeconfig for this server (default <data-dir>/kubeconfig)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&o.leaderElect, "controllers-leader-elect", true, "on PostgreSQL, run the built-in controllers only on the replica holding the Lease "+
		server.ControllersLeaseSpace+"/"+server.ControllersLeaseName+" (false: on every replica)")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", server.DefaultLeaseDuration, "how long standbys wait, after the leader last renewed, before taking its Lease over")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", server.DefaultRenewDeadline, "how long the leader retries renewing before it stops its controllers")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", server.DefaultRetryPeriod, "the wait between attempts to acquire or renew the Lease")
	fs.BoolVar(&o.enableGC, "enable-garbage-collector", true, "run the owner-reference garbage collector")
	fs.StringSliceVar(&o.controllers, "controllers", []string{"*"}, "built-in controllers to run: '*' for all, a name ("+
		strings.Join(controllerNames, ", ")+") to run it, '-name' to leave it out")
	fs.BoolVar(&o.forwardWrites, "forward-writes", true, "on PostgreSQL, send writes to the replica elected as writer, which commits every replica's writes together (false: commit them here)")
	fs.StringVar(&o.peerListen, "peer-listen", "", "on PostgreSQL, TCP address on which the writer receives the other replicas' writes over TLS (default the host of --listen, a free port)")
	fs.StringVar(&o.peerAdvertise, "peer-advertise-address", "", "host or host:port at which the other replicas reach --peer-listen; required when its host is 0.0.0.0 or ::")
	fs.BoolVar(&o.profiling, "profiling", false, "serve Go's profiler under /debug/pprof/ to authenticated users")
	fs.StringVar(&o.pkiDir, "pki-dir", "", "directory of the CA and certificates made on first start and reused after; "+
		"replicas on one PostgreSQL database may share one (default <data-dir>/pki)")
	fs.StringSliceVar(&o.tlsSANs, "tls-san", nil, "extra DNS names or IP addresses for the generated serving certificate")
	fs.StringVar(&o.tlsCertFile, "tls-cert-file", "", "PEM serving certificate (with its chain) to use instead of the generated one")
	fs.StringVar(&o.tlsKeyFile, "tls-private-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&o.clientCAFile, "client-ca-file", "", "PEM CAs to check client certificates against instead of the generated CA "+
		"(the kubeconfig then carries no client certificate)")
	fs.StringVar(&o.tokenAuthFile, "token-auth-file", "", "file of hashed bearer tokens, "+authn.TokenFileFormat)
	fs.StringVar(&o.oidc.IssuerURL, "oidc-issuer-url", "", "https URL of an OpenID Connect issuer whose ID tokens (RS256 or ES256) are accepted as bearer tokens")
	fs.StringVar(&o.oidc.ClientID, "oidc-client-id", "", "audience the ID tokens must be issued for (required with --oidc-issuer-url)")
	fs.StringVar(&o.oidc.UsernameClaim, "oidc-username-claim", "sub", "ID token claim naming the user; other claims than email are prefixed with the issuer URL and #")
	fs.StringVar(&o.oidc.GroupsClaim, "oidc-groups-claim", "", "ID token claim holding the user's groups (a string or a list of strings)")
	fs.StringVar(&o.oidc.CAFile, "oidc-ca-file", "", "PEM CAs to check the issuer's certificate against (default: the system's)")
	fs.BoolVar(&o.insecureHTTP, "insecure-http", false, "serve plain HTTP without TLS; refused on a non-loopback --listen without --allow-insecure-non-loopback")
	fs.BoolVar(&o.anonymousAuth, "anonymous-auth", false, "let requests without credentials in as system:anonymous (authorization decides what they may do); "+
		"refused on a non-loopback --listen without --allow-insecure-non-loopback")
	fs.BoolVar(&o.allowInsecureNonLoopback, "allow-insecure-non-loopback", false, "allow --insecure-http or --anonymous-auth on an address other machines can reach")
	fs.StringVar(&o.audit.Path, "audit-log-path", "", "write the audit log, one JSON audit.k8s.io/v1 Event per line, to this file ('-' for standard output; empty: no audit log)")
	fs.StringVar(&o.audit.PolicyFile, "audit-policy-file", "", "audit.k8s.io/v1 Policy file saying what is audited at which level (default: Metadata for all but health probes); Secrets are never audited above Metadata")
	fs.IntVar(&o.audit.MaxSizeMB, "audit-log-maxsize", audit.DefaultMaxSizeMB, "size in megabytes at which the audit log file is rotated")
	fs.IntVar(&o.audit.MaxBackups, "audit-log-maxbackup", audit.DefaultMaxBackups, "how many rotated audit log files are kept (0: all, as kube-apiserver)")
	fs.IntVar(&o.audit.MaxAgeDays, "audit-log-maxage", 0, "days after which rotated audit log files are removed (0: kept whatever their age)")
	fs.VisitAll(func(f *pflag.Flag) {
		f.Usage += " [env " + envName(f.Name) + "]"
		o.envFlags = append(o.envFlags, f.Name)
	})
}

// envName is the environment variable that sets the flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// config builds the server configuration from the parsed flags fs, filling
// each flag not given on the command line from its environment variable.
// Logs go to logOut.
func (o *serveOptions) config(fs *pflag.FlagSet, getenv func(string) string, logOut io.Writer) (server.Config, error) {
	var errs []error
	for _, flagName := range o.envFlags {
		f := fs.Lookup(flagName)
		if f == nil || f.Changed {
			continue
		}
		name := envName(flagName)
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s: %w", name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return server.Config{}, err
	}
	logger, err := o.logger(logOut)
	if err != nil {
		return server.Config{}, err
	}
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return server.Config{}, fmt.Errorf("data directory: %w", err)
	}
	kubeconfig := o.kubeconfigOut
	if kubeconfig == "" {
		kubeconfig = filepath.Join(dataDir, "kubeconfig")
	}
	if kubeconfig, err = filepath.Abs(kubeconfig); err != nil {
		return server.Config{}, fmt.Errorf("kubeconfig path: %w", err)
	}
	pkiDir := o.pkiDir
	if pkiDir == "" {
		pkiDir = filepath.Join(dataDir, "pki")
	}
	if pkiDir, err = filepath.Abs(pkiDir); err != nil {
		return server.Config{}, fmt.Errorf("PKI directory: %w", err)
	}
	run, err := o.enabledControllers()
	if err != nil {
		return server.Config{}, err
	}
	auditCfg := o.audit
	if auditCfg.MaxBackups == 0 {
		auditCfg.MaxBackups = -1 // kube-apiserver's 0 keeps every file
	}
	return server.Config{
		DisableGarbageCollector:    !o.enableGC || !run[gcController],
		DisableNamespaceController: !run[namespaceController],
		LeaderElection: server.LeaderElection{
			Disabled: !o.leaderElect, LeaseDuration: o.leaseDuration, RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod,
		},
		Forwarding: server.Forwarding{
			Disabled: !o.forwardWrites, Listen: o.peerListen, AdvertiseAddress: o.peerAdvertise,
		},
		Profiling:                o.profiling,
		PKIDir:                   pkiDir,
		TLSSANs:                  o.tlsSANs,
		TLSCertFile:              o.tlsCertFile,
		TLSKeyFile:               o.tlsKeyFile,
		ClientCAFile:             o.clientCAFile,
		TokenAuthFile:            o.tokenAuthFile,
		OIDC:                     o.oidc,
		InsecureHTTP:             o.insecureHTTP,
		AnonymousAuth:            o.anonymousAuth,
		AllowInsecureNonLoopback: o.allowInsecureNonLoopback,
		Audit:                    auditCfg,
		DataDir:                  dataDir,
		Storage:                  o.storage,
		Listen:                   o.listen,
		RequestTimeout:           o.requestTimeout,
		MaxBodyBytes:             o.maxBodyBytes,
		MaxObjectBytes:           o.maxObjectBytes,
		FlowControl:              o.flowControl,
		CompactionWindow:         o.compactionWindow,
		EventTTL:                 o.eventTTL,
		CompactionInterval:       o.compactionInterval,
		KubeconfigPath:           kubeconfig,
		Logger:                   logger,
	}, nil
}

// The built-in controllers' names in --controllers, as
// kube-controller-manager's.
const (
	gcController        = "garbagecollector"
	namespaceController = "namespace"
)

var controllerNames = []string{gcController, namespaceController}

// enabledControllers reads --controllers as kube-controller-manager does:
// a controller runs if it is named, or if '*' is given and it is not
// named with a leading '-'.
func (o *serveOptions) enabledControllers() (map[string]bool, error) {
	all := false
	named := map[string]bool{}
	for _, c := range o.controllers {
		name, off := strings.CutPrefix(c, "-")
		switch {
		case c == "*":
			all = true
			continue
		case !slices.Contains(controllerNames, name):
			return nil, newUsageError("setpoint serve --controllers=*,-namespace",
				"invalid --controllers entry %q: want '*', %s, or one of them after '-'", c, strings.Join(controllerNames, ", "))
		}
		named[name] = !off
	}
	run := map[string]bool{}
	for _, name := range controllerNames {
		on, ok := named[name]
		run[name] = on || (all && !ok)
	}
	return run, nil
}

// logger builds the server's logger from --log-level and --log-format.
func (o *serveOptions) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, newUsageError("setpoint serve --log-level debug", "invalid --log-level %q: want debug, info, warn or error", o.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, newUsageError("setpoint serve --log-format json", "invalid --log-format %q: want text or json", o.logFormat)
	}
}

// runServer runs a server with cfg until ctx ends, telling the user on
// banner how to reach it once it is ready.
func runServer(ctx context.Context, cfg server.Config, banner io.Writer) error {
	srv, err := server.New(cfg)
	if err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case err := <-done:
		return serverExit(err)
	case <-srv.Ready():
	}
	data := cfg.DataDir
	if cfg.Storage != "" {
		data = server.RedactStorage(cfg.Storage)
	}
	fmt.Fprintf(banner, `Setpoint is listening on %s (data in %s).
To use it:

  export KUBECONFIG=%s
  kubectl get namespaces
  setpoint get customresourcedefinitions

`, srv.Addr(), data, cfg.KubeconfigPath)
	return serverExit(<-done)
}

// serverExit turns the result of Server.Run into the command's result: a
// shutdown because the context ended is a clean exit.
func serverExit(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("server: %w", err)
}
