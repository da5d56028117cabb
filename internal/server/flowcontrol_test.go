package server_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/setpoint/setpoint/internal/flowcontrol"
	"github.com/setpoint/setpoint/internal/server"
)

var floodUnbounded = flag.Bool("flood.unbounded", false,
	"run TestFlood with bounds too high to matter, to see it fail without flow control")

// Sizes of TestFlood.
const (
	// floodObjects ConfigMaps of floodObjectBytes each make the big list
	// the flooder sends again and again.
	floodObjects     = 1000
	floodObjectBytes = 1 << 10
	// floodClients is how many requests the flooder keeps in flight: far
	// over its bound of floodPerUser running and floodQueued waiting.
	floodClients = 64
	floodPerUser = 2
	floodQueued  = 4
	// floodSamples is how many requests the other user times at least;
	// under load, for floodSpan at least, so that the samples see the
	// load's ups and downs.
	floodSamples = 40
	floodSpan    = time.Second
)

// TestFlood has one user (alice) flood a real server over HTTPS with far
// more concurrent big lists and gets than her bound (waiting Retry-After
// after a 429, as client-go does), while another user
// (bob) sends gets one after the other. Bob's requests must all succeed,
// alice must get 429s with Retry-After and still be served, and bob's
// median latency under the flood must stay within a few times his median
// while alice keeps just her bound of lists in flight, measured in the
// same test: what alice sends beyond her bound must cost bob little.
// (Bob's latency alone, also logged, is no yardstick: a get takes tens of
// microseconds, the big lists alice may run take the CPU for
// milliseconds.) Timings on a shared machine vary, so the factor is
// wide, but without flow control (go test -run TestFlood -args
// -flood.unbounded) bob waits behind dozens of big lists and the test
// fails.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	fc := flowcontrol.Options{MaxInflightPerUser: floodPerUser, MaxQueuedPerUser: floodQueued, MaxWait: time.Second}
	if *floodUnbounded {
		fc = flowcontrol.Options{MaxInflight: 1 << 20, MaxInflightPerUser: 1 << 20, MaxQueuedPerUser: 1 << 20}
	}
	r, clients := startWithUsers(t, fc, map[string]int{"alice": floodClients, "bob": 1})
	seedFlood(t, r.url)
	alice, bob := clients["alice"], clients["bob"]
	target := r.url + "/api/v1/namespaces/flood/configmaps/target"
	list := r.url + "/api/v1/namespaces/flood/configmaps"

	alone := median(timeGets(t, bob, target, 0))
	calm, calmStats := underLoad(t, alice, bob, floodPerUser, list, target)
	flood, stats := underLoad(t, alice, bob, floodClients, list, target)
	calmMedian, floodMedian := median(calm), median(flood)
	t.Logf("bob's median get: %v alone, %v beside %d lists of alice (%d served), %v (max %v) under her flood; flood: %d served, %d got 429, %d failed",
		alone, calmMedian, floodPerUser, calmStats.ok, floodMedian, slices.Max(flood), stats.ok, stats.rejected, stats.failed)
	if calmStats.rejected > 0 || calmStats.failed > 0 {
		t.Errorf("alice within her bound: %d requests got 429, %d failed", calmStats.rejected, calmStats.failed)
	}
	if stats.rejected == 0 {
		t.Error("none of alice's flood got 429")
	}
	if stats.noRetryAfter > 0 {
		t.Errorf("%d of alice's 429 answers had no Retry-After", stats.noRetryAfter)
	}
	if stats.ok == 0 {
		t.Error("none of alice's flood was served: the bound starved her")
	}
	if limit := 4*calmMedian + 10*time.Millisecond; floodMedian > limit {
		t.Errorf("bob's median latency under the flood %v is over %v (4 times %v beside alice's bound of lists, plus 10ms)", floodMedian, limit, calmMedian)
	}
}

// loadStats counts what alice's requests got.
type loadStats struct{ ok, rejected, noRetryAfter, failed int64 }

// underLoad has alice send lists of list (one in eight a get of target)
// from clients goroutines, each sending its next request when the last
// ended, or after Retry-After when it got 429, and times bob's gets of
// target meanwhile.
func underLoad(t *testing.T, alice, bob *http.Client, clients int, list, target string) ([]time.Duration, loadStats) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var ok, rejected, noRetryAfter, failed atomic.Int64
	// running counts down as each client gets its first answer: the load
	// is then in full swing.
	var running sync.WaitGroup
	running.Add(clients)
	for i := range clients {
		wg.Go(func() {
			first := sync.OnceFunc(running.Done)
			defer first()
			for n := 0; ctx.Err() == nil; n++ {
				url := list
				if (i+n)%8 == 7 {
					url = target
				}
				code, retryAfter, err := drain(ctx, alice, url)
				switch {
				case err != nil:
					if ctx.Err() == nil {
						failed.Add(1)
					}
				case code == http.StatusTooManyRequests:
					rejected.Add(1)
					wait, err := strconv.Atoi(retryAfter)
					if err != nil || wait < 1 {
						noRetryAfter.Add(1)
						wait = 1
					}
					// As client-go does. A client that does not wait
					// makes the server authenticate and reject requests
					// as fast as it sends them, which costs CPU no queue
					// can save.
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(wait) * time.Second):
					}
				case code == http.StatusOK:
					ok.Add(1)
				default:
					failed.Add(1)
				}
				first()
			}
		})
	}
	running.Wait()
	times := timeGets(t, bob, target, floodSpan)
	stop()
	wg.Wait()
	return times, loadStats{ok: ok.Load(), rejected: rejected.Load(), noRetryAfter: noRetryAfter.Load(), failed: failed.Load()}
}

// startWithUsers starts a server with flow control fc and returns it
// with a client for each user of users, keeping up to that many
// connections open (HTTP/1.1, so a flood takes many), authenticated by a
// client certificate of the server's CA. The users may get, list and
// watch ConfigMaps.
func startWithUsers(t *testing.T, fc flowcontrol.Options, users map[string]int) (*replica, map[string]*http.Client) {
	t.Helper()
	var kubeconfig, pkiDir string
	r := startReplica(t, "", func(c *server.Config) {
		c.FlowControl = fc
		kubeconfig, pkiDir = c.KubeconfigPath, filepath.Join(c.DataDir, "pki")
	})
	admin, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	clients := map[string]*http.Client{}
	for name, conns := range users {
		subjects = append(subjects, `{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"`+name+`"}`)
		tlsConfig, err := rest.TLSConfigFor(userConfigFor(t, admin, pkiDir, name))
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: conns}
		t.Cleanup(tr.CloseIdleConnections)
		clients[name] = &http.Client{Transport: tr, Timeout: requestLimit}
	}
	rbac := r.url + "/apis/rbac.authorization.k8s.io/v1/"
	sendAsAdmin(t, http.StatusCreated, "POST", rbac+"clusterroles", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole",
		"metadata":{"name":"configmap-reader"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get","list","watch"]}]}`)
	sendAsAdmin(t, http.StatusCreated, "POST", rbac+"clusterrolebindings", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
		"metadata":{"name":"configmap-reader"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"configmap-reader"},
		"subjects":[`+strings.Join(subjects, ",")+`]}`)
	return r, clients
}

// seedFlood creates namespace flood with floodObjects ConfigMaps and one
// named target, as the administrator.
func seedFlood(t *testing.T, url string) {
	t.Helper()
	sendAsAdmin(t, http.StatusCreated, "POST", url+"/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"flood"}}`)
	data := strings.Repeat("x", floodObjectBytes)
	names := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for name := range names {
				sendAsAdmin(t, http.StatusCreated, "POST", url+"/api/v1/namespaces/flood/configmaps",
					`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"`+name+`"},"data":{"d":"`+data+`"}}`)
			}
		})
	}
	names <- "target"
	for i := range floodObjects {
		names <- fmt.Sprint("cm-", i)
	}
	close(names)
	wg.Wait()
}

// sendAsAdmin sends a request as the administrator and fails the test
// (from any goroutine) unless it answers code.
func sendAsAdmin(t *testing.T, code int, method, url, body string) {
	a, err := send(method, url, body)
	if err != nil {
		t.Error(err)
	} else if a.code != code {
		t.Errorf("%s %s: %d %s, want %d", method, url, a.code, a.body, code)
	}
}

// drain sends a GET and reads the answer to the end.
func drain(ctx context.Context, c *http.Client, url string) (code int, retryAfter string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// TestWatchLimitPerUser opens a user's most watches on a real server:
// the next gets 429 with Retry-After at once, another user still watches,
// and closing one lets the user watch again.
func TestWatchLimitPerUser(t *testing.T) {
	r, clients := startWithUsers(t, flowcontrol.Options{MaxWatchesPerUser: 2}, map[string]int{"alice": 4, "bob": 1})
	watch := r.url + "/api/v1/namespaces/default/configmaps?watch=true"
	open := func(c *http.Client) (*http.Response, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, watch, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		return resp, cancel
	}
	expectCode := func(resp *http.Response, code int) {
		t.Helper()
		if resp.StatusCode != code {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("watch: %d %s, want %d", resp.StatusCode, b, code)
		}
	}
	first, closeFirst := open(clients["alice"])
	expectCode(first, http.StatusOK)
	second, _ := open(clients["alice"])
	expectCode(second, http.StatusOK)
	third, _ := open(clients["alice"])
	expectCode(third, http.StatusTooManyRequests)
	if third.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	bobs, _ := open(clients["bob"])
	expectCode(bobs, http.StatusOK)
	closeFirst()
	// The server counts the watch closed once its handler returned, a
	// moment after the client closed it: retry until it has.
	for deadline := time.Now().Add(requestLimit); ; {
		again, _ := open(clients["alice"])
		if again.StatusCode == http.StatusOK {
			break
		}
		expectCode(again, http.StatusTooManyRequests)
		if time.Now().After(deadline) {
			t.Fatal("a closed watch still counts against its user")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// timeGets sends gets of url one after the other, at least floodSamples
// of them and for at least span, and returns how long each took; each
// must answer 200.
func timeGets(t *testing.T, c *http.Client, url string, span time.Duration) []time.Duration {
	t.Helper()
	var out []time.Duration
	for end := time.Now().Add(span); len(out) < floodSamples || time.Now().Before(end); {
		start := time.Now()
		code, _, err := drain(t.Context(), c, url)
		out = append(out, time.Since(start))
		if err != nil || code != http.StatusOK {
			t.Fatalf("bob's get %d: %d %v", len(out), code, err)
		}
	}
	return out
}

// median returns the median of ds.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
