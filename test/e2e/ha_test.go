package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// The HA tests run haReplicas servers on one PostgreSQL database, write
// through all of them at once and watch through each, as a load balancer
// in front of the replicas would spread clients.
const (
	haReplicas  = 3
	haNamespace = "ha"
	// haWriters is how many writers each replica gets.
	haWriters = 7
	// haWait bounds every wait of the HA tests for a condition.
	haWait = 60 * time.Second
	// probeTimeout is the client timeout of requests that must be answered
	// while the database is gone: well above any server-side timeout, so a
	// request that hangs fails the test instead of passing as a timeout.
	probeTimeout = 60 * time.Second
)

// haWrites is how many writes each writer of TestHAWatchersAgree makes,
// and how many acknowledged writes TestHAKillReplicaWatchersResume waits
// for before and after its kill: fewer when the suite itself runs under
// the race detector, which slows the clients down.
func haWrites() int {
	if raceEnabled {
		return 100
	}
	return 250
}

// haCluster is haReplicas servers on one storage, serving the widget CRD,
// with the namespace haNamespace created.
type haCluster struct {
	replicas []*server
	clients  []*clients
}

// startHACluster starts the replicas on storageURL with extraArgs,
// installs the widget CRD and the test namespace through the first one and
// waits until every replica serves widgets.
func startHACluster(t *testing.T, storageURL string, extraArgs ...string) *haCluster {
	t.Helper()
	hc := &haCluster{replicas: startReplicas(t, haReplicas, storageURL, extraArgs...)}
	for _, s := range hc.replicas {
		hc.clients = append(hc.clients, newClients(t, s))
	}
	installCRD(t, hc.clients[0], widgetCRD())
	createNamespace(t, hc.clients[0], haNamespace)
	ctx := testContext(t, haWait)
	for i, c := range hc.clients {
		// Each replica learns of the new CRD from its change feed, as each
		// Kubernetes API server learns of it from its informer.
		var err error
		eventually(t, haWait, fmt.Sprintf("replica %d serves widgets", i+1), func() bool {
			_, err = c.widgets(haNamespace).List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil
		})
	}
	return hc
}

// eventually polls cond until it holds, failing t after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		<-tick.C
	}
}

// ledger records what writers did: every acknowledged write with the
// resourceVersion it answered, and every write whose outcome is unknown.
type ledger struct {
	mu      sync.Mutex
	acked   []change
	inDoubt []change
	// acks counts acknowledged writes per replica.
	acks [haReplicas]atomic.Int64
}

// ack records a write that replica acknowledged.
func (l *ledger) ack(replica int, c change) {
	l.mu.Lock()
	l.acked = append(l.acked, c)
	l.mu.Unlock()
	l.acks[replica].Add(1)
}

// doubt records a write that failed and may or may not have happened.
func (l *ledger) doubt(c change) {
	l.mu.Lock()
	l.inDoubt = append(l.inDoubt, c)
	l.mu.Unlock()
}

// total is how many writes were acknowledged.
func (l *ledger) total() int64 {
	var n int64
	for i := range l.acks {
		n += l.acks[i].Load()
	}
	return n
}

// writes returns the acknowledged writes and those in doubt.
func (l *ledger) writes() (acked, inDoubt []change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]change(nil), l.acked...), append([]change(nil), l.inDoubt...)
}

// maxAcked returns the highest acknowledged resourceVersion.
func (l *ledger) maxAcked() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m uint64
	for _, c := range l.acked {
		m = max(m, c.rv)
	}
	return m
}

// writerSet runs writers on replicas until stopped or out of writes.
type writerSet struct {
	ledger ledger
	stop   chan struct{}
	wg     sync.WaitGroup
	// onError decides what a failed write means: it returns whether the
	// writer goes on. The write is recorded as in doubt either way.
	onError func(replica int, err error) bool
}

// startWriters runs haWriters writers on each replica, each making limit
// writes (0: until halted); failed writes go to onError.
func (hc *haCluster) startWriters(t *testing.T, ctx context.Context, limit int, onError func(replica int, err error) bool) *writerSet {
	t.Helper()
	ws := &writerSet{stop: make(chan struct{}), onError: onError}
	for i, s := range hc.replicas {
		ws.start(t, ctx, i, s, haWriters, limit)
	}
	return ws
}

// waitAcked waits until n writes in all were acknowledged.
func (ws *writerSet) waitAcked(t *testing.T, n int64) {
	t.Helper()
	eventually(t, haWait, fmt.Sprintf("%d acknowledged writes", n), func() bool { return ws.ledger.total() >= n })
}

// start runs n writers against replica s (numbered replica), each making
// limit writes (0: until stopped). A writer creates, updates and deletes
// objects of its own, so its writes never conflict; it drops an object
// whose last write failed and never writes it again, so that a write in
// doubt is the last one of its object.
func (ws *writerSet) start(t *testing.T, ctx context.Context, replica int, s *server, n, limit int) {
	t.Helper()
	cfg := s.restConfig()
	cfg.ContentType = "application/json"
	cfg.Wrap(withoutRetryAfter)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl := dyn.Resource(widgetsGVR).Namespace(haNamespace)
	raw, err := rest.RESTClientFor(withUnstructuredCodec(cfg))
	if err != nil {
		t.Fatal(err)
	}
	for g := range n {
		ws.wg.Go(func() {
			var live []*unstructured.Unstructured
			backoff := time.Duration(0)
			for i := 0; limit == 0 || i < limit; i++ {
				if !pause(ws.stop, backoff) {
					return
				}
				var (
					c   change
					got *unstructured.Unstructured
					err error
				)
				k := 0
				switch {
				case len(live) < 3 || i%5 < 2:
					c = change{typ: watch.Added, name: fmt.Sprintf("r%d-w%d-%d", replica+1, g, i)}
					spec := validSpec()
					spec["size"] = int64(1 + i%10)
					got, err = cl.Create(ctx, widget(haNamespace, c.name, nil, spec), metav1.CreateOptions{})
				case i%5 < 4:
					k = i % len(live)
					obj := live[k].DeepCopy()
					// The note makes every update a change.
					obj.Object["spec"].(map[string]any)["note"] = fmt.Sprintf("update %d", i)
					c = change{typ: watch.Modified, name: obj.GetName()}
					got, err = cl.Update(ctx, obj, metav1.UpdateOptions{})
				default:
					k = i % len(live)
					c = change{typ: watch.Deleted, name: live[k].GetName()}
					got, err = deleteReturning(ctx, raw, c.name)
				}
				var rv uint64
				if err == nil {
					rv, err = strconv.ParseUint(got.GetResourceVersion(), 10, 64)
				}
				if err != nil {
					ws.ledger.doubt(c)
					if c.typ != watch.Added {
						live = append(live[:k], live[k+1:]...)
					}
					if !ws.onError(replica, fmt.Errorf("replica %d: %v: %w", replica+1, c, err)) {
						return
					}
					backoff = min(2*backoff+10*time.Millisecond, 500*time.Millisecond)
					continue
				}
				backoff = 0
				c.rv = rv
				ws.ledger.ack(replica, c)
				switch c.typ {
				case watch.Added:
					live = append(live, got)
				case watch.Modified:
					live[k] = got
				default:
					live = append(live[:k], live[k+1:]...)
				}
			}
		})
	}
}

// withoutRetryAfter drops the Retry-After header from answers, so that
// client-go hands a 503 or 504 to the writer instead of sending the
// request again: the writer then records the write as in doubt and sees
// for itself when writes succeed again.
func withoutRetryAfter(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if resp != nil {
			resp.Header.Del("Retry-After")
		}
		return resp, err
	})
}

// pause waits for d (the back-off after a failure, not a synchronization)
// and reports whether stop stayed open meanwhile.
func pause(stop <-chan struct{}, d time.Duration) bool {
	if d == 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-stop:
		return false
	case <-timer.C:
		return true
	}
}

// halt stops the writers and waits for them.
func (ws *writerSet) halt() {
	close(ws.stop)
	ws.wg.Wait()
}

// withUnstructuredCodec returns cfg set up for a REST client of widgets
// that decodes answers as unstructured objects.
func withUnstructuredCodec(cfg *rest.Config) *rest.Config {
	cfg = dynamic.ConfigFor(cfg)
	gv := widgetsGVR.GroupVersion()
	cfg.GroupVersion = &gv
	cfg.APIPath = "/apis"
	return cfg
}

// deleteReturning deletes the widget name and returns the object the
// server answered, with the resourceVersion of the deletion (the dynamic
// client's Delete drops the answer).
func deleteReturning(ctx context.Context, raw rest.Interface, name string) (*unstructured.Unstructured, error) {
	body, err := raw.Delete().Namespace(haNamespace).Resource(widgetsGVR.Resource).Name(name).Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(body); err != nil {
		return nil, fmt.Errorf("decode the answer to delete %s: %w", name, err)
	}
	return u, nil
}

// historyWatch is one logical watcher of the test namespace's widgets, which
// keeps the history it saw. With a resume target it reconnects there, from
// the last resourceVersion it saw, whenever its stream ends, as client-go
// reflectors do; without one, an ended stream is an error.
type historyWatch struct {
	name string

	mu      sync.Mutex
	history []change
	lastRV  string
	resumes int
	// errorEvents are the ERROR events that ended a stream.
	errorEvents []string
	err         error
	// resumeOn is where the watch reconnects; nil: it does not.
	resumeOn dynamic.ResourceInterface

	cancel context.CancelFunc
	done   chan struct{}
}

// startHistoryWatch lists widgets on cl and watches from the list's
// resourceVersion until the test ends or stop is called. resumeOn, when
// not nil, is where it reconnects after its stream ends.
func startHistoryWatch(t *testing.T, name string, cl, resumeOn dynamic.ResourceInterface) *historyWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	list, err := cl.List(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatalf("watcher %s: list: %v", name, err)
	}
	w, err := cl.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		cancel()
		t.Fatalf("watcher %s: watch from %s: %v", name, list.GetResourceVersion(), err)
	}
	r := &historyWatch{name: name, lastRV: list.GetResourceVersion(), resumeOn: resumeOn, cancel: cancel, done: make(chan struct{})}
	t.Cleanup(r.stop)
	go r.run(ctx, w)
	return r
}

// run records the events of w, and of the streams it resumes on, until
// ctx ends or a stream ends without a resume target.
func (r *historyWatch) run(ctx context.Context, w watch.Interface) {
	defer close(r.done)
	backoff := time.Duration(0)
	for {
		if w != nil {
			r.drain(ctx, w)
			w.Stop()
			w = nil
		}
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		cl, rv, bad := r.resumeOn, r.lastRV, r.err != nil
		r.mu.Unlock()
		if bad {
			return
		}
		if cl == nil {
			r.fail(fmt.Errorf("stream ended at resourceVersion %s", rv))
			return
		}
		if !pause(ctx.Done(), backoff) {
			return
		}
		next, err := cl.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			// The server may still be unavailable: try again, as a
			// reflector does.
			backoff = min(2*backoff+10*time.Millisecond, time.Second)
			continue
		}
		backoff = 0
		r.mu.Lock()
		r.resumes++
		r.mu.Unlock()
		w = next
	}
}

// drain records the events of w until its stream ends. A watch that
// resumes treats an ERROR event other than 410 Gone as the end of the
// stream, as a reflector does.
func (r *historyWatch) drain(ctx context.Context, w watch.Interface) {
	for ev := range w.ResultChan() {
		if ctx.Err() != nil {
			// The ERROR event client-go sends when the watch is stopped.
			return
		}
		if err := apierrors.FromObject(ev.Object); ev.Type == watch.Error && r.resumeOn != nil && !apierrors.IsResourceExpired(err) {
			r.mu.Lock()
			r.errorEvents = append(r.errorEvents, err.Error())
			r.mu.Unlock()
			return
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if ev.Type == watch.Error || !ok {
			r.fail(fmt.Errorf("%s event: %v", ev.Type, ev.Object))
			return
		}
		rv, err := strconv.ParseUint(u.GetResourceVersion(), 10, 64)
		if err != nil {
			r.fail(fmt.Errorf("%s event for %s: resourceVersion %q", ev.Type, u.GetName(), u.GetResourceVersion()))
			return
		}
		r.mu.Lock()
		r.history = append(r.history, change{typ: ev.Type, name: u.GetName(), rv: rv})
		r.lastRV = u.GetResourceVersion()
		r.mu.Unlock()
	}
}

// fail records the first problem of the watcher.
func (r *historyWatch) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

// reached reports whether the watcher saw resourceVersion rv or a later
// one, and the problem that stopped it if any.
func (r *historyWatch) reached(rv uint64) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.history)
	return n > 0 && r.history[n-1].rv >= rv, r.err
}

// stop ends the watch and waits for its goroutine to finish.
func (r *historyWatch) stop() {
	r.cancel()
	<-r.done
}

// waitReached waits until every watch saw rv, failing t if one stops
// or takes longer than haWait.
func waitReached(t *testing.T, watches []*historyWatch, rv uint64) {
	t.Helper()
	for _, r := range watches {
		eventually(t, haWait, fmt.Sprintf("watcher %s sees resourceVersion %d", r.name, rv), func() bool {
			ok, err := r.reached(rv)
			if err != nil {
				t.Fatalf("watcher %s: %v", r.name, err)
			}
			return ok
		})
	}
}

// checkHistories stops the watches and runs the watch validators on
// their histories against the writers' ledger.
func checkHistories(t *testing.T, watches []*historyWatch, l *ledger) {
	t.Helper()
	acked, inDoubt := l.writes()
	histories := map[string][]change{}
	for _, r := range watches {
		r.stop()
		r.mu.Lock()
		histories[r.name] = r.history
		t.Logf("watcher %s: %d events, %d resumptions, streams ended by ERROR events %q", r.name, len(r.history), r.resumes, r.errorEvents)
		r.mu.Unlock()
	}
	if err := validateHistories(histories, acked, inDoubt); err != nil {
		t.Error(err)
	}
}

// verifyStored lists the widgets on cl and checks them against the
// ledger: an object whose last write was acknowledged is stored with that
// write's resourceVersion, or absent after an acknowledged delete; an
// object whose last write is in doubt is absent or at a version no older
// than its last acknowledged one; nothing else exists.
func verifyStored(t *testing.T, cl dynamic.ResourceInterface, l *ledger) {
	t.Helper()
	acked, inDoubt := l.writes()
	list, err := cl.List(testContext(t, haWait), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list the widgets: %v", err)
	}
	last := map[string]change{}
	for _, c := range acked {
		if c.rv > last[c.name].rv {
			last[c.name] = c
		}
	}
	doubt := map[string]bool{}
	for _, c := range inDoubt {
		doubt[c.name] = true
	}
	stored := map[string]uint64{}
	for _, u := range list.Items {
		rv, err := strconv.ParseUint(u.GetResourceVersion(), 10, 64)
		if err != nil {
			t.Fatalf("%s: resourceVersion %q", u.GetName(), u.GetResourceVersion())
		}
		stored[u.GetName()] = rv
	}
	var lost, phantom int
	for name, c := range last {
		rv, ok := stored[name]
		switch {
		case doubt[name] && ok && rv < c.rv:
			lost++
			t.Errorf("%s is at resourceVersion %d, older than its acknowledged %v", name, rv, c)
		case doubt[name]:
		case c.typ == watch.Deleted && ok:
			lost++
			t.Errorf("%s was deleted (%v, acknowledged) but is stored at resourceVersion %d", name, c, rv)
		case c.typ != watch.Deleted && rv != c.rv:
			lost++
			t.Errorf("%s: last acknowledged write %v, stored at resourceVersion %d (present: %v)", name, c, rv, ok)
		}
	}
	for name := range stored {
		if _, ok := last[name]; !ok && !doubt[name] {
			phantom++
			t.Errorf("%s exists but no write created it", name)
		}
	}
	listRV, err := strconv.ParseUint(list.GetResourceVersion(), 10, 64)
	if maxRV := l.maxAcked(); err != nil || listRV < maxRV {
		t.Errorf("list resourceVersion %q is below the highest acknowledged %d", list.GetResourceVersion(), maxRV)
	}
	t.Logf("%d objects stored; %d written with %d acknowledged writes and %d in doubt; %d lost, %d phantom",
		len(stored), len(last), len(acked), len(inDoubt), lost, phantom)
}

// errorList collects unexpected errors from many goroutines.
type errorList struct {
	mu   sync.Mutex
	errs []error
}

// add records err and returns false, so it can end a writer.
func (e *errorList) add(err error) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, err)
	return false
}

// report fails t with the first few errors.
func (e *errorList) report(t *testing.T, what string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, err := range e.errs {
		if i == maxReported {
			t.Errorf("... and %d more %s", len(e.errs)-i, what)
			break
		}
		t.Errorf("%s: %v", what, err)
	}
}

// TestHAWatchersAgree runs three replicas on one PostgreSQL schema and
// writers on all of them at once (creates, updates, deletes), with a
// watcher on each replica started before the writes. Each watcher must see
// every acknowledged write exactly once, in revision order, with the
// resourceVersion and type the write answered, nothing else, and all three
// must see the same history.
func TestHAWatchersAgree(t *testing.T) {
	hc := startHACluster(t, postgresSchemaURL(t))
	var watches []*historyWatch
	for i, c := range hc.clients {
		watches = append(watches, startHistoryWatch(t, fmt.Sprintf("replica-%d", i+1), c.widgets(haNamespace), nil))
	}
	var unexpected errorList
	start := time.Now()
	ws := hc.startWriters(t, testContext(t, 2*haWait), haWrites(), func(_ int, err error) bool { return unexpected.add(err) })
	ws.wg.Wait()
	elapsed := time.Since(start)
	unexpected.report(t, "write failed")
	t.Logf("%d acknowledged writes through %d replicas in %v (%.0f/s)", ws.ledger.total(), haReplicas, elapsed.Round(time.Millisecond),
		float64(ws.ledger.total())/elapsed.Seconds())
	waitReached(t, watches, ws.ledger.maxAcked())
	checkHistories(t, watches, &ws.ledger)
	verifyStored(t, hc.clients[1].widgets(haNamespace), &ws.ledger)
}

// TestHAKillReplicaWatchersResume kills replica 1 with SIGKILL while
// writers on all replicas are busy and watchers on replica 1 are mid
// stream. The watchers resume on replica 2 from the last resourceVersion
// they saw; their combined histories, and that of a watcher on replica 3
// that ran throughout, must pass every watch validator; every acknowledged
// write must be stored. Replica 1, started first, is also the storage
// writer the others send their writes to: writes of theirs in flight at
// the kill end with 503, their outcome unknown, and count as in doubt.
func TestHAKillReplicaWatchersResume(t *testing.T) {
	hc := startHACluster(t, postgresSchemaURL(t))
	onReplica2 := hc.clients[1].widgets(haNamespace)
	var watches []*historyWatch
	for i := range 3 {
		watches = append(watches, startHistoryWatch(t, fmt.Sprintf("replica-1-%c", 'a'+i), hc.clients[0].widgets(haNamespace), onReplica2))
	}
	watches = append(watches, startHistoryWatch(t, "replica-3", hc.clients[2].widgets(haNamespace), nil))

	var (
		killed     atomic.Bool
		unexpected errorList
		afterKill  atomic.Int64
		inDoubt    atomic.Int64
	)
	ws := hc.startWriters(t, testContext(t, 2*haWait), 0, func(replica int, err error) bool {
		switch {
		case replica == 0 && killed.Load():
			afterKill.Add(1)
			return false
		case killed.Load() && apierrors.IsServiceUnavailable(err):
			inDoubt.Add(1)
			return true
		}
		return unexpected.add(err)
	})
	kill := int64(haWrites() * haWriters)
	ws.waitAcked(t, kill)
	killed.Store(true)
	hc.replicas[0].kill()
	atKill := ws.ledger.total()
	eventually(t, haWait, "the watchers of replica 1 resume on replica 2", func() bool {
		for _, r := range watches[:3] {
			r.mu.Lock()
			resumed := r.resumes > 0
			r.mu.Unlock()
			if !resumed {
				return false
			}
		}
		return true
	})
	ws.waitAcked(t, atKill+kill)
	ws.halt()
	unexpected.report(t, "write failed")
	t.Logf("%d acknowledged writes, %d at the kill; %d writes to replica 1 failed after it, %d to the others ended in doubt",
		ws.ledger.total(), atKill, afterKill.Load(), inDoubt.Load())
	waitReached(t, watches, ws.ledger.maxAcked())
	checkHistories(t, watches, &ws.ledger)
	verifyStored(t, onReplica2, &ws.ledger)
}

// TestHADatabaseOutage runs three replicas on a database of the test's own
// and makes it unreachable while writers and watchers are busy: requests
// must end with 503 or 504 and a Status (never hang) and /readyz must fail
// while it is gone; once it is back the replicas recover by themselves,
// writes succeed on each, the watchers miss nothing and every acknowledged
// write is stored.
func TestHADatabaseOutage(t *testing.T) {
	db := newTestDatabase(t)
	// A server-side timeout well below the probes' client timeout: a
	// request that hangs fails the test rather than passing as a 504.
	hc := startHACluster(t, db.url, "--request-timeout", "10s")
	var watches []*historyWatch
	for i, c := range hc.clients {
		cl := c.widgets(haNamespace)
		watches = append(watches, startHistoryWatch(t, fmt.Sprintf("replica-%d", i+1), cl, cl))
	}
	var (
		outage     atomic.Bool
		unexpected errorList
		failed     atomic.Int64
	)
	ws := hc.startWriters(t, testContext(t, 3*haWait), 0, func(_ int, err error) bool {
		if outage.Load() {
			failed.Add(1)
			return true
		}
		return unexpected.add(err)
	})
	ws.waitAcked(t, int64(haWrites()))

	outage.Store(true)
	db.cutOff()
	// The replicas share a CA (startReplicas), so one client trusts all.
	probe := hc.replicas[0].httpClient(probeTimeout)
	acked, _ := ws.ledger.writes()
	known := acked[0].name
	for i, s := range hc.replicas {
		eventually(t, haWait, fmt.Sprintf("replica %d is not ready", i+1), func() bool { return readyzCode(t, probe, s) != http.StatusOK })
		widgets := s.baseURL() + "/apis/" + widgetsGVR.Group + "/" + widgetsGVR.Version + "/namespaces/" + haNamespace + "/widgets"
		body, err := json.Marshal(widget(haNamespace, fmt.Sprintf("probe-%d", i+1), nil, validSpec()).Object)
		if err != nil {
			t.Fatal(err)
		}
		ws.ledger.doubt(change{typ: watch.Added, name: fmt.Sprintf("probe-%d", i+1)})
		wantUnavailable(t, probe, http.MethodPost, widgets, body)
		wantUnavailable(t, probe, http.MethodGet, widgets, nil)
		wantUnavailable(t, probe, http.MethodGet, widgets+"/"+known, nil)
	}

	db.restore()
	for i, s := range hc.replicas {
		eventually(t, haWait, fmt.Sprintf("replica %d is ready again", i+1), func() bool { return readyzCode(t, probe, s) == http.StatusOK })
		if !s.running() {
			t.Fatalf("replica %d exited during the outage", i+1)
		}
	}
	var atRecovery [haReplicas]int64
	for i := range atRecovery {
		atRecovery[i] = ws.ledger.acks[i].Load()
	}
	for i := range hc.replicas {
		eventually(t, haWait, fmt.Sprintf("writes through replica %d succeed again", i+1), func() bool {
			return ws.ledger.acks[i].Load() >= atRecovery[i]+int64(haWriters)*10
		})
	}
	ws.halt()
	unexpected.report(t, "write failed before the outage")
	t.Logf("%d acknowledged writes; %d failed during or after the outage", ws.ledger.total(), failed.Load())
	waitReached(t, watches, ws.ledger.maxAcked())
	checkHistories(t, watches, &ws.ledger)
	verifyStored(t, hc.clients[0].widgets(haNamespace), &ws.ledger)
}

// readyzCode returns the status code of s's /readyz, or 0 when the request
// fails.
func readyzCode(t *testing.T, hc *http.Client, s *server) int {
	t.Helper()
	resp, err := hc.Get(s.baseURL() + "/readyz")
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("/readyz of %s did not answer within %v", s.addr, probeTimeout)
		}
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// wantUnavailable sends a request that must be answered, within the
// client's timeout, with 503 or 504 and a Status of the same code.
func wantUnavailable(t *testing.T, hc *http.Client, method, url string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		t.Errorf("%s %s during the outage: no answer after %v: %v", method, url, time.Since(start).Round(time.Millisecond), err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s %s during the outage: read the answer: %v", method, url, err)
		return
	}
	var status metav1.Status
	if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("%s %s during the outage: %s, want 503 or 504: %s", method, url, resp.Status, b)
	} else if err := json.Unmarshal(b, &status); err != nil || status.Kind != "Status" || int(status.Code) != resp.StatusCode {
		t.Errorf("%s %s during the outage: %s with a body that is not a matching Status (%v): %s", method, url, resp.Status, err, b)
	}
	t.Logf("%s %s during the outage: %s after %v: %s", method, url, resp.Status, time.Since(start).Round(time.Millisecond), status.Message)
}
