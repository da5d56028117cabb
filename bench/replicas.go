package main

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// nsSpread holds the widgets created over every replica.
const nsSpread = "spread"

// onReplicas starts opts.replicas servers with the extra flags args, one
// after the other, each on an empty data directory and a port of its own,
// waits until each is ready, calls f with them, and stops them. The
// server's CPU and memory are those of every replica, summed.
func onReplicas(ctx context.Context, opts options, args []string, f func(e *env) error) (err error) {
	var procs []*process
	defer func() {
		for _, p := range procs {
			err = errors.Join(err, p.stop())
		}
	}()
	e := &env{opts: opts, server: server{database: opts.storage != ""}}
	for range opts.replicas {
		p, err := startProcess(ctx, opts.bin, opts.serverEnv, args)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		c, err := newClients(p.kubeconfig)
		if err != nil {
			return err
		}
		if _, err := p.waitReady(ctx, c); err != nil {
			return err
		}
		e.replicas = append(e.replicas, c)
		e.server.pids = append(e.server.pids, p.cmd.Process.Pid)
	}
	e.clients = e.replicas[0]
	return f(e)
}

// widgets returns the widgets of namespace on each replica, in the order
// of e.replicas.
func (e *env) widgets(namespace string) []dynamic.ResourceInterface {
	widgets := make([]dynamic.ResourceInterface, len(e.replicas))
	for i, c := range e.replicas {
		widgets[i] = c.dyn.Resource(widgetGVR).Namespace(namespace)
	}
	return widgets
}

// spreadLabel says how many clients spread over how many replicas, for
// the name of a figure.
func (e *env) spreadLabel(clients int) string {
	if len(e.replicas) == 1 {
		return clientsLabel(clients)
	}
	return fmt.Sprintf("%s over %d replicas", clientsLabel(clients), len(e.replicas))
}

// ensureNamespace creates namespace unless it exists, and waits until
// every replica lists the widgets in it: from then on each serves them.
func (e *env) ensureNamespace(ctx context.Context, namespace string) error {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": namespace},
	}}
	if _, err := e.clients.dyn.Resource(nsGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	for i, widgets := range e.widgets(namespace) {
		if err := waitListed(ctx, widgets); err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
	}
	return nil
}

// createsOverReplicas creates opts.objects widgets in a namespace of their
// own from opts.clients clients spread round-robin over the replicas
// (client k writes to replica k mod N) and reports their total rate. Its
// target is the rate of the same clients on one replica, measured just
// before: adding replicas must not lower the throughput.
func createsOverReplicas(ctx context.Context, e *env, rep *Report) error {
	if err := e.ensureNamespace(ctx, nsSpread); err != nil {
		return err
	}
	var target *Target
	if one, ok := rep.value("writes", "creates/s, "+clientsLabel(e.opts.clients)); ok {
		target = atLeast(one)
	}
	widgets := e.widgets(nsSpread)
	return e.throughput(ctx, rep, "create", e.spreadLabel(e.opts.clients), e.opts.clients, e.opts.objects, target, func(ctx context.Context, worker, i int) error {
		replica := worker % len(widgets)
		if _, err := widgets[replica].Create(ctx, benchWidget(nsSpread, i), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create widget %d on replica %d: %w", i, replica, err)
		}
		return nil
	})
}
