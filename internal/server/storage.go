package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/setpoint/setpoint/internal/storage"
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

// openStorage opens the store cfg names: PostgreSQL for a URL, SQLite in
// DataDir otherwise.
func openStorage(ctx context.Context, cfg *Config) (storage.Store, error) {
	if cfg.postgres {
		store, err := postgres.Open(ctx, cfg.Storage, postgres.Options{})
		if err != nil {
			return nil, fmt.Errorf("server: open PostgreSQL storage %s: %w", RedactStorage(cfg.Storage), err)
		}
		return store, nil
	}
	store, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, databaseFile), sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("server: open storage: %w", err)
	}
	return store, nil
}
