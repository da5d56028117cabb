package server_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/setpoint/setpoint/internal/server"
)

func TestRedactStorage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "sqlite"},
		{"postgres://setpoint@db:5432/setpoint?sslmode=disable", "postgres://setpoint@db:5432/setpoint?sslmode=disable"},
		{"postgres://setpoint:hunter2@db:5432/setpoint", "postgres://setpoint:xxxxx@db:5432/setpoint"},
		{"postgresql://db/setpoint?password=hunter2&sslmode=disable", "postgresql://db/setpoint?password=xxxxx&sslmode=disable"},
		{"postgres://db/setpoint?sslpassword=hunter2", "postgres://db/setpoint?sslpassword=xxxxx"},
		{"postgres://u:hunter2@db:port/x", "(invalid URL)"},
	}
	for _, tt := range tests {
		if got := server.RedactStorage(tt.in); got != tt.want {
			t.Errorf("RedactStorage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestInvalidStorage checks that New refuses a Storage value that is not a
// PostgreSQL URL, without repeating it (it may hold a password).
func TestInvalidStorage(t *testing.T) {
	for _, storage := range []string{
		"mysql://root:hunter2@db/setpoint",
		"host=db password=hunter2",
		"postgres://root:hunter2@db:port/setpoint",
		"sqlite",
	} {
		_, err := server.New(server.Config{DataDir: t.TempDir(), Storage: storage, Logger: slog.New(slog.DiscardHandler)})
		if err == nil || !strings.Contains(err.Error(), "Storage") {
			t.Errorf("Storage %q: err = %v, want a Storage config error", storage, err)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Storage %q: the error shows the password: %v", storage, err)
		}
	}
}
