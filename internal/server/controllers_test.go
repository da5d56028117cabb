package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/server"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

// configMap is a ConfigMap's JSON; extra is appended to its metadata.
func configMap(ns, name, extra string) string {
	return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","namespace":"` + ns + `"` + extra + `}}`
}

// checkCollection creates an owner and its dependent through r, deletes
// the owner (background propagation) and waits for the garbage collector
// to delete the dependent.
func checkCollection(t *testing.T, r *replica, name string) {
	t.Helper()
	var owner struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	base := r.url + "/api/v1/namespaces/default/configmaps"
	must(t, http.StatusCreated, "POST", base, configMap("default", name, "")).decode(t, &owner)
	must(t, http.StatusCreated, "POST", base, configMap("default", name+"-dependent",
		`,"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"`+name+`","uid":"`+owner.Metadata.UID+`"}]`))
	must(t, http.StatusOK, "DELETE", base+"/"+name, "")
	eventually(t, "dependent "+name+"-dependent collected", func() bool {
		a, err := send("GET", base+"/"+name+"-dependent", "")
		return err == nil && a.code == http.StatusNotFound
	})
}

// leasePath is the Lease the replicas' controllers compete for.
const leasePath = "/apis/coordination.k8s.io/v1/namespaces/" + server.ControllersLeaseSpace + "/leases/" + server.ControllersLeaseName

// awaitLeader waits until the controllers' Lease, read through via, names
// one of rs as its holder, and returns that replica's index.
func awaitLeader(t *testing.T, via *replica, rs []*replica) int {
	t.Helper()
	leader := -1
	eventually(t, "a replica holds the controllers' lease", func() bool {
		a, err := send("GET", via.url+leasePath, "")
		if err != nil || a.code != http.StatusOK {
			return false
		}
		var lease struct {
			Spec struct {
				HolderIdentity string `json:"holderIdentity"`
			} `json:"spec"`
		}
		a.decode(t, &lease)
		for i, r := range rs {
			if strings.Contains(lease.Spec.HolderIdentity, "_"+strings.TrimPrefix(r.url, "https://")+"_") {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// listedConfigMaps reports whether r has served a list of ConfigMaps, as
// the garbage collector's informer makes one on start.
func listedConfigMaps(t *testing.T, r *replica) bool {
	t.Helper()
	a := must(t, http.StatusOK, "GET", r.url+"/metrics", "")
	for line := range strings.Lines(string(a.body)) {
		if strings.HasPrefix(line, "apiserver_request_total{") &&
			strings.Contains(line, `resource="configmaps"`) && strings.Contains(line, `verb="list"`) {
			return true
		}
	}
	return false
}

// TestControllersLeaderElection runs three replicas on one database: one
// holds the controllers' Lease and alone runs the garbage collector (the
// standbys serve no list to an informer of theirs); once it stops, another
// takes the Lease over and collects garbage in its turn.
func TestControllersLeaderElection(t *testing.T) {
	url := pgtest.URL(t)
	var rs []*replica
	for range 3 {
		rs = append(rs, startReplica(t, url, func(c *server.Config) {
			c.LeaderElection = server.LeaderElection{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond}
		}))
	}
	first := awaitLeader(t, rs[0], rs)
	checkCollection(t, rs[(first+1)%len(rs)], "first")
	for i, r := range rs {
		if listed := listedConfigMaps(t, r); listed != (i == first) {
			t.Errorf("replica %d (leader %d) listed configmaps: %v", i, first, listed)
		}
	}

	rs[first].stop()
	rest := append(rs[:first:first], rs[first+1:]...)
	second := awaitLeader(t, rest[0], rest)
	checkCollection(t, rest[(second+1)%len(rest)], "second")
	if !listedConfigMaps(t, rest[second]) {
		t.Errorf("the new leader %s runs no collector", rest[second].url)
	}
}

// TestControllersOnSQLite checks that a lone server on SQLite collects
// garbage without any election.
func TestControllersOnSQLite(t *testing.T) {
	r := startReplica(t, "")
	checkCollection(t, r, "owner")
	if a := must(t, http.StatusNotFound, "GET", r.url+leasePath, ""); a.code != http.StatusNotFound {
		t.Errorf("a lone server wrote the controllers' lease: %s", a.body)
	}
}

// TestProfiling serves pprof only when Config.Profiling is set.
func TestProfiling(t *testing.T) {
	off := startReplica(t, "")
	must(t, http.StatusNotFound, "GET", off.url+"/debug/pprof/", "")
	on := startReplica(t, "", func(c *server.Config) { c.Profiling = true })
	if a := must(t, http.StatusOK, "GET", on.url+"/debug/pprof/", ""); !strings.Contains(string(a.body), "goroutine") {
		t.Errorf("/debug/pprof/ lists no goroutine profile: %s", a.body)
	}
	must(t, http.StatusOK, "GET", on.url+"/debug/pprof/goroutine?debug=1", "")
	must(t, http.StatusOK, "GET", on.url+"/api/v1/namespaces", "")
}

// TestInvalidLeaderElection rejects a renew deadline past the lease.
func TestInvalidLeaderElection(t *testing.T) {
	_, err := server.New(server.Config{DataDir: t.TempDir(),
		LeaderElection: server.LeaderElection{LeaseDuration: 2 * time.Second, RenewDeadline: 3 * time.Second}})
	if err == nil || !strings.Contains(err.Error(), "LeaderElection") {
		t.Fatalf("New with a renew deadline past the lease: %v", err)
	}
}
