package controller_test

import (
	"context"
	"errors"
	"testing"

	"github.com/setpoint/setpoint/pkg/controller"
)

// TestManagerStopsAllWhenOneFails runs a failing runnable beside a healthy
// one: Run stops the healthy one and returns the failure.
func TestManagerStopsAllWhenOneFails(t *testing.T) {
	m, err := controller.NewManager(controller.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	stopped := make(chan struct{})
	started := make(chan struct{})
	healthy := controller.RunnableFunc(func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		close(stopped)
		return ctx.Err()
	})
	failing := controller.RunnableFunc(func(ctx context.Context) error {
		<-started
		return boom
	})
	for _, r := range []controller.Runnable{healthy, failing} {
		if err := m.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Run(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("Run returned %v, want boom", err)
	}
	await(t, stopped, "the healthy runnable to stop")
	<-m.Elected() // closed at once without leader election
	if err := m.Add(healthy); err == nil {
		t.Error("Add after Run succeeded")
	}
	if err := m.Run(t.Context()); err == nil {
		t.Error("a second Run succeeded")
	}
}
