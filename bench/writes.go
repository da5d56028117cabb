package main

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// createsOneClient creates opts.single widgets per round from one client.
func createsOneClient(ctx context.Context, e *env, rep *Report) error {
	widgets := e.clients.dyn.Resource(widgetGVR).Namespace(nsSingle)
	rates, err := throughput(ctx, 1, e.opts.single*e.opts.rounds, e.opts.rounds, func(ctx context.Context, i int) error {
		if _, err := widgets.Create(ctx, benchWidget(nsSingle, i), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create widget %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rep.addRounds("writes", "creates/s, 1 client", rates, "/s", nil)
	return nil
}

// createsManyClients creates the opts.objects widgets the later scenarios
// use from opts.clients clients, in opts.rounds chunks, and keeps their
// resource versions.
func createsManyClients(ctx context.Context, e *env, rep *Report) error {
	widgets := e.clients.dyn.Resource(widgetGVR).Namespace(nsBench)
	e.versions = make([]string, e.opts.objects)
	rates, err := throughput(ctx, e.opts.clients, e.opts.objects, e.opts.rounds, func(ctx context.Context, i int) error {
		obj, err := widgets.Create(ctx, benchWidget(nsBench, i), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create widget %d: %w", i, err)
		}
		e.versions[i] = obj.GetResourceVersion()
		return nil
	})
	if err != nil {
		return err
	}
	rep.addRounds("writes", fmt.Sprintf("creates/s, %d clients", e.opts.clients), rates, "/s", atLeast(8000))
	return nil
}

// statusUpdates sets the status of every widget once with PUT /status from
// opts.clients clients, in opts.rounds chunks.
func statusUpdates(ctx context.Context, e *env, rep *Report) error {
	widgets := e.clients.dyn.Resource(widgetGVR).Namespace(nsBench)
	rates, err := throughput(ctx, e.opts.clients, e.opts.objects, e.opts.rounds, func(ctx context.Context, i int) error {
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
	if err != nil {
		return err
	}
	rep.addRounds("writes", fmt.Sprintf("status updates/s, %d clients", e.opts.clients), rates, "/s", nil)
	return nil
}

// deletes deletes every widget from opts.clients clients, in opts.rounds
// chunks.
func deletes(ctx context.Context, e *env, rep *Report) error {
	widgets := e.clients.dyn.Resource(widgetGVR).Namespace(nsBench)
	rates, err := throughput(ctx, e.opts.clients, e.opts.objects, e.opts.rounds, func(ctx context.Context, i int) error {
		if err := widgets.Delete(ctx, widgetName(i), metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete widget %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rep.addRounds("writes", fmt.Sprintf("deletes/s, %d clients", e.opts.clients), rates, "/s", nil)
	return nil
}

// memory reports the server's resident memory now, as label says.
func memory(label string, target *Target) func(context.Context, *env, *Report) error {
	return func(_ context.Context, e *env, rep *Report) error {
		rss, err := e.proc.memoryMiB("VmRSS")
		if err != nil {
			return err
		}
		rep.add("memory", "RSS "+label, rss, "MiB", target)
		return nil
	}
}

// peakMemory reports the most resident memory the server had.
func peakMemory(_ context.Context, e *env, rep *Report) error {
	hwm, err := e.proc.memoryMiB("VmHWM")
	if err != nil {
		return err
	}
	rep.add("memory", "peak RSS over the whole run", hwm, "MiB", nil)
	return nil
}
