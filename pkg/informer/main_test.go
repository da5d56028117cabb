package informer_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when a goroutine of the informer or the client
// outlives the tests: Run must stop everything it started.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leak := leftover(); leak != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running:\n%s\n", leak)
			code = 1
		}
	}
	os.Exit(code)
}

// leftover returns the stacks of informer or client goroutines still
// running, giving them a few seconds to finish.
func leftover() string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaks []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "setpoint/pkg/informer.") || strings.Contains(g, "setpoint/pkg/client.") {
				leaks = append(leaks, g)
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			return strings.Join(leaks, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
