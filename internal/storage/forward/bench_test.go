package forward_test

import (
	"testing"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/forward"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
	"github.com/setpoint/setpoint/internal/storage/storagetest"
)

// replicas3 opens three replicas on a fresh schema, the first the writer,
// and spreads creates over them round-robin. Compare with package
// postgres's BenchmarkCreate32Replicas3 (each replica commits its own)
// and BenchmarkCreate32 (one store).
func replicas3(b testing.TB) storagetest.Opener {
	url := pgtest.URL(b)
	return func(b testing.TB) storage.Store {
		open := func() storage.Store { return openReplica(b, url, forward.Options{}) }
		return storagetest.Spread(open(), open(), open())
	}
}

func BenchmarkCreate32Replicas3(b *testing.B) { storagetest.BenchCreate(b, replicas3, 32) }
