package flowcontrol_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/flowcontrol"
	"github.com/setpoint/setpoint/internal/requestinfo"
)

// withTestUser stands for authentication: the user is named by the
// X-Test-User header, with the groups of X-Test-Group.
func withTestUser(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get("X-Test-User"); name != "" {
			u := &user.DefaultInfo{Name: name, Groups: r.Header.Values("X-Test-Group")}
			r = r.WithContext(request.WithUser(r.Context(), u))
		}
		h.ServeHTTP(w, r)
	})
}

// blocker is an API that holds each request until released, telling
// when one starts.
type blocker struct {
	started chan string
	release chan struct{}
	once    sync.Once
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 100), release: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.started <- r.Header.Get("X-Test-User")
	select {
	case <-b.release:
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusOK)
}

func (b *blocker) unblock() { b.once.Do(func() { close(b.release) }) }

// serve runs api behind the filter chain the server builds: request
// info, a user, flow control.
func serve(t *testing.T, opts flowcontrol.Options, reg prometheus.Registerer, api http.Handler) *httptest.Server {
	t.Helper()
	h, err := flowcontrol.With(api, opts, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(requestinfo.With(withTestUser(h)))
	t.Cleanup(srv.Close)
	return srv
}

// result is a finished request.
type result struct {
	code       int
	retryAfter string
	status     metav1.Status
	err        error
}

// send sends a request as name (with groups), and returns what came back.
func send(ctx context.Context, srv *httptest.Server, path, name string, groups ...string) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("X-Test-User", name)
	for _, g := range groups {
		req.Header.Add("X-Test-Group", g)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	res := result{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode != http.StatusOK {
		res.err = json.NewDecoder(resp.Body).Decode(&res.status)
	}
	return res
}

// goSend sends a request in the background; its result arrives on the
// returned channel.
func goSend(ctx context.Context, srv *httptest.Server, path, name string, groups ...string) <-chan result {
	c := make(chan result, 1)
	go func() { c <- send(ctx, srv, path, name, groups...) }()
	return c
}

// expectOK fails unless every request of results succeeds.
func expectOK(t *testing.T, results ...<-chan result) {
	t.Helper()
	for _, c := range results {
		if res := <-c; res.err != nil || res.code != http.StatusOK {
			t.Fatalf("request: %d %v", res.code, res.err)
		}
	}
}

// checkTooMany fails unless res is a 429 TooManyRequests Status with
// Retry-After.
func checkTooMany(t *testing.T, res result) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("request failed: %v", res.err)
	}
	if res.code != http.StatusTooManyRequests || res.status.Reason != metav1.StatusReasonTooManyRequests ||
		res.status.Kind != "Status" || res.retryAfter != "1" {
		t.Fatalf("got %d %s (kind %q, Retry-After %q), want 429 TooManyRequests with Retry-After 1",
			res.code, res.status.Reason, res.status.Kind, res.retryAfter)
	}
}

const objects = "/api/v1/namespaces/a/configmaps"

// TestPerUserBound fills one user's slots and queue: its next request
// gets 429 at once while another user's requests run.
func TestPerUserBound(t *testing.T) {
	api := newBlocker()
	defer api.unblock()
	reg := prometheus.NewRegistry()
	srv := serve(t, flowcontrol.Options{MaxInflightPerUser: 2, MaxQueuedPerUser: 1, MaxWait: time.Hour}, reg, api)

	var pending []<-chan result
	for range 3 {
		pending = append(pending, goSend(t.Context(), srv, objects, "alice"))
	}
	<-api.started
	<-api.started
	waitGauge(t, reg, "apiserver_flowcontrol_current_inqueue_requests", 1)
	checkTooMany(t, send(t.Context(), srv, objects, "alice"))

	bob := goSend(t.Context(), srv, objects, "bob")
	if who := <-api.started; who != "bob" {
		t.Fatalf("%s's request started while alice is at her bound", who)
	}
	api.unblock()
	expectOK(t, append(pending, bob)...)
	if got := rejected(t, reg, "queue-full"); got != 1 {
		t.Errorf("queue-full rejections counted %v, want 1", got)
	}
}

// TestQueueTimeout checks a queued request leaves with 429 after MaxWait.
func TestQueueTimeout(t *testing.T) {
	api := newBlocker()
	defer api.unblock()
	srv := serve(t, flowcontrol.Options{MaxInflightPerUser: 1, MaxWait: time.Millisecond}, nil, api)
	first := goSend(t.Context(), srv, objects, "alice")
	<-api.started
	checkTooMany(t, send(t.Context(), srv, objects, "alice"))
	api.unblock()
	if res := <-first; res.code != http.StatusOK {
		t.Fatalf("first request: %d %v", res.code, res.err)
	}
}

// TestCancelledWaitLeavesQueue checks that a request whose client goes
// away while it waits frees its place in the queue.
func TestCancelledWaitLeavesQueue(t *testing.T) {
	api := newBlocker()
	defer api.unblock()
	reg := prometheus.NewRegistry()
	srv := serve(t, flowcontrol.Options{MaxInflightPerUser: 1, MaxQueuedPerUser: 1, MaxWait: time.Hour}, reg, api)
	first := goSend(t.Context(), srv, objects, "alice")
	<-api.started
	ctx, cancel := context.WithCancel(t.Context())
	queued := goSend(ctx, srv, objects, "alice")
	waitGauge(t, reg, "apiserver_flowcontrol_current_inqueue_requests", 1)
	cancel()
	if res := <-queued; !errors.Is(res.err, context.Canceled) {
		t.Fatalf("cancelled request: %d %v", res.code, res.err)
	}
	waitGauge(t, reg, "apiserver_flowcontrol_current_inqueue_requests", 0)
	second := goSend(t.Context(), srv, objects, "alice") // the queue has room again
	waitGauge(t, reg, "apiserver_flowcontrol_current_inqueue_requests", 1)
	api.unblock()
	expectOK(t, first, second)
	if got := rejected(t, reg, "cancelled"); got != 1 {
		t.Errorf("cancelled rejections counted %v, want 1", got)
	}
}

// TestExempt checks that health checks and system:masters pass when
// every slot and queue is taken.
func TestExempt(t *testing.T) {
	api := newBlocker()
	defer api.unblock()
	reg := prometheus.NewRegistry()
	srv := serve(t, flowcontrol.Options{MaxInflight: 1, MaxInflightPerUser: 1, MaxQueuedPerUser: 1, MaxWait: time.Hour}, reg, api)
	busy := goSend(t.Context(), srv, objects, "alice")
	<-api.started
	queued := goSend(t.Context(), srv, objects, "bob")
	waitGauge(t, reg, "apiserver_flowcontrol_current_inqueue_requests", 1)
	checkTooMany(t, send(t.Context(), srv, objects, "carol")) // all queues are full
	admin := goSend(t.Context(), srv, objects, "admin", user.SystemPrivilegedGroup, user.AllAuthenticated)
	health := goSend(t.Context(), srv, "/readyz", "")
	for range 2 {
		<-api.started
	}
	api.unblock()
	expectOK(t, busy, queued, admin, health)
}

// TestWatchLimit opens a user's most watches: the next gets 429 at once
// and another user still watches and lists; closing one lets the user
// watch again.
func TestWatchLimit(t *testing.T) {
	api := newBlocker()
	defer api.unblock()
	reg := prometheus.NewRegistry()
	srv := serve(t, flowcontrol.Options{MaxWatchesPerUser: 2, MaxWatches: 3}, reg, api)
	watch := objects + "?watch=true"
	ctx, closeFirst := context.WithCancel(t.Context())
	first := goSend(ctx, srv, watch, "alice")
	second := goSend(t.Context(), srv, watch, "alice")
	<-api.started
	<-api.started
	checkTooMany(t, send(t.Context(), srv, watch, "alice"))
	bobWatch := goSend(t.Context(), srv, watch, "bob")
	<-api.started
	checkTooMany(t, send(t.Context(), srv, watch, "carol")) // over the total
	bobList := goSend(t.Context(), srv, objects, "bob")
	<-api.started // watches do not hold request slots
	closeFirst()
	<-first
	waitGauge(t, reg, "apiserver_flowcontrol_current_watches", 2)
	third := goSend(t.Context(), srv, watch, "alice")
	<-api.started
	api.unblock()
	expectOK(t, second, bobWatch, bobList, third)
	if got := rejected(t, reg, "watch-limit"); got != 2 {
		t.Errorf("watch-limit rejections counted %v, want 2", got)
	}
}

// TestRejectDoesNotReadBody checks a request turned away leaves its body
// unread.
func TestRejectDoesNotReadBody(t *testing.T) {
	api := newBlocker()
	defer api.unblock()
	h, err := flowcontrol.With(api, flowcontrol.Options{MaxInflightPerUser: 1, MaxWait: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h = requestinfo.With(withTestUser(h))
	srv := httptest.NewServer(h)
	defer srv.Close()
	busy := goSend(t.Context(), srv, objects, "alice")
	<-api.started
	body := &trapBody{Reader: strings.NewReader("{}")}
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, objects, body)
	req.Header.Set("X-Test-User", "alice")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || body.read {
		t.Fatalf("request over the bound: %d, body read %v; want 429 and the body unread", rec.Code, body.read)
	}
	api.unblock()
	<-busy
}

// trapBody records whether it was read.
type trapBody struct {
	io.Reader
	read bool
}

func (b *trapBody) Read(p []byte) (int, error) {
	b.read = true
	return b.Reader.Read(p)
}

func TestNegativeOptions(t *testing.T) {
	if _, err := flowcontrol.With(http.NotFoundHandler(), flowcontrol.Options{MaxWatches: -1}, nil); err == nil {
		t.Fatal("negative MaxWatches accepted")
	}
}

// rejected reads the rejected-requests counter of reason.
func rejected(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "apiserver_flowcontrol_rejected_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// waitGauge waits until the named gauge reads want: requests reach the
// filter from other goroutines, and the gauge is the filter's own view.
func waitGauge(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == name && f.GetMetric()[0].GetGauge().GetValue() == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never read %v", name, want)
		}
		time.Sleep(time.Millisecond)
	}
}
