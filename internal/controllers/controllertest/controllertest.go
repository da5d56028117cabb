// Package controllertest holds what the built-in controllers' tests share.
package controllertest

import (
	"context"
	"testing"
)

// Run runs run in a goroutine until the returned stop is called or the test
// ends, whichever comes first; stop cancels run's context, waits for it to
// return and reports an error it returns. name says what ran, in that
// report. stop may be called more than once.
func Run(t testing.TB, name string, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	t.Cleanup(stop)
	return stop
}
