package client_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// TestResponseLimits checks that answers and watch events larger than the
// client reads fail with ErrResponseTooLarge, against the real server.
func TestResponseLimits(t *testing.T) {
	cfg := start(t, setpointtest.Options{})
	createNamespace(t, cfg, "big")
	ctx := t.Context()
	c := newClient[corev1.ConfigMap](t, cfg, configMapsRes)
	w, err := c.Watch(ctx, "big", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	big := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "big", Name: "big"}, Data: map[string]string{"v": strings.Repeat("x", 64<<10)}}
	if _, err := c.Create(ctx, big, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client.SetLimits(c, 32<<10, 32<<10)
	if _, err := c.Get(ctx, "big", "big"); !errors.Is(err, client.ErrResponseTooLarge) {
		t.Fatalf("Get of a 64 KiB object with a 32 KiB limit: %v, want ErrResponseTooLarge", err)
	}
	if _, err := c.List(ctx, "big", metav1.ListOptions{}); !errors.Is(err, client.ErrResponseTooLarge) {
		t.Fatalf("List: %v, want ErrResponseTooLarge", err)
	}
	// The watch started with the default limit; a new one gets the low one.
	if ev := next(t, w); ev.Object.Name != "big" {
		t.Fatalf("event = %+v", ev)
	}
	small, err := c.Watch(ctx, "big", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Stop()
	for range small.Events() {
		t.Fatal("an event larger than the limit was delivered")
	}
	if err := small.Err(); !errors.Is(err, client.ErrResponseTooLarge) {
		t.Fatalf("watch Err = %v, want ErrResponseTooLarge", err)
	}
	client.SetLimits(c, 128<<10, 128<<10)
	if got, err := c.Get(ctx, "big", "big"); err != nil || len(got.Data["v"]) != 64<<10 {
		t.Fatalf("Get under the limit: %v", err)
	}
}

// fakeServer answers every request with handler; it stands in for a
// server that misbehaves in ways the real one does not.
func fakeServer(t *testing.T, handler http.HandlerFunc) *rest.Config {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL, QPS: -1}
}

// TestWatchStreamErrors checks how a watch ends on an ERROR event, an
// unknown event type and a broken stream.
func TestWatchStreamErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream string
		check  func(error) bool
	}{
		{"error_event_gone",
			`{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}`,
			client.IsGone},
		{"error_event_internal",
			`{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"InternalError","code":500}}`,
			apierrors.IsInternalError},
		{"error_event_without_status",
			`{"type":"ERROR","object":{"kind":"ConfigMap"}}`,
			func(err error) bool { return err != nil && !apierrors.IsInternalError(err) }},
		{"unknown_type",
			`{"type":"RENAMED","object":{"kind":"ConfigMap","metadata":{"name":"a"}}}`,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "RENAMED") }},
		{"broken_json",
			`{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a"}}}` + "\n" + `{"type":"ADDED","obj`,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "read watch stream") }},
		{"clean_end",
			`{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a"}}}`,
			func(err error) bool { return err == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("watch") != "true" || r.URL.Path != "/api/v1/namespaces/ns/configmaps" {
					http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.stream + "\n"))
			})
			c := newClient[corev1.ConfigMap](t, cfg, configMapsRes)
			w, err := c.Watch(t.Context(), "ns", metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			for ev := range w.Events() {
				if ev.Type != "ADDED" || ev.Object.Name != "a" || ev.Object.Kind != "ConfigMap" {
					t.Fatalf("event %+v", ev)
				}
			}
			if err := w.Err(); !tc.check(err) {
				t.Fatalf("Err = %v (%T)", err, err)
			}
		})
	}
}

// TestErrorsWithoutStatus checks that failed answers without a Status body
// still become StatusErrors the predicates understand.
func TestErrorsWithoutStatus(t *testing.T) {
	for _, tc := range []struct {
		code  int
		check func(error) bool
	}{
		{http.StatusNotFound, client.IsNotFound},
		{http.StatusConflict, client.IsConflict},
		{http.StatusGone, client.IsGone},
		{http.StatusServiceUnavailable, apierrors.IsServiceUnavailable},
	} {
		cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "plain text", tc.code)
		})
		c := newClient[corev1.ConfigMap](t, cfg, configMapsRes)
		_, err := c.Get(t.Context(), "ns", "a")
		var se *apierrors.StatusError
		if !errors.As(err, &se) || !tc.check(err) || se.Status().Code != int32(tc.code) {
			t.Errorf("answer %d: %v (%T)", tc.code, err, err)
		}
	}
}

// TestRetryAfter checks that answers asking for a retry are retried, up
// to a bound, for reads, writes and watches.
func TestRetryAfter(t *testing.T) {
	var calls atomic.Int64
	cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path == "/api/v1/namespaces/ns/configmaps/busy":
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}`, http.StatusTooManyRequests)
		case n%3 != 0:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "try again", http.StatusServiceUnavailable)
		case r.Method == http.MethodPost && !strings.Contains(string(body), `"name":"a"`):
			http.Error(w, "the body was not sent again", http.StatusBadRequest)
		case r.URL.Query().Get("watch") == "true":
			_, _ = w.Write([]byte(`{"type":"ADDED","object":{"metadata":{"name":"a"}}}`))
		default:
			_, _ = w.Write([]byte(`{"metadata":{"name":"a"}}`))
		}
	})
	c := newClient[corev1.ConfigMap](t, cfg, configMapsRes)
	ctx := t.Context()
	if cm, err := c.Get(ctx, "ns", "a"); err != nil || cm.Name != "a" || calls.Load() != 3 {
		t.Fatalf("Get after two 503s = %v, %v after %d calls", cm, err, calls.Load())
	}
	if _, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}, metav1.CreateOptions{}); err != nil || calls.Load() != 6 {
		t.Fatalf("Create after two 503s: %v after %d calls", err, calls.Load())
	}
	w, err := c.Watch(ctx, "ns", metav1.ListOptions{})
	if err != nil || calls.Load() != 9 {
		t.Fatalf("Watch after two 503s: %v after %d calls", err, calls.Load())
	}
	if ev := next(t, w); ev.Object.Name != "a" {
		t.Fatalf("event %+v", ev)
	}
	w.Stop()
	calls.Store(0)
	if _, err := c.Get(ctx, "ns", "busy"); !apierrors.IsTooManyRequests(err) || calls.Load() != 11 {
		t.Fatalf("Get of an always busy object: %v after %d calls, want TooManyRequests after 11", err, calls.Load())
	}
}
