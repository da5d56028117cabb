package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// clients reach one server: a dynamic client for the writes, as
// controllers send them, and a plain HTTP client with the same transport
// for the reads whose client-side decoding would swamp what is measured.
type clients struct {
	// base is the server's URL.
	base string
	dyn  dynamic.Interface
	http *http.Client
}

// newClients builds the clients from the kubeconfig the server wrote, with
// no client-side rate limit and enough idle connections for every worker.
func newClients(kubeconfig string) (*clients, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS = -1 // no client-side rate limiter
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig TLS settings: %w", err)
	}
	// A transport of our own keeps idle connections for every worker;
	// client-go's default keeps 25 per host, fewer than 32 clients or 50
	// watchers need. client-go then adds only its authentication wrappers.
	cfg.Transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		ForceAttemptHTTP2:   tlsConfig != nil,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
	cfg.TLSClientConfig = rest.TLSClientConfig{}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("HTTP client: %w", err)
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return &clients{base: cfg.Host, dyn: dyn, http: httpClient}, nil
}

// timedGet sends GET path and reads the whole answer. It returns the body
// and the time from sending the request to reading its last byte, and
// fails unless the status is 200.
func (c *clients) timedGet(ctx context.Context, path string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	elapsed := time.Since(start)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: read body: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s: %.500s", path, resp.Status, body)
	}
	return body, elapsed, nil
}

// op is one operation of parallel work: item i, sent by worker, one of
// the goroutines numbered from 0.
type op func(ctx context.Context, worker, i int) error

// parallel calls op(ctx, worker, i) for every i in [from, to) on workers
// goroutines and returns how long they took. It stops at the first error.
func parallel(ctx context.Context, workers, from, to int, op op) (time.Duration, error) {
	g, ctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	next.Store(int64(from))
	start := time.Now()
	for worker := range workers {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < to; i = int(next.Add(1) - 1) {
				if err := op(ctx, worker, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// clientsLabel says how many clients, for the name of a figure.
func clientsLabel(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}

// serverVersion is the gitVersion of the server's /version, or "" when it
// does not answer one: the run is still worth making.
func (c *clients) serverVersion(ctx context.Context) string {
	body, _, err := c.timedGet(ctx, "/version")
	if err != nil {
		return ""
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.GitVersion
}
