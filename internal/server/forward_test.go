package server_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/setpoint/setpoint/internal/server"
	"github.com/setpoint/setpoint/internal/storage/postgres"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

// electedWriter returns the peer address the schema's writer publishes,
// or "" if none.
func electedWriter(t *testing.T, url string) string {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	el := s.NewElection()
	defer el.Resign(context.Background())
	rec, ok, err := el.Elected(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return rec.Address
}

// TestReplicasElectWriter starts three replicas: one publishes its peer
// listener, on the API's host, and writes through every replica work.
func TestReplicasElectWriter(t *testing.T) {
	url := pgtest.URL(t)
	rs := []*replica{startReplica(t, url), startReplica(t, url), startReplica(t, url)}
	addr := electedWriter(t, url)
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("writer's peer address %q, want one on 127.0.0.1", addr)
	}
	for i, r := range rs {
		must(t, http.StatusCreated, "POST", r.url+"/api/v1/namespaces/default/configmaps", configMap("default", "cm"+string(rune('a'+i)), ""))
	}
	for i := range rs {
		must(t, http.StatusOK, "GET", rs[0].url+"/api/v1/namespaces/default/configmaps/cm"+string(rune('a'+i)), "")
	}
}

// TestForwardingNeedsAdvertiseAddress checks that a replica whose peer
// listener would be on an unspecified host, with no advertise address,
// says forwarding is off and publishes nothing, and that with one it
// publishes that address.
func TestForwardingNeedsAdvertiseAddress(t *testing.T) {
	url := pgtest.URL(t)
	logs := &lineLog{}
	startReplica(t, url, func(c *server.Config) {
		c.Listen = "0.0.0.0:0"
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	if !logs.contains("write forwarding is off") {
		t.Fatal("no warning that forwarding is off")
	}
	if addr := electedWriter(t, url); addr != "" {
		t.Fatalf("writer %q published without an address", addr)
	}
	startReplica(t, url, func(c *server.Config) {
		c.Forwarding = server.Forwarding{Listen: "0.0.0.0:0", AdvertiseAddress: "127.0.0.1"}
	})
	if addr := electedWriter(t, url); !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("writer's peer address %q, want 127.0.0.1 and the listener's port", addr)
	}
}
