package apiserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/apiserver"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

// stallingStore answers reads only when its context ends while stall is
// set: a database too slow to answer.
type stallingStore struct {
	*sqlite.Store
	stall atomic.Bool
}

func (s *stallingStore) wait(ctx context.Context) error {
	if !s.stall.Load() {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *stallingStore) Get(ctx context.Context, key storage.Key) (storage.Object, error) {
	if err := s.wait(ctx); err != nil {
		return storage.Object{}, err
	}
	return s.Store.Get(ctx, key)
}

func (s *stallingStore) CurrentRevision(ctx context.Context) (int64, error) {
	if err := s.wait(ctx); err != nil {
		return 0, err
	}
	return s.Store.CurrentRevision(ctx)
}

// TestRequestTimeout checks that a request the store does not answer ends
// with 504 Timeout after Options.RequestTimeout, or after a shorter
// timeout parameter, and that a longer parameter does not lift the cap.
func TestRequestTimeout(t *testing.T) {
	e := newEnv(t)
	store := &stallingStore{Store: e.store}
	reg, err := registry.New(registry.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	const limit = 200 * time.Millisecond
	h, err := apiserver.New(apiserver.Options{Registry: reg, RequestTimeout: limit})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	slow := &env{srv: srv, store: e.store, reg: reg}

	store.stall.Store(true)
	for _, tt := range []struct {
		query string
		least time.Duration
	}{
		{"", limit},
		{"?timeout=50ms", 50 * time.Millisecond},
		{"?timeout=1h", limit},
		{"?timeout=0s", limit},
	} {
		start := time.Now()
		slow.expectStatus(t, http.StatusGatewayTimeout, "Timeout", "GET", "/api/v1/namespaces/default"+tt.query, "")
		if d := time.Since(start); d < tt.least {
			t.Errorf("GET %s: 504 after %v, before the timeout of %v", tt.query, d, tt.least)
		}
	}
	store.stall.Store(false)
	slow.expect(t, http.StatusOK, "GET", "/api/v1/namespaces/default", "")
}
