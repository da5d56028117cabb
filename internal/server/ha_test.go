package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/internal/server"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

// requestLimit bounds every HTTP request of these tests: a request that
// takes longer hangs, which the server must never do.
const requestLimit = 30 * time.Second

// replica is one running server of a test.
type replica struct {
	url string
	// config reaches the server as its administrator.
	config *rest.Config
	// stop ends the server and waits for it; the test's cleanup calls it
	// too, so a test may stop a replica early.
	stop func()
}

// startReplica runs a server on storage (any value of Config.Storage)
// with its own data directory and a free port until the test ends.
func startReplica(t testing.TB, storage string, tune ...func(*server.Config)) *replica {
	t.Helper()
	dir := t.TempDir()
	cfg := server.Config{
		DataDir: dir, Listen: "127.0.0.1:0", Storage: storage, KubeconfigPath: filepath.Join(dir, "kubeconfig"),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, f := range tune {
		f(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("server stopped before it was ready: %v", err)
	}
	rc := trust(t, cfg.KubeconfigPath)
	r := &replica{url: rc.Host, config: rc}
	r.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("server %s: %v", r.url, err)
		}
	})
	t.Cleanup(r.stop)
	return r
}

// testWriter sends a server's logs to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startReplicas starts n servers on one PostgreSQL schema of this test's
// own (skipping when SETPOINT_TEST_POSTGRES is unset).
func startReplicas(t *testing.T, n int) []*replica {
	t.Helper()
	url := pgtest.URL(t)
	out := make([]*replica, n)
	for i := range out {
		out[i] = startReplica(t, url)
	}
	return out
}

// answer is a finished HTTP exchange.
type answer struct {
	code   int
	header http.Header
	body   []byte
}

// decode decodes the JSON body into v.
func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

// send makes one request, bounded by requestLimit; errors are returned
// (a connection the server closed, a request that hangs).
func send(method, url, body string) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	hc, err := clientFor(url)
	if err != nil {
		return answer{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, header: resp.Header, body: b}, err
}

// must makes a request and fails the test unless it answers code.
func must(t *testing.T, code int, method, url, body string) answer {
	t.Helper()
	a, err := send(method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if a.code != code {
		t.Fatalf("%s %s: got %d, want %d: %s", method, url, a.code, code, a.body)
	}
	return a
}

// gizmoCRD is a namespaced CRD example.com/v1 Gizmo.
const gizmoCRD = `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
 "metadata":{"name":"gizmos.example.com"},
 "spec":{"group":"example.com","scope":"Namespaced",
  "names":{"plural":"gizmos","singular":"gizmo","kind":"Gizmo","listKind":"GizmoList"},
  "versions":[{"name":"v1","served":true,"storage":true,
   "schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","properties":{"size":{"type":"integer"}}}}}}}]}}`

const gizmosPath = "/apis/example.com/v1/namespaces/default/gizmos"

func gizmo(name string, size int) string {
	return `{"apiVersion":"example.com/v1","kind":"Gizmo","metadata":{"name":"` + name + `"},"spec":{"size":` + strconv.Itoa(size) + `}}`
}

// meta is the part of an object these tests read.
type meta struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []meta `json:"items"`
}

// crdAcrossReplicas creates a CRD through rs[0] and uses it at once, with
// no retry, through the others: create, list, get, discovery.
func crdAcrossReplicas(t *testing.T, rs []*replica) {
	must(t, http.StatusCreated, "POST", rs[0].url+"/apis/apiextensions.k8s.io/v1/customresourcedefinitions", gizmoCRD)
	b, c := rs[1%len(rs)], rs[2%len(rs)]
	must(t, http.StatusCreated, "POST", b.url+gizmosPath, gizmo("g1", 1))
	var list meta
	must(t, http.StatusOK, "GET", c.url+gizmosPath, "").decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].Metadata.Name != "g1" {
		t.Errorf("list through a third replica: %+v, want g1", list.Items)
	}
	must(t, http.StatusOK, "GET", c.url+gizmosPath+"/g1", "")
	if a := must(t, http.StatusOK, "GET", c.url+"/apis/example.com/v1", ""); !strings.Contains(string(a.body), `"gizmos"`) {
		t.Errorf("discovery through a third replica does not list gizmos: %s", a.body)
	}
	// The same through replicas that have not served the group at all yet.
	must(t, http.StatusCreated, "POST", c.url+"/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
		strings.NewReplacer("gizmo", "doohickey", "Gizmo", "Doohickey").Replace(gizmoCRD))
	if a := must(t, http.StatusOK, "GET", rs[0].url+"/apis", ""); !strings.Contains(string(a.body), `"example.com/v1"`) {
		t.Errorf("discovery through the first replica does not list example.com/v1: %s", a.body)
	}
	must(t, http.StatusCreated, "POST", b.url+"/apis/example.com/v1/namespaces/default/doohickeys",
		`{"apiVersion":"example.com/v1","kind":"Doohickey","metadata":{"name":"d1"}}`)
}

// watchEvent is one decoded watch event.
type watchEvent struct {
	Type   string `json:"type"`
	Object meta   `json:"object"`
}

// openWatch starts a watch on url and returns its events; the stream ends
// with the test.
func openWatch(t *testing.T, url string) <-chan watchEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := clientFor(url)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("watch %s: %d %s", url, resp.StatusCode, b)
	}
	events := make(chan watchEvent, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		dec := json.NewDecoder(resp.Body)
		for {
			var ev watchEvent
			if dec.Decode(&ev) != nil {
				return
			}
			events <- ev
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return events
}

// next returns the next watch event that is not a bookmark.
func next(t *testing.T, events <-chan watchEvent) watchEvent {
	t.Helper()
	deadline := time.After(requestLimit)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the watch ended")
			}
			if ev.Type != "BOOKMARK" {
				return ev
			}
		case <-deadline:
			t.Fatal("no watch event")
		}
	}
}

// resourceVersionsAcrossReplicas writes through one replica and reads
// with the written resourceVersion through another: a watch from it, a
// get and a NotOlderThan list.
func resourceVersionsAcrossReplicas(t *testing.T, rs []*replica) {
	must(t, http.StatusCreated, "POST", rs[0].url+"/apis/apiextensions.k8s.io/v1/customresourcedefinitions", gizmoCRD)
	var created meta
	must(t, http.StatusCreated, "POST", rs[0].url+gizmosPath, gizmo("g1", 1)).decode(t, &created)
	rv := created.Metadata.ResourceVersion
	b, c := rs[1%len(rs)], rs[2%len(rs)]

	events := openWatch(t, b.url+gizmosPath+"?watch=true&resourceVersion="+rv)
	must(t, http.StatusOK, "GET", b.url+gizmosPath+"/g1?resourceVersion="+rv, "")
	var list meta
	must(t, http.StatusOK, "GET", c.url+gizmosPath+"?resourceVersion="+rv+"&resourceVersionMatch=NotOlderThan", "").decode(t, &list)
	if len(list.Items) != 1 {
		t.Errorf("NotOlderThan list through another replica: %d items, want 1", len(list.Items))
	}

	var updated meta
	must(t, http.StatusOK, "PUT", c.url+gizmosPath+"/g1",
		`{"apiVersion":"example.com/v1","kind":"Gizmo","metadata":{"name":"g1","resourceVersion":"`+rv+`"},"spec":{"size":2}}`).decode(t, &updated)
	must(t, http.StatusCreated, "POST", rs[0].url+gizmosPath, gizmo("g2", 1))
	if ev := next(t, events); ev.Type != "MODIFIED" || ev.Object.Metadata.ResourceVersion != updated.Metadata.ResourceVersion {
		t.Fatalf("first event after %s: %s at %s, want MODIFIED at %s", rv, ev.Type, ev.Object.Metadata.ResourceVersion, updated.Metadata.ResourceVersion)
	}
	if ev := next(t, events); ev.Type != "ADDED" || ev.Object.Metadata.Name != "g2" {
		t.Fatalf("second event: %s %s, want ADDED g2", ev.Type, ev.Object.Metadata.Name)
	}
}

func TestCRDAcrossReplicasPostgres(t *testing.T) { crdAcrossReplicas(t, startReplicas(t, 3)) }

func TestCRDAcrossReplicasSQLite(t *testing.T) {
	crdAcrossReplicas(t, []*replica{startReplica(t, "")})
}

func TestResourceVersionsAcrossReplicasPostgres(t *testing.T) {
	resourceVersionsAcrossReplicas(t, startReplicas(t, 3))
}

func TestResourceVersionsAcrossReplicasSQLite(t *testing.T) {
	resourceVersionsAcrossReplicas(t, []*replica{startReplica(t, "")})
}

// eventually polls cond until it holds, failing the test after a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fmtAnswer describes an answer or a failed request for messages.
func fmtAnswer(a answer, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d %s", a.code, a.body)
}

// errorLogs fails the test for every ERROR a server logs.
type errorLogs struct{ t testing.TB }

func (w errorLogs) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "level=ERROR") {
		w.t.Errorf("server logged an error: %s", p)
	}
	return len(p), nil
}

// TestBackgroundWorkOnThreeReplicas runs the garbage collector, the
// namespace controller and compaction on three replicas at once (the
// controllers on the leader, compaction on each) and checks that their duplicated work breaks
// nothing: dependents are collected, a namespace with content is deleted,
// the change log is compacted, and no replica logs an error.
func TestBackgroundWorkOnThreeReplicas(t *testing.T) {
	url := pgtest.URL(t)
	var rs []*replica
	for range 3 {
		rs = append(rs, startReplica(t, url, func(c *server.Config) {
			c.CompactionWindow, c.CompactionInterval = 200*time.Millisecond, 50*time.Millisecond
			c.Logger = slog.New(slog.NewTextHandler(errorLogs{t}, nil))
		}))
	}
	var start meta
	must(t, http.StatusOK, "GET", rs[0].url+"/api/v1/namespaces", "").decode(t, &start)

	must(t, http.StatusCreated, "POST", rs[0].url+"/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team"}}`)
	for i, r := range rs {
		must(t, http.StatusCreated, "POST", r.url+"/api/v1/namespaces/team/configmaps", configMap("team", "cm"+strconv.Itoa(i), ""))
	}
	var owner struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	must(t, http.StatusCreated, "POST", rs[1].url+"/api/v1/namespaces/default/configmaps", configMap("default", "owner", "")).decode(t, &owner)
	must(t, http.StatusCreated, "POST", rs[2].url+"/api/v1/namespaces/default/configmaps", configMap("default", "dependent",
		`,"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"`+owner.Metadata.UID+`"}]`))

	must(t, http.StatusOK, "DELETE", rs[0].url+"/api/v1/namespaces/default/configmaps/owner", "")
	must(t, http.StatusOK, "DELETE", rs[1].url+"/api/v1/namespaces/team", "")
	for _, r := range rs {
		eventually(t, "dependent collected", func() bool {
			a, err := send("GET", r.url+"/api/v1/namespaces/default/configmaps/dependent", "")
			return err == nil && a.code == http.StatusNotFound
		})
		eventually(t, "namespace deleted", func() bool {
			a, err := send("GET", r.url+"/api/v1/namespaces/team", "")
			return err == nil && a.code == http.StatusNotFound
		})
		eventually(t, "change log compacted", func() bool {
			a, err := send("GET", r.url+"/api/v1/namespaces?resourceVersionMatch=Exact&resourceVersion="+start.Metadata.ResourceVersion, "")
			return err == nil && a.code == http.StatusGone
		})
		must(t, http.StatusOK, "GET", r.url+"/readyz", "")
	}
}
