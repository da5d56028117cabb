package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The label-selector list over PostgreSQL runs on -selector-objects
// widgets of a namespace of their own, in a schema of its own: filling a
// million objects through the API takes minutes, so -keep-schema keeps
// them for the next runs. The namespace's filledAnnotation says how many
// widgets a finished fill created, w-0000000 onwards.
const (
	nsSelector       = "selector"
	filledAnnotation = benchGroup + "/filled"
	// pageSize is the limit kubectl asks a list with.
	pageSize = 500
)

// fillSelector makes the selector namespace hold opts.selectorObjects
// widgets: it creates those a previous fill did not, from opts.clients
// clients spread over the replicas, then records the count on the
// namespace. Then it lets the servers settle.
func fillSelector(ctx context.Context, e *env, rep *Report) error {
	_, err := e.clients.dyn.Resource(crdGVR).Create(ctx, widgetCRD(benchGroup), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the widget CRD: %w", err)
	}
	if err := e.ensureNamespace(ctx, nsSelector); err != nil {
		return err
	}
	ns, err := e.clients.dyn.Resource(nsGVR).Get(ctx, nsSelector, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", nsSelector, err)
	}
	want, filled := e.opts.selectorObjects, 0
	if v, ok := ns.GetAnnotations()[filledAnnotation]; ok {
		if filled, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("namespace %s: annotation %s %q is not a count", nsSelector, filledAnnotation, v)
		}
	}
	switch {
	case filled > want:
		return fmt.Errorf("the schema holds %d selector widgets, more than -selector-objects %d: name another -keep-schema", filled, want)
	case filled == want:
		fmt.Fprintf(os.Stderr, " %s widgets already there...", formatNumber(float64(want), 0))
		return e.settle(ctx)
	}
	widgets := e.widgets(nsSelector)
	var done atomic.Int64
	elapsed, err := parallel(ctx, e.opts.clients, filled, want, func(ctx context.Context, worker, i int) error {
		_, err := widgets[worker%len(widgets)].Create(ctx, benchWidget(nsSelector, i), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) { // an interrupted fill may have left it
			return fmt.Errorf("create widget %d: %w", i, err)
		}
		if d := done.Add(1); d%max(1, int64(want-filled)/10) == 0 {
			fmt.Fprintf(os.Stderr, " %d%%", 100*d/int64(want-filled))
		}
		return nil
	})
	if err != nil {
		return err
	}
	rep.add("list", fmt.Sprintf("creates/s filling %s widgets, %s", formatNumber(float64(want), 0), e.spreadLabel(e.opts.clients)), rate(want-filled, elapsed), "/s", nil)
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, filledAnnotation, strconv.Itoa(want))
	if _, err := e.clients.dyn.Resource(nsGVR).Patch(ctx, nsSelector, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("record the fill on namespace %s: %w", nsSelector, err)
	}
	return e.settle(ctx)
}

// settle waits, for at most settleTimeout, until the servers and this
// host's PostgreSQL use less than a tenth of a core for settleQuiet in a
// row. A replica started on a million widgets first loads them into its
// controllers' caches (the garbage collector lists every resource, for
// minutes), which would slow the lists measured next; a server running
// for a while has done that long ago.
func (e *env) settle(ctx context.Context) error {
	const (
		settleTimeout = 10 * time.Minute
		settleQuiet   = 3 * time.Second
	)
	busy := func() time.Duration {
		if e.server.database {
			return e.server.cpu() + postgresCPU()
		}
		return e.server.cpu()
	}
	start, quietSince := time.Now(), time.Now()
	for before := busy(); ; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		after := busy()
		if after-before > 100*time.Millisecond {
			quietSince = time.Now()
		}
		before = after
		switch {
		case time.Since(quietSince) >= settleQuiet:
			fmt.Fprintf(os.Stderr, " servers idle after %.0fs...", time.Since(start).Seconds())
			return nil
		case time.Since(start) > settleTimeout:
			fmt.Fprintf(os.Stderr, " servers still busy after %s, measuring anyway...", settleTimeout)
			return nil
		}
	}
}

// selectorLists reports the median latency of the label selector matching
// 1% of the selector widgets: the whole list, and its first page as
// kubectl asks for it.
func selectorLists(ctx context.Context, e *env, rep *Report) error {
	n := e.opts.selectorObjects
	selected := matching(n)
	firstPage := selectorQuery()
	firstPage.Set("limit", strconv.Itoa(pageSize))
	cases := []struct {
		name  string
		query url.Values
		want  int
		pages int
	}{
		{fmt.Sprintf("all %s", formatNumber(float64(selected), 0)), selectorQuery(), selected, 0},
		{fmt.Sprintf("first page of %d", pageSize), firstPage, min(pageSize, selected), 1},
	}
	for _, c := range cases {
		var rounds []float64
		for range e.opts.rounds {
			took, err := timedList(ctx, e.clients, nsSelector, c.query, c.want, c.pages)
			if err != nil {
				return fmt.Errorf("label selector, %s: %w", c.name, err)
			}
			rounds = append(rounds, millis(took))
		}
		name := fmt.Sprintf("label selector matching 1%% of %s, %s", formatNumber(float64(n), 0), c.name)
		rep.addRoundsOn(n, "list", name, rounds, "ms", atMost(100).at(1_000_000))
	}
	return nil
}
