// Package e2e tests the built setpoint binary from the outside, with the
// clients real users run: client-go's typed, dynamic and REST clients,
// discovery, informers and raw HTTP. Every test starts its own server
// process on a fresh data directory (see harness_test.go); SETPOINT_BIN
// names the binary, or TestMain builds it from ../../cmd/setpoint.
package e2e
