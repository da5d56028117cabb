package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setpoint/setpoint/internal/server"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

// dbProxy stands between servers and PostgreSQL so that a test can take
// the database away from them alone: down refuses and drops connections
// (a database that is gone), stall holds them without forwarding a byte
// (a database too slow to answer), up forwards again.
type dbProxy struct {
	ln      net.Listener
	backend string

	mu    sync.Mutex
	state string // "up", "down" or "stall"
	// changed is closed and replaced when state changes.
	changed chan struct{}
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// newDBProxy proxies to the host of the PostgreSQL URL dbURL and returns
// the proxy and dbURL pointing at it.
func newDBProxy(t *testing.T, dbURL string) (*dbProxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal("the database URL does not parse") // the error could show a password
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{ln: ln, backend: u.Host, state: "up", changed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *dbProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.state == "down" {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve forwards one client connection once the proxy is not stalled.
func (p *dbProxy) serve(c net.Conn) {
	defer p.drop(c)
	if !p.pass() {
		return
	}
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[b] = struct{}{}
	p.mu.Unlock()
	defer p.drop(b)
	done := make(chan struct{}, 2)
	go func() { p.copy(b, c); done <- struct{}{} }()
	go func() { p.copy(c, b); done <- struct{}{} }()
	<-done
}

// copy forwards src to dst, holding data while the proxy stalls.
func (p *dbProxy) copy(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && (!p.pass() || writeAll(dst, buf[:n]) != nil) {
			return
		}
		if err != nil {
			return
		}
	}
}

func writeAll(w io.Writer, b []byte) error {
	_, err := w.Write(b)
	return err
}

// pass waits while the proxy stalls and reports whether it is up.
func (p *dbProxy) pass() bool {
	for {
		p.mu.Lock()
		state, changed := p.state, p.changed
		p.mu.Unlock()
		if state != "stall" {
			return state == "up"
		}
		<-changed
	}
}

func (p *dbProxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// set changes the state; "down" also drops every open connection.
func (p *dbProxy) set(state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = state
	close(p.changed)
	p.changed = make(chan struct{})
	if state == "down" {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *dbProxy) close() {
	p.ln.Close()
	p.set("down")
	p.wg.Wait()
}

// TestDatabaseDownAndBack takes PostgreSQL away from two replicas and
// gives it back: meanwhile requests answer 503 with Retry-After (never
// hang), /readyz fails, a watch stays open; afterwards everything recovers
// by itself (its feed says so in the log) and the watch delivers what was
// written, acknowledged writes exactly once.
func TestDatabaseDownAndBack(t *testing.T) {
	proxy, dbURL := newDBProxy(t, pgtest.URL(t))
	a := startReplica(t, dbURL)
	logs := &lineLog{}
	b := startReplica(t, dbURL, func(c *server.Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	var list meta
	must(t, http.StatusOK, "GET", b.url+"/api/v1/namespaces/default/configmaps", "").decode(t, &list)
	events := openWatch(t, b.url+"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion="+list.Metadata.ResourceVersion)

	acked := map[string]bool{}
	create := func(r *replica, name string) (answer, error) {
		ans, err := send("POST", r.url+"/api/v1/namespaces/default/configmaps",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"`+name+`"}}`)
		if err == nil && ans.code == http.StatusCreated {
			acked[name] = true
		}
		return ans, err
	}
	if ans, err := create(a, "before"); err != nil || ans.code != http.StatusCreated {
		t.Fatalf("create before the outage: %s", fmtAnswer(ans, err))
	}

	proxy.set("down")
	for i, r := range []*replica{a, b, a, b} {
		ans, err := create(r, "during-"+strconv.Itoa(i))
		switch {
		case err != nil:
			t.Fatalf("create while the database is down: %v", err)
		case ans.code == http.StatusCreated:
			t.Logf("%s created during the outage", "during-"+strconv.Itoa(i))
		case ans.code != http.StatusServiceUnavailable || ans.header.Get("Retry-After") == "":
			t.Fatalf("create while the database is down: %s, want 503 with Retry-After", fmtAnswer(ans, err))
		}
		ans, err = send("GET", r.url+"/readyz", "")
		if err != nil || ans.code == http.StatusOK {
			t.Errorf("/readyz while the database is down: %s, want a failure", fmtAnswer(ans, err))
		}
		for _, path := range []string{"/apis", "/api/v1/namespaces/default/configmaps/before"} {
			if ans, err := send("GET", r.url+path, ""); err != nil || ans.code != http.StatusServiceUnavailable {
				t.Errorf("GET %s while the database is down: %s, want 503", path, fmtAnswer(ans, err))
			}
		}
	}
	// Not synchronization: the outage lasts longer than the feed's poll
	// interval and the listener's reconnection backoff, so that both fail
	// and retry while the watch stays open.
	time.Sleep(3 * time.Second)

	proxy.set("up")
	for i, r := range []*replica{a, b} {
		eventually(t, "ready again", func() bool {
			ans, err := send("GET", r.url+"/readyz", "")
			return err == nil && ans.code == http.StatusOK
		})
		eventually(t, "writes again", func() bool {
			// 409: an earlier attempt committed but its answer was lost.
			ans, err := create(r, "after-"+strconv.Itoa(i))
			return err == nil && (ans.code == http.StatusCreated || ans.code == http.StatusConflict)
		})
	}

	for _, msg := range []string{"change feed cannot read the log", "change feed reads the log again"} {
		eventually(t, "log "+msg, func() bool { return logs.contains(msg) })
	}

	// The watch opened before the outage delivers every acknowledged
	// create exactly once, in order, and ends with the last one.
	seen := map[string]bool{}
	var last int64
	for !seen["after-1"] {
		ev := next(t, events)
		name := ev.Object.Metadata.Name
		rv, _ := strconv.ParseInt(ev.Object.Metadata.ResourceVersion, 10, 64)
		if ev.Type != "ADDED" || seen[name] || rv <= last {
			t.Fatalf("watch: %s %s at %d after %d (seen before: %v)", ev.Type, name, rv, last, seen[name])
		}
		seen[name], last = true, rv
	}
	for name := range acked {
		if !seen[name] {
			t.Errorf("acknowledged create %s missing from the watch", name)
		}
	}
}

// TestSlowDatabaseTimesOut stalls PostgreSQL under a replica with a short
// request timeout: requests (a list, a watch being started, discovery, a
// lookup of an unknown resource) end with 504 instead of hanging, and
// succeed again once the database answers.
func TestSlowDatabaseTimesOut(t *testing.T) {
	proxy, dbURL := newDBProxy(t, pgtest.URL(t))
	r := startReplica(t, dbURL, func(c *server.Config) { c.RequestTimeout = time.Second })
	must(t, http.StatusOK, "GET", r.url+"/api/v1/namespaces/default", "")

	proxy.set("stall")
	for _, path := range []string{
		"/api/v1/namespaces/default/configmaps",
		"/api/v1/namespaces/default/configmaps?watch=true",
		"/apis",
		"/apis/example.com/v1/namespaces/default/gizmos",
	} {
		start := time.Now()
		ans, err := send("GET", r.url+path, "")
		if err != nil || ans.code != http.StatusGatewayTimeout {
			t.Fatalf("GET %s while the database stalls: %s, want 504", path, fmtAnswer(ans, err))
		}
		t.Logf("GET %s: 504 after %v", path, time.Since(start).Round(time.Millisecond))
	}
	proxy.set("up")
	eventually(t, "answers again", func() bool {
		ans, err := send("GET", r.url+"/api/v1/namespaces/default/configmaps", "")
		return err == nil && ans.code == http.StatusOK
	})
}

// TestTerminatedBackends terminates the PostgreSQL backends of three
// replicas (only those: they carry this test's application_name) while a
// client writes through each: every request answers, success or 503,
// every acknowledged create is there, and the replicas carry on.
func TestTerminatedBackends(t *testing.T) {
	app := "setpoint_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal("the database URL does not parse")
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	var rs []*replica
	for range 3 {
		rs = append(rs, startReplica(t, u.String()))
	}
	admin, err := pgx.Connect(t.Context(), pgtest.BaseURL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(context.Background())
	terminate := func() int {
		var n int
		err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND pid <> pg_backend_pid()`, app).Scan(&n)
		if err != nil {
			t.Fatalf("terminate backends: %v", err)
		}
		return n
	}

	// One writer per replica until stop; each result goes to results.
	type result struct {
		name string
		ans  answer
		err  error
	}
	results := make(chan result)
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for i, r := range rs {
		writers.Go(func() {
			for n := 0; ; n++ {
				name := "cm-" + strconv.Itoa(i) + "-" + strconv.Itoa(n)
				ans, err := send("POST", r.url+"/api/v1/namespaces/default/configmaps",
					`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"`+name+`"}}`)
				select {
				case results <- result{name, ans, err}:
				case <-stop:
					return
				}
			}
		})
	}
	var acked []string
	terminated, unavailable := 0, 0
	check := func(res result) {
		switch {
		case res.err != nil || res.ans.code != http.StatusCreated && res.ans.code != http.StatusServiceUnavailable:
			t.Errorf("create %s while backends are terminated: %s, want 201 or 503", res.name, fmtAnswer(res.ans, res.err))
		case res.ans.code == http.StatusCreated:
			acked = append(acked, res.name)
		default:
			unavailable++
		}
	}
	for range 5 {
		terminated += terminate()
		// Let every writer make a few requests on the new connections.
		for range 3 * len(rs) {
			check(<-results)
		}
	}
	close(stop)
	writers.Wait()
	if terminated == 0 {
		t.Fatalf("no backend with application_name %s was terminated", app)
	}
	t.Logf("terminated %d backends; %d creates acknowledged, %d answered 503", terminated, len(acked), unavailable)

	for _, r := range rs {
		var list meta
		must(t, http.StatusOK, "GET", r.url+"/api/v1/namespaces/default/configmaps", "").decode(t, &list)
		have := map[string]bool{}
		for _, item := range list.Items {
			have[item.Metadata.Name] = true
		}
		for _, name := range acked {
			if !have[name] {
				t.Errorf("acknowledged create %s is missing from the list through %s", name, r.url)
			}
		}
		if ans, err := send("GET", r.url+"/readyz", ""); err != nil || ans.code != http.StatusOK {
			t.Errorf("/readyz after the terminations: %s", fmtAnswer(ans, err))
		}
	}
}

// TestRunWaitsForTheDatabase opens a server, takes PostgreSQL away before
// Run, and gives it back: Run does not fail but retries (the change feed
// and the registry's start) and serves once the database is back.
func TestRunWaitsForTheDatabase(t *testing.T) {
	proxy, dbURL := newDBProxy(t, pgtest.URL(t))
	logs := &lineLog{}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	srv, err := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0", Storage: dbURL, KubeconfigPath: kubeconfig,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	proxy.set("down")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	eventually(t, "a retry is logged", func() bool { return logs.contains("storage unavailable, retrying") })
	select {
	case err := <-done:
		t.Fatalf("Run ended while the database was down: %v", err)
	case <-srv.Ready():
		t.Fatal("ready while the database is down")
	default:
	}
	proxy.set("up")
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("not ready a minute after the database came back")
	}
	must(t, http.StatusCreated, "POST", trust(t, kubeconfig).Host+"/api/v1/namespaces/default/configmaps",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"after"}}`)
}

// lineLog keeps what a logger writes, for tests to search.
type lineLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}
