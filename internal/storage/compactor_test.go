package storage_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func write(t *testing.T, s storage.Store, n int) int64 {
	t.Helper()
	var rev int64
	for range n {
		cur, err := s.CurrentRevision(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		obj, err := s.Create(t.Context(), storage.Key{Resource: "r", Name: fmt.Sprint(cur)}, []byte("{}"), nil)
		if err != nil {
			t.Fatal(err)
		}
		rev = obj.Revision
	}
	return rev
}

func TestCompactorKeepsWindow(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := storage.NewCompactor(s, storage.CompactorOptions{Window: 10 * time.Minute, Now: func() time.Time { return now }})

	step := func(want int64) {
		t.Helper()
		got, err := c.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("at %s compacted to %d, want %d", now.Format(time.TimeOnly), got, want)
		}
	}
	r1 := write(t, s, 3)
	step(0) // records r1 at 00:00
	now = now.Add(5 * time.Minute)
	write(t, s, 3)
	step(0) // records r2 at 00:05; r1 is 5 minutes old
	now = now.Add(5 * time.Minute)
	r3 := write(t, s, 3)
	step(r1) // r1 is 10 minutes old, r2 only 5
	if got, _ := s.CompactedRevision(ctx); got != r1 {
		t.Fatalf("store compacted revision = %d, want %d", got, r1)
	}
	if _, err := s.Changes(ctx, r1-1, 10); !errors.Is(err, storage.ErrCompacted) {
		t.Fatalf("changes before the window: %v, want ErrCompacted", err)
	}
	if _, err := s.Changes(ctx, r1, 10); err != nil {
		t.Fatalf("changes inside the window: %v", err)
	}
	step(0) // nothing new is old enough
	now = now.Add(20 * time.Minute)
	step(r3) // no write since 00:10, so r3 is 20 minutes old
	r4 := write(t, s, 1)
	now = now.Add(time.Minute)
	step(0) // r4 was first seen just now
	now = now.Add(10 * time.Minute)
	step(r4)
}

func TestCompactorRunStops(t *testing.T) {
	s := openStore(t)
	write(t, s, 2)
	ctx, cancel := context.WithCancel(t.Context())
	c := storage.NewCompactor(s, storage.CompactorOptions{Window: time.Nanosecond, Interval: time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rev, err := s.CompactedRevision(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if rev > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not compact")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}
