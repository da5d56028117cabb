// Package e2e tests the built setpoint binary from the outside, with the
// clients real users run: client-go's typed, dynamic, metadata and REST
// clients, discovery, the REST mapper, informers, raw HTTP, upstream
// kubectl and controller-runtime, which runs a small typed operator
// (operator/api/v1; controller-gen generates its CRDs in testdata/crds:
// `go generate ./operator/api/v1`). Every test starts its own server
// process on a fresh data directory (see harness_test.go) and may stop,
// kill -9 and restart it.
//
// Environment:
//   - SETPOINT_BIN names the binary under test; without it TestMain builds
//     ../../cmd/setpoint once.
//   - KUBECTL_BIN names a kubectl to use; without it TestKubectl builds
//     ./cmd/kubectl (upstream kubectl in its own module) once.
//   - SETPOINT_TEST_POSTGRES is the URL of a PostgreSQL database the suite
//     may create schemas in (and, on its server, databases of its own for
//     fault injection). The crash tests then also run on PostgreSQL, and
//     the HA tests run three replicas on one database (ha_test.go); without
//     it they skip.
package e2e
