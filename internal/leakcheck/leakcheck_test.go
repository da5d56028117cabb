package leakcheck

import (
	"strings"
	"testing"
	"time"
)

func parkedUntil(started chan<- struct{}, stop <-chan struct{}) {
	close(started)
	<-stop
}

func TestLeftoverFindsRunningGoroutine(t *testing.T) {
	started, stop := make(chan struct{}), make(chan struct{})
	go parkedUntil(started, stop)
	<-started
	if left := Leftover(50*time.Millisecond, "leakcheck.parkedUntil("); !strings.Contains(left, "parkedUntil") {
		t.Fatalf("a parked goroutine was not reported: %q", left)
	}
	close(stop)
	if left := Leftover(5*time.Second, "leakcheck.parkedUntil("); left != "" {
		t.Fatalf("a goroutine that ended is reported:\n%s", left)
	}
}

func TestLeftoverSkipsCaller(t *testing.T) {
	if left := Leftover(0, "leakcheck.TestLeftoverSkipsCaller("); left != "" {
		t.Fatalf("the calling goroutine is reported:\n%s", left)
	}
}
