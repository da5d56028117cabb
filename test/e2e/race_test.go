//go:build race

package e2e

// raceEnabled reports whether the suite runs under the race detector.
const raceEnabled = true
