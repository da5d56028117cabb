package cli

import (
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/setpoint/setpoint/internal/audit"
	"github.com/setpoint/setpoint/internal/authn"
	"github.com/setpoint/setpoint/internal/flowcontrol"
	"github.com/setpoint/setpoint/internal/server"
)

// serveConfig maps args and env onto a server configuration the way
// "setpoint serve" does.
func serveConfig(t *testing.T, args []string, env map[string]string) (server.Config, error) {
	t.Helper()
	o := &serveOptions{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return o.config(fs, func(k string) string { return env[k] }, io.Discard)
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// defaultElection is the controllers' election without flags.
var defaultElection = server.LeaderElection{
	LeaseDuration: server.DefaultLeaseDuration, RenewDeadline: server.DefaultRenewDeadline, RetryPeriod: server.DefaultRetryPeriod,
}

func TestServeConfigDefaults(t *testing.T) {
	cfg, err := serveConfig(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := server.Config{
		DataDir:            abs(t, "setpoint-data"),
		Listen:             "127.0.0.1:6443",
		MaxBodyBytes:       3 << 20,
		MaxObjectBytes:     3 << 19,
		FlowControl:        flowcontrol.Options{MaxInflight: 600, MaxInflightPerUser: 100, MaxWatches: 5000, MaxWatchesPerUser: 1000},
		RequestTimeout:     time.Minute,
		CompactionWindow:   5 * time.Minute,
		CompactionInterval: time.Minute,
		EventTTL:           time.Hour,
		KubeconfigPath:     abs(t, "setpoint-data/kubeconfig"),
		PKIDir:             abs(t, "setpoint-data/pki"),
		OIDC:               authn.OIDCOptions{UsernameClaim: "sub"},
		LeaderElection:     defaultElection,
		Audit:              audit.Config{MaxSizeMB: 100, MaxBackups: 10},
	}
	checkConfig(t, cfg, want)
	if !cfg.Logger.Enabled(t.Context(), slog.LevelInfo) || cfg.Logger.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("default logger should log info and not debug")
	}
}

func TestServeConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"SETPOINT_DATA_DIR":                       dir,
		"SETPOINT_LISTEN":                         "127.0.0.1:0",
		"SETPOINT_STORAGE":                        "postgres://setpoint:secret@db:5432/setpoint",
		"SETPOINT_REQUEST_TIMEOUT":                "5s",
		"SETPOINT_MAX_BODY_BYTES":                 "1024",
		"SETPOINT_MAX_OBJECT_BYTES":               "512",
		"SETPOINT_MAX_REQUESTS_INFLIGHT":          "50",
		"SETPOINT_MAX_REQUESTS_INFLIGHT_PER_USER": "5",
		"SETPOINT_MAX_WATCHES":                    "70",
		"SETPOINT_MAX_WATCHES_PER_USER":           "7",
		"SETPOINT_COMPACTION_WINDOW":              "90s",
		"SETPOINT_COMPACTION_INTERVAL":            "10s",
		"SETPOINT_EVENT_TTL":                      "2h",
		"SETPOINT_LOG_LEVEL":                      "debug",
		"SETPOINT_LOG_FORMAT":                     "json",
		"SETPOINT_PKI_DIR":                        filepath.Join(dir, "shared-pki"),
		"SETPOINT_TLS_SAN":                        "api.example,10.0.0.1",
		"SETPOINT_TOKEN_AUTH_FILE":                "/etc/setpoint/tokens",
		"SETPOINT_ANONYMOUS_AUTH":                 "true",
		"SETPOINT_OIDC_ISSUER_URL":                "https://issuer.example",
		"SETPOINT_OIDC_CLIENT_ID":                 "setpoint",
		"SETPOINT_OIDC_USERNAME_CLAIM":            "email",
		"SETPOINT_OIDC_GROUPS_CLAIM":              "groups",
		"SETPOINT_OIDC_CA_FILE":                   "/etc/issuer.crt",
		"SETPOINT_AUDIT_LOG_PATH":                 "-",
		"SETPOINT_AUDIT_POLICY_FILE":              "/etc/setpoint/audit.yaml",
		"SETPOINT_AUDIT_LOG_MAXSIZE":              "5",
		"SETPOINT_AUDIT_LOG_MAXBACKUP":            "0",
		"SETPOINT_AUDIT_LOG_MAXAGE":               "7",
	}
	cfg, err := serveConfig(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, cfg, server.Config{
		DataDir:            dir,
		Storage:            "postgres://setpoint:secret@db:5432/setpoint",
		Listen:             "127.0.0.1:0",
		RequestTimeout:     5 * time.Second,
		MaxBodyBytes:       1024,
		MaxObjectBytes:     512,
		FlowControl:        flowcontrol.Options{MaxInflight: 50, MaxInflightPerUser: 5, MaxWatches: 70, MaxWatchesPerUser: 7},
		CompactionWindow:   90 * time.Second,
		CompactionInterval: 10 * time.Second,
		EventTTL:           2 * time.Hour,
		KubeconfigPath:     filepath.Join(dir, "kubeconfig"),
		PKIDir:             filepath.Join(dir, "shared-pki"),
		TLSSANs:            []string{"api.example", "10.0.0.1"},
		TokenAuthFile:      "/etc/setpoint/tokens",
		AnonymousAuth:      true,
		OIDC: authn.OIDCOptions{IssuerURL: "https://issuer.example", ClientID: "setpoint", UsernameClaim: "email",
			GroupsClaim: "groups", CAFile: "/etc/issuer.crt"},
		LeaderElection: defaultElection,
		Audit:          audit.Config{Path: "-", PolicyFile: "/etc/setpoint/audit.yaml", MaxSizeMB: 5, MaxBackups: -1, MaxAgeDays: 7},
	})
	if !cfg.Logger.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("SETPOINT_LOG_LEVEL=debug should enable debug logs")
	}
	if _, ok := cfg.Logger.Handler().(*slog.JSONHandler); !ok {
		t.Errorf("SETPOINT_LOG_FORMAT=json gave a %T", cfg.Logger.Handler())
	}

	t.Run("flag_wins", func(t *testing.T) {
		cfg, err := serveConfig(t, []string{"--listen", "127.0.0.1:7000", "--kubeconfig-out", filepath.Join(dir, "kc"), "--storage", ""}, env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Listen != "127.0.0.1:7000" {
			t.Errorf("Listen = %q, want the flag's value", cfg.Listen)
		}
		if cfg.KubeconfigPath != filepath.Join(dir, "kc") {
			t.Errorf("KubeconfigPath = %q, want the flag's value", cfg.KubeconfigPath)
		}
		if cfg.Storage != "" {
			t.Errorf("Storage = %q, want the flag's empty value (SQLite) over SETPOINT_STORAGE", cfg.Storage)
		}
		if cfg.MaxBodyBytes != 1024 {
			t.Errorf("MaxBodyBytes = %d, want 1024 from the environment", cfg.MaxBodyBytes)
		}
	})
}

// TestServeControllerFlags maps the controller flags onto the config as
// kube-controller-manager reads its own.
func TestServeControllerFlags(t *testing.T) {
	tests := []struct {
		args          []string
		env           map[string]string
		noGC, noNS    bool
		noLeaderElect bool
	}{
		{args: nil},
		{args: []string{"--enable-garbage-collector=false"}, noGC: true},
		{args: []string{"--controllers", "*,-namespace"}, noNS: true},
		{args: []string{"--controllers", "namespace"}, noGC: true},
		{args: []string{"--controllers", "-garbagecollector,namespace"}, noGC: true},
		{args: []string{"--controllers", "garbagecollector", "--enable-garbage-collector=false"}, noGC: true, noNS: true},
		{env: map[string]string{"SETPOINT_CONTROLLERS": "*,-garbagecollector"}, noGC: true},
		{args: []string{"--controllers-leader-elect=false"}, noLeaderElect: true},
	}
	for _, tt := range tests {
		cfg, err := serveConfig(t, tt.args, tt.env)
		if err != nil {
			t.Fatalf("%v %v: %v", tt.args, tt.env, err)
		}
		if cfg.DisableGarbageCollector != tt.noGC || cfg.DisableNamespaceController != tt.noNS || cfg.LeaderElection.Disabled != tt.noLeaderElect {
			t.Errorf("%v %v: DisableGarbageCollector %v, DisableNamespaceController %v, LeaderElection.Disabled %v; want %v, %v, %v",
				tt.args, tt.env, cfg.DisableGarbageCollector, cfg.DisableNamespaceController, cfg.LeaderElection.Disabled, tt.noGC, tt.noNS, tt.noLeaderElect)
		}
	}
	cfg, err := serveConfig(t, []string{"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=1s", "--profiling"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (server.LeaderElection{LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: time.Second}); cfg.LeaderElection != want || !cfg.Profiling {
		t.Errorf("LeaderElection %+v, Profiling %v; want %+v, true", cfg.LeaderElection, cfg.Profiling, want)
	}
	if cfg.Forwarding != (server.Forwarding{}) {
		t.Errorf("Forwarding %+v by default, want the zero value", cfg.Forwarding)
	}
	cfg, err = serveConfig(t, []string{"--forward-writes=false", "--peer-listen", "0.0.0.0:7000"}, map[string]string{"SETPOINT_PEER_ADVERTISE_ADDRESS": "10.0.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (server.Forwarding{Disabled: true, Listen: "0.0.0.0:7000", AdvertiseAddress: "10.0.0.5"}); cfg.Forwarding != want {
		t.Errorf("Forwarding %+v, want %+v", cfg.Forwarding, want)
	}
}

func TestServeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad_env_duration", nil, map[string]string{"SETPOINT_COMPACTION_WINDOW": "soon"}, "SETPOINT_COMPACTION_WINDOW"},
		{"bad_env_number", nil, map[string]string{"SETPOINT_MAX_BODY_BYTES": "lots"}, "SETPOINT_MAX_BODY_BYTES"},
		{"bad_log_level", []string{"--log-level", "loud"}, nil, `invalid --log-level "loud"`},
		{"bad_log_format", nil, map[string]string{"SETPOINT_LOG_FORMAT": "xml"}, `invalid --log-format "xml"`},
		{"unknown_controller", []string{"--controllers", "*,-replicaset"}, nil, `invalid --controllers entry "-replicaset"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := serveConfig(t, tt.args, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestServeHelpNamesEnvironmentVariables(t *testing.T) {
	var out strings.Builder
	root := NewRootCommand(Env{Out: &out, ErrOut: &out, Getenv: func(string) string { return "" }})
	root.SetArgs([]string{"serve", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"SETPOINT_DATA_DIR", "SETPOINT_STORAGE", "SETPOINT_REQUEST_TIMEOUT", "SETPOINT_LISTEN", "SETPOINT_MAX_BODY_BYTES", "SETPOINT_COMPACTION_WINDOW",
		"SETPOINT_COMPACTION_INTERVAL", "SETPOINT_KUBECONFIG_OUT", "SETPOINT_LOG_LEVEL", "SETPOINT_LOG_FORMAT"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("serve --help does not mention %s", name)
		}
	}
}

func checkConfig(t *testing.T, got, want server.Config) {
	t.Helper()
	if got.Logger == nil {
		t.Error("Logger is nil")
	}
	got.Logger = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config = %+v\nwant      %+v", got, want)
	}
}

// TestServeBadStorageKeepsPasswordSecret checks that a storage value that
// is not supported fails before anything starts, with an error that says
// why and does not repeat the password.
func TestServeBadStorageKeepsPasswordSecret(t *testing.T) {
	for _, storage := range []string{"mysql://root:hunter2@db/setpoint", "host=db user=root password=hunter2"} {
		var out strings.Builder
		root := NewRootCommand(Env{Out: &out, ErrOut: &out, Getenv: func(string) string { return "" }})
		root.SetArgs([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--storage", storage})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), "Storage") {
			t.Errorf("--storage %q: err = %v, want a Storage config error", storage, err)
		}
		if err != nil && strings.Contains(err.Error()+out.String(), "hunter2") {
			t.Errorf("--storage %q: the password shows in %q / %q", storage, err, out.String())
		}
	}
}

// TestServeRefusesInsecureNonLoopback checks that plain HTTP and anonymous
// access on an address other machines reach need the second flag, and
// that the error says why.
func TestServeRefusesInsecureNonLoopback(t *testing.T) {
	for _, flag := range []string{"--insecure-http", "--anonymous-auth"} {
		var out strings.Builder
		root := NewRootCommand(Env{Out: &out, ErrOut: &out, Getenv: func(string) string { return "" }})
		root.SetArgs([]string{"serve", "--data-dir", t.TempDir(), "--listen", "0.0.0.0:0", flag})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), "--allow-insecure-non-loopback") ||
			!strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("serve %s on 0.0.0.0: %v", flag, err)
		}
	}
}
