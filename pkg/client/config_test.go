package client_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// TestNewConfigAndDiscover loads the test server's kubeconfig, finds
// resources by kind and uses the found Resource.
func TestNewConfigAndDiscover(t *testing.T) {
	srv := setpointtest.Start(t, setpointtest.Options{})
	cfg, err := client.NewConfig(srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", srv.Kubeconfig)
	if fromEnv, err := client.NewConfig(""); err != nil || fromEnv.Host != cfg.Host {
		t.Fatalf("NewConfig from $KUBECONFIG = %v, %v; want host %s", fromEnv, err, cfg.Host)
	}
	if _, err := client.NewConfig(t.TempDir() + "/missing"); err == nil {
		t.Fatal("NewConfig of a missing file succeeded")
	}
	installWidgets(t, srv.RESTConfig())
	ctx := t.Context()

	for _, want := range []client.Resource{configMapsRes, widgetsRes, namespacesRes, crdsRes} {
		got, err := client.Discover(ctx, cfg, want.Group, want.Version, want.Kind)
		if err != nil || got != want {
			t.Errorf("Discover(%s %s) = %+v, %v; want %+v", want.GroupVersionKind().GroupVersion(), want.Kind, got, err, want)
		}
	}
	if _, err := client.Discover(ctx, cfg, "nosuch.example.com", "v1", "Thing"); !client.IsNotFound(err) {
		t.Errorf("Discover of an unknown group: %v, want NotFound", err)
	}
	if _, err := client.Discover(ctx, cfg, "", "v1", "Thing"); err == nil || client.IsNotFound(err) {
		t.Errorf("Discover of an unknown kind: %v, want a plain error", err)
	}

	res, err := client.Discover(ctx, cfg, "", "v1", "ConfigMap")
	if err != nil {
		t.Fatal(err)
	}
	cms := newClient[corev1.ConfigMap](t, cfg, res)
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "found"}}, metav1.CreateOptions{})
	if err != nil || cm.Name != "found" {
		t.Fatalf("Create through the kubeconfig = %+v, %v", cm, err)
	}
	if _, err := client.New[corev1.ConfigMap](cfg, client.Resource{Version: "v1"}); err == nil {
		t.Fatal("New accepted a Resource without a name and kind")
	}
	if _, err := client.New[corev1.ConfigMap](nil, res); err == nil {
		t.Fatal("New accepted a nil config")
	}
}

// countingLimiter is a flowcontrol.RateLimiter that counts the requests
// it lets through.
type countingLimiter struct{ waits atomic.Int64 }

func (l *countingLimiter) TryAccept() bool                { return true }
func (l *countingLimiter) Accept()                        {}
func (l *countingLimiter) Stop()                          {}
func (l *countingLimiter) QPS() float32                   { return 0 }
func (l *countingLimiter) Wait(ctx context.Context) error { l.waits.Add(1); return ctx.Err() }

// TestRateLimiter checks that every request, watches included, waits for
// the configuration's rate limiter, and that a limiter that refuses fails
// the request.
func TestRateLimiter(t *testing.T) {
	cfg := start(t, setpointtest.Options{})
	limiter := &countingLimiter{}
	cfg.RateLimiter = limiter
	c := newClient[corev1.ConfigMap](t, cfg, configMapsRes)
	ctx := t.Context()
	if _, err := c.List(ctx, "default", metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, "default", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	if err := c.Delete(ctx, "default", "none", metav1.DeleteOptions{}); !client.IsNotFound(err) {
		t.Fatal(err)
	}
	if n := limiter.waits.Load(); n != 3 {
		t.Fatalf("the limiter saw %d requests, want 3", n)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Get(done, "default", "none"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with an ended context: %v, want context.Canceled", err)
	}
}
