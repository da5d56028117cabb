package client_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the tests when a watch goroutine outlives its stream.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if left := leftover(); left != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked:\n%s\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

// leftover waits up to ten seconds for goroutines running the client's
// code to end and returns the stacks of those that remain.
func leftover() string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "setpoint/pkg/client.(") {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return strings.Join(left, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
