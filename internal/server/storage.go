package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/forward"
	"github.com/setpoint/setpoint/internal/storage/postgres"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

// checkStorage reports whether Config.Storage names PostgreSQL, and fails
// for a value that is neither empty nor a postgres:// or postgresql:// URL.
// Its errors never repeat the value, which may hold a password.
func checkStorage(s string) (postgres bool, err error) {
	if s == "" {
		return false, nil
	}
	scheme, _, found := strings.Cut(s, "://")
	switch {
	case !found:
		return false, errors.New(`Storage is not a URL: want "" (embedded SQLite in DataDir) or postgres://user@host:port/database`)
	case scheme != "postgres" && scheme != "postgresql":
		return false, fmt.Errorf(`Storage scheme %q is not supported: want "" (embedded SQLite in DataDir) or postgres://user@host:port/database`, redactScheme(scheme))
	}
	if _, err := url.Parse(s); err != nil {
		// url.Error repeats the URL: say only what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return false, fmt.Errorf("Storage is not a valid PostgreSQL URL: %v", err)
	}
	return true, nil
}

// redactScheme keeps an unknown scheme out of errors when it is long or
// odd enough to be something else pasted by mistake.
func redactScheme(scheme string) string {
	if len(scheme) > 16 || strings.ContainsAny(scheme, " =:@/") {
		return "..."
	}
	return scheme
}

// RedactStorage returns a Config.Storage value fit for logs and messages:
// "" becomes "sqlite", and in a URL the password (user information or a
// password query parameter) is replaced by "xxxxx".
func RedactStorage(s string) string {
	if s == "" {
		return "sqlite"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	q := u.Query()
	for key := range q {
		if strings.Contains(strings.ToLower(key), "password") {
			q.Set(key, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// Forwarding configures write forwarding between PostgreSQL replicas.
// Zero values take the documented defaults.
type Forwarding struct {
	// Disabled makes the replica commit its writes itself. Default false:
	// every replica sends its writes to the elected writer replica.
	Disabled bool
	// Listen is the TCP address of the peer listener, on which the
	// writer receives the other replicas' writes over TLS. Default the
	// host of Listen with port 0 (a free port).
	Listen string
	// AdvertiseAddress is the host, or host:port, at which the other
	// replicas reach the peer listener; default Listen's. Required when
	// the peer listener's host is unspecified (0.0.0.0, ::): without it
	// the replica logs that forwarding is off and commits its writes
	// itself. Without a port, the peer listener's port is used.
	AdvertiseAddress string
}

// openStorage opens the store cfg names: PostgreSQL for a URL, SQLite in
// DataDir otherwise.
func openStorage(ctx context.Context, cfg *Config) (storage.Store, error) {
	if cfg.postgres {
		store, err := postgres.Open(ctx, cfg.Storage, postgres.Options{})
		if err != nil {
			return nil, fmt.Errorf("server: open PostgreSQL storage %s: %w", RedactStorage(cfg.Storage), err)
		}
		if cfg.Forwarding.Disabled {
			return store, nil
		}
		fwd, err := openForwarding(store, cfg)
		if err != nil {
			return nil, errors.Join(err, store.Close())
		}
		return fwd, nil
	}
	store, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, databaseFile), sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("server: open storage: %w", err)
	}
	return store, nil
}

// forwardOverhead is what a stored object may hold beyond the request
// body that made it (metadata the server adds), for the peer protocol's
// size bound.
const forwardOverhead = 1 << 20

// openForwarding wraps store so that its writes go to the elected writer
// replica, with a peer listener as cfg.Forwarding says. If the listener
// has no address peers can dial, it logs that forwarding is off and
// returns store.
func openForwarding(store *postgres.Store, cfg *Config) (storage.Store, error) {
	fc := cfg.Forwarding
	addr := fc.Listen
	if addr == "" {
		apiAddr := cfg.Listen
		if cfg.Listener != nil {
			apiAddr = cfg.Listener.Addr().String()
		}
		host, _, err := net.SplitHostPort(apiAddr)
		if err != nil {
			return nil, fmt.Errorf("server: peer listener from Listen %q: %w", apiAddr, err)
		}
		addr = net.JoinHostPort(host, "0")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("server: peer listener %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); fc.AdvertiseAddress == "" && (host == "" || ip != nil && ip.IsUnspecified()) {
		cfg.Logger.Warn("write forwarding is off: the peer listener's host is unspecified and no peer advertise address is given; this replica commits its writes itself",
			"peer_listen", addr)
		return store, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: peer listener: %w", err)
	}
	advertise := fc.AdvertiseAddress
	if advertise != "" {
		if _, _, err := net.SplitHostPort(advertise); err != nil {
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			advertise = net.JoinHostPort(advertise, port)
		}
	}
	fwd, err := forward.New(store, forward.Options{
		Listener:         ln,
		AdvertiseAddress: advertise,
		MaxRequestBytes:  2 * (cfg.MaxBodyBytes + forwardOverhead),
		Logger:           cfg.Logger,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	return fwd, nil
}
