package server_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

// BenchmarkDiscovery measures GET /apis in the aggregated form client-go
// asks for, over HTTP, consistent read of the registry (one
// CurrentRevision read of the store) included.
func BenchmarkDiscovery(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchmarkDiscovery(b, "") })
	b.Run("postgres", func(b *testing.B) { benchmarkDiscovery(b, pgtest.URL(b)) })
}

func benchmarkDiscovery(b *testing.B, storage string) {
	r := startReplica(b, storage)
	req, err := http.NewRequestWithContext(context.Background(), "GET", r.url+"/apis", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
	hc, err := clientFor(r.url)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}
