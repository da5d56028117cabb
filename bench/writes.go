package main

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// throughput runs op over [0, n) split into opts.rounds equal chunks, each
// chunk on workers goroutines. It reports the median operations per second
// of the chunks as "<verb>s/s, <who>", and the server's CPU time per
// operation, which tells more than the rate on a machine shared with other
// work.
func (e *env) throughput(ctx context.Context, rep *Report, verb, who string, workers, n int, target *Target, op op) error {
	rounds := e.opts.rounds
	rates := make([]float64, 0, rounds)
	cpuBefore := e.server.cpu()
	for r := range rounds {
		from, to := r*n/rounds, (r+1)*n/rounds
		elapsed, err := parallel(ctx, workers, from, to, op)
		if err != nil {
			return err
		}
		rates = append(rates, rate(to-from, elapsed))
	}
	cpu := e.server.cpu() - cpuBefore
	rep.addRounds("writes", fmt.Sprintf("%ss/s, %s", verb, who), rates, "/s", target)
	if len(e.server.pids) > 0 {
		rep.add("writes", fmt.Sprintf("server CPU per %s, %s", verb, who), micros(cpu)/float64(n), "µs", nil)
	}
	return nil
}

// createsOneClient creates opts.single widgets per round from one client.
func createsOneClient(ctx context.Context, e *env, rep *Report) error {
	widgets := e.clients.dyn.Resource(widgetGVR).Namespace(nsSingle)
	return e.throughput(ctx, rep, "create", clientsLabel(1), 1, e.opts.single*e.opts.rounds, nil, func(ctx context.Context, _, i int) error {
		if _, err := widgets.Create(ctx, benchWidget(nsSingle, i), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create widget %d: %w", i, err)
		}
		return nil
	})
}

// createsManyClients creates the opts.objects widgets the later scenarios
// use from opts.clients clients and keeps their resource versions.
func createsManyClients(ctx context.Context, e *env, rep *Report) error {
	widgets := e.clients.dyn.Resource(widgetGVR).Namespace(nsBench)
	e.versions = make([]string, e.opts.objects)
	target := e.opts.pick(atLeast(8000), atLeast(5000))
	return e.throughput(ctx, rep, "create", clientsLabel(e.opts.clients), e.opts.clients, e.opts.objects, target, func(ctx context.Context, _, i int) error {
		obj, err := widgets.Create(ctx, benchWidget(nsBench, i), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create widget %d: %w", i, err)
		}
		e.versions[i] = obj.GetResourceVersion()
		return nil
	})
}

// statusUpdates sets the status of every widget once with PUT /status from
// opts.clients clients.
func statusUpdates(ctx context.Context, e *env, rep *Report) error {
	widgets := e.clients.dyn.Resource(widgetGVR).Namespace(nsBench)
	return e.throughput(ctx, rep, "status update", clientsLabel(e.opts.clients), e.opts.clients, e.opts.objects, nil, func(ctx context.Context, _, i int) error {
		obj := benchWidget(nsBench, i)
		obj.SetResourceVersion(e.versions[i])
		obj.Object["status"] = map[string]any{"phase": "Ready", "observedGeneration": int64(1)}
		obj, err := widgets.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update status of widget %d: %w", i, err)
		}
		e.versions[i] = obj.GetResourceVersion()
		return nil
	})
}

// deletes deletes every widget from opts.clients clients.
func deletes(ctx context.Context, e *env, rep *Report) error {
	widgets := e.clients.dyn.Resource(widgetGVR).Namespace(nsBench)
	return e.throughput(ctx, rep, "delete", clientsLabel(e.opts.clients), e.opts.clients, e.opts.objects, nil, func(ctx context.Context, _, i int) error {
		if err := widgets.Delete(ctx, widgetName(i), metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete widget %d: %w", i, err)
		}
		return nil
	})
}
