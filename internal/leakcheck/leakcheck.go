// Package leakcheck fails a test binary whose goroutines outlive its tests.
// Packages that start goroutines call Main from their TestMain.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Wait is how long Main gives matching goroutines to end after the tests
// pass; a goroutine that is exiting needs a moment.
const Wait = 10 * time.Second

// Main runs the tests of m and, if they pass, fails the binary when a
// goroutine whose stack contains any of marks is still running after Wait.
// It prints the stacks of those goroutines and exits.
func Main(m *testing.M, marks ...string) {
	code := m.Run()
	if code == 0 {
		if left := Leftover(Wait, marks...); left != "" {
			fmt.Fprintf(os.Stderr, "goroutines outlived the tests:\n%s\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

// Leftover waits up to wait for the goroutines whose stacks contain any of
// marks to end, and returns the stacks of those that remain ("" for none).
// The calling goroutine is never counted.
func Leftover(wait time.Duration, marks ...string) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if !strings.Contains(g, "leakcheck.Leftover(") && containsAny(g, marks) {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return strings.Join(left, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
