//go:build race

package controller_test

// raceEnabled reports whether the tests run under the race detector, which
// makes the replica processes several times slower.
const raceEnabled = true
