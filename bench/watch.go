package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// warmupName is the object written before the measured writes: once every
// watcher has received it, every watch is open.
const warmupName = "warmup"

// watchEvent is the part of a watch event the watchers read. Decoding only
// these fields keeps 50 watchers from eating the CPU the server needs.
type watchEvent struct {
	Type   string `json:"type"`
	Object struct {
		Metadata struct {
			Name            string `json:"name"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	} `json:"object"`
}

// delivery is one event a watcher received.
type delivery struct {
	index     int    // widget index, from the name
	eventType string // ADDED for every measured write
	version   uint64
	at        time.Time
}

// watchFaults counts the events watchers should have received and did
// not, or received wrongly.
type watchFaults struct {
	missing    int // a write a watcher never received
	repeated   int // a write received again, or an object not written
	outOfOrder int // a version not above the one before it
	wrong      int // not ADDED, or not at the version the write returned
}

func (f watchFaults) total() int { return f.missing + f.repeated + f.outOfOrder + f.wrong }

// watcher is one watch on the watch namespace.
type watcher struct {
	writes  int // how many measured writes to expect
	replica int // the replica it watches
	// opened is closed when the warmup object arrived; done when every
	// measured write arrived.
	opened, done chan struct{}
	events       []delivery
	seen         []bool
	unique       int
}

// watches opens opts.watchers watches, creates opts.watchWrites widgets
// from opts.watchWriters clients, and reports how long after each write
// was acknowledged the watchers received it. It checks that every watcher
// got every write exactly once, in order, at the version the write
// returned. Watchers and writers are spread round-robin over the
// replicas; the deliveries from a write on one replica to a watcher on
// another are also reported apart.
func watches(ctx context.Context, e *env, rep *Report) error {
	n := e.opts.watchWrites
	widgets := e.clients.dyn.Resource(widgetGVR).Namespace(nsWatch)
	widgetsOn := e.widgets(nsWatch)
	list, err := widgets.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return fmt.Errorf("list before watching: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	watchers := make([]*watcher, e.opts.watchers)
	for i := range watchers {
		w := &watcher{writes: n, replica: i % len(e.replicas), opened: make(chan struct{}), done: make(chan struct{}), seen: make([]bool, n)}
		watchers[i] = w
		g.Go(func() error { return w.run(gctx, e.replicas[w.replica], list.GetResourceVersion()) })
	}
	warmup := widget(nsWatch, 0, "")
	warmup.SetName(warmupName)
	if _, err := widgets.Create(ctx, warmup, metav1.CreateOptions{}); err != nil {
		return errors.Join(fmt.Errorf("create warmup object: %w", err), stopWatchers(cancel, g))
	}
	if err := waitAll(gctx, watchers, func(w *watcher) <-chan struct{} { return w.opened }, 10*time.Second); err != nil {
		return errors.Join(fmt.Errorf("open watches: %w", err), stopWatchers(cancel, g))
	}

	cpuBefore := e.server.cpu()
	written := writes{sent: make([]time.Time, n), acked: make([]time.Time, n), versions: make([]uint64, n), replicas: make([]int, n)}
	elapsed, err := parallel(ctx, e.opts.watchWriters, 0, n, func(ctx context.Context, worker, i int) error {
		replica := worker % len(widgetsOn)
		written.replicas[i] = replica
		written.sent[i] = time.Now()
		obj, err := widgetsOn[replica].Create(ctx, benchWidget(nsWatch, i), metav1.CreateOptions{})
		written.acked[i] = time.Now()
		if err != nil {
			return fmt.Errorf("create widget %d: %w", i, err)
		}
		written.versions[i], err = strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
		return err
	})
	if err != nil {
		return errors.Join(err, stopWatchers(cancel, g))
	}
	waitErr := waitAll(gctx, watchers, func(w *watcher) <-chan struct{} { return w.done }, 30*time.Second)
	cpu := e.server.cpu() - cpuBefore
	if err := stopWatchers(cancel, g); err != nil {
		return err
	}

	lat, f := checkDeliveries(watchers, written)
	if len(lat.afterAck) == 0 {
		return fmt.Errorf("no watcher received any write: %w", waitErr)
	}
	label := fmt.Sprintf("%d watchers, %s writes", e.opts.watchers, formatNumber(float64(n), 0))
	rep.add("watch", "delivery after write ack p50, "+label, percentile(lat.afterAck, 50), "ms", nil)
	rep.add("watch", "delivery after write ack p99, "+label, percentile(lat.afterAck, 99), "ms", e.opts.embedded(atMost(10)))
	if len(e.replicas) > 1 {
		across := fmt.Sprintf("%s over %d replicas", label, len(e.replicas))
		rep.add("watch", "delivery across replicas after write ack p50, "+across, percentile(lat.acrossAfterAck, 50), "ms", nil)
		rep.add("watch", "delivery across replicas after write ack p99, "+across, percentile(lat.acrossAfterAck, 99), "ms", atMost(25))
	}
	rep.add("watch", "write request → delivery p99", percentile(lat.afterSend, 99), "ms", nil)
	rep.add("watch", "creates/s while watched, "+clientsLabel(e.opts.watchWriters), rate(n, elapsed), "/s", nil)
	if len(e.server.pids) > 0 {
		rep.add("watch", fmt.Sprintf("server CPU per write delivered to %d watchers", e.opts.watchers), micros(cpu)/float64(n), "µs", nil)
	}
	rep.add("watch", "events missing, repeated, out of order or wrong", float64(f.total()), "", atMost(0))
	if f.total() > 0 {
		fmt.Fprintf(os.Stderr, "watch: %+v (%v)\n", f, waitErr)
	}
	return nil
}

// writes records the measured writes, indexed by widget.
type writes struct {
	sent, acked []time.Time // when the create was sent and its answer read
	versions    []uint64    // the resourceVersion the create returned
	replicas    []int       // the replica the create was sent to
}

// latencies are the milliseconds from writes to their delivery to each
// watcher.
type latencies struct {
	// afterAck is since the write was acknowledged (0 when the event came
	// first), afterSend since it was sent.
	afterAck, afterSend []float64
	// acrossAfterAck is afterAck of the deliveries to a watcher on
	// another replica than the write's.
	acrossAfterAck []float64
}

// checkDeliveries returns the latencies of every first delivery of a
// write to a watcher and counts what went wrong.
func checkDeliveries(watchers []*watcher, w writes) (lat latencies, f watchFaults) {
	n := len(w.versions)
	for _, wt := range watchers {
		var last uint64
		seen := make([]bool, n)
		for _, ev := range wt.events {
			if ev.index < 0 || ev.index >= n || seen[ev.index] {
				f.repeated++
				continue
			}
			seen[ev.index] = true
			f.outOfOrder += boolInt(ev.version <= last)
			f.wrong += boolInt(ev.eventType != "ADDED" || ev.version != w.versions[ev.index])
			last = max(last, ev.version)
			afterAck := max(0, millis(ev.at.Sub(w.acked[ev.index])))
			lat.afterAck = append(lat.afterAck, afterAck)
			lat.afterSend = append(lat.afterSend, millis(ev.at.Sub(w.sent[ev.index])))
			if w.replicas != nil && w.replicas[ev.index] != wt.replica {
				lat.acrossAfterAck = append(lat.acrossAfterAck, afterAck)
			}
		}
		for _, s := range seen {
			f.missing += boolInt(!s)
		}
	}
	return lat, f
}

// run watches the watch namespace from version and records every event
// until ctx ends.
func (w *watcher) run(ctx context.Context, c *clients, version string) error {
	q := url.Values{"watch": {"true"}, "resourceVersion": {version}}
	path := "/apis/" + widgetGVR.GroupVersion().String() + "/namespaces/" + nsWatch + "/" + widgetGVR.Resource + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("watch request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return ignoreEnd(ctx, fmt.Errorf("watch: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("watch: %s", resp.Status)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			return ignoreEnd(ctx, fmt.Errorf("read watch event: %w", err))
		}
		at := time.Now()
		switch {
		case ev.Type == "ERROR":
			return fmt.Errorf("watch ended with an error event")
		case ev.Type == "BOOKMARK":
			continue
		case ev.Object.Metadata.Name == warmupName:
			close(w.opened)
			continue
		}
		version, _ := strconv.ParseUint(ev.Object.Metadata.ResourceVersion, 10, 64)
		i := widgetIndex(ev.Object.Metadata.Name)
		w.events = append(w.events, delivery{index: i, eventType: ev.Type, version: version, at: at})
		if i >= 0 && i < w.writes && !w.seen[i] {
			w.seen[i] = true
			if w.unique++; w.unique == w.writes {
				close(w.done)
			}
		}
	}
}

// waitAll waits until the channel ch picks of every watcher is closed, for
// at most timeout.
func waitAll(ctx context.Context, watchers []*watcher, ch func(*watcher) <-chan struct{}, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for i, w := range watchers {
		select {
		case <-ch(w):
		case <-ctx.Done():
			return fmt.Errorf("watcher %d: %w", i, context.Cause(ctx))
		case <-timer.C:
			return fmt.Errorf("watcher %d still waiting after %s", i, timeout)
		}
	}
	return nil
}

// stopWatchers ends the watches and returns the first error one had.
func stopWatchers(cancel context.CancelFunc, g *errgroup.Group) error {
	cancel()
	return g.Wait()
}

// ignoreEnd returns nil when err happened because ctx ended, else err.
func ignoreEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
