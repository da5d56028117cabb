package client_test

import (
	"testing"

	"github.com/setpoint/setpoint/internal/leakcheck"
)

// TestMain fails the tests when a watch goroutine outlives its stream.
func TestMain(m *testing.M) { leakcheck.Main(m, "setpoint/pkg/client.(") }
