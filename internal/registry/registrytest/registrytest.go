// Package registrytest starts a registry over a fresh SQLite store for
// tests, optionally with a running change feed, and stops everything when
// the test ends.
package registrytest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

// Env is a started registry and the parts under it.
type Env struct {
	Store    *sqlite.Store
	Feed     *feed.Feed // nil unless a feed was asked for
	Registry *registry.Registry
}

// Start opens a store in t.TempDir() and starts a registry over it, with no
// change feed (CRDs and namespaces are then read from the store only).
func Start(t testing.TB) *Env {
	t.Helper()
	return start(t, nil, nil)
}

// StartWithFeed is Start with a running change feed tuned by opts.
func StartWithFeed(t testing.TB, opts feed.Options) *Env {
	t.Helper()
	return start(t, &opts, nil)
}

// StartWithWebhooks is StartWithFeed with default feed options and the
// admission webhooks w.
func StartWithWebhooks(t testing.TB, w registry.WebhookAdmission) *Env {
	t.Helper()
	return start(t, &feed.Options{}, w)
}

// StartWithSetup is StartWithFeed that runs setup on the registry before
// starting it (to add views with Follow, or serve reviews).
func StartWithSetup(t testing.TB, opts feed.Options, setup func(*registry.Registry)) *Env {
	t.Helper()
	return start(t, &opts, nil, setup)
}

func start(t testing.TB, feedOpts *feed.Options, webhooks registry.WebhookAdmission, setup ...func(*registry.Registry)) *Env {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &Env{Store: store}
	if feedOpts != nil {
		e.Feed = feed.New(store, *feedOpts)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = e.Feed.Run(context.Background())
		}()
		t.Cleanup(func() {
			e.Feed.Close()
			<-done
		})
	}
	e.Registry, err = registry.New(registry.Options{Store: store, Feed: e.Feed, Webhooks: webhooks})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(e.Registry)
	}
	if err := e.Registry.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Registry.Close() })
	return e
}
