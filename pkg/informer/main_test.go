package informer_test

import (
	"testing"

	"github.com/setpoint/setpoint/internal/leakcheck"
)

// TestMain fails the package when a goroutine of the informer or the client
// outlives the tests: Run must stop everything it started.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "setpoint/pkg/informer.", "setpoint/pkg/client.")
}
