package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// clients holds, by host:port, an HTTP client for each running server of
// these tests that trusts its CA and authenticates as its administrator.
var clients sync.Map

// trust loads the kubeconfig a server wrote and registers its client
// until tb ends; it returns the server's configuration (as its
// administrator).
func trust(tb testing.TB, kubeconfig string) *rest.Config {
	tb.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		tb.Fatalf("load the server's kubeconfig: %v", err)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		tb.Fatal(err)
	}
	clients.Store(u.Host, hc)
	tb.Cleanup(func() { clients.Delete(u.Host) })
	return cfg
}

// clientFor returns the client trust registered for the server of rawURL.
func clientFor(rawURL string) (*http.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	hc, ok := clients.Load(u.Host)
	if !ok {
		return nil, fmt.Errorf("no client for %s: start the server with startReplica or call trust", u.Host)
	}
	return hc.(*http.Client), nil
}
