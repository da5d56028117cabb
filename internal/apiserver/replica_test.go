package apiserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/apiserver"
	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/storage"
)

// unnotifiedStore hides the store's commit notifications, so that a feed
// on it reads the log only when it polls or a consistent read asks it to:
// a replica whose feed lags as far as it can.
type unnotifiedStore struct {
	storage.Store
}

// Notify returns a channel that never fires.
func (unnotifiedStore) Notify() <-chan struct{} { return make(chan struct{}) }

// newLaggingReplica starts a second API server over e's store whose feed
// learns of other replicas' writes only when a consistent read waits for
// it (it polls once an hour), and returns it and its feed.
func newLaggingReplica(t *testing.T, e *env) (*env, *feed.Feed) {
	t.Helper()
	store := unnotifiedStore{e.store}
	f := feed.New(store, feed.Options{PollInterval: time.Hour, ProgressInterval: 50 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(context.Background())
	}()
	t.Cleanup(func() {
		f.Close()
		<-done
	})
	reg, err := registry.New(registry.Options{Store: store, Feed: f})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	h, err := apiserver.New(apiserver.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{srv: srv, store: e.store, reg: reg}, f
}

// TestConsistentReadsAcrossReplicas checks that a CRD created through one
// replica is served at once by another whose feed has not read it: the
// resource, its discovery documents, and a namespace created meanwhile.
func TestConsistentReadsAcrossReplicas(t *testing.T) {
	a := newEnv(t)
	b, _ := newLaggingReplica(t, a)

	a.expect(t, http.StatusCreated, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widgetCRD)
	a.expect(t, http.StatusCreated, "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team"}}`)

	// Discovery first: it must list the new group without a miss to
	// trigger the wait.
	r := b.expect(t, http.StatusOK, "GET", "/apis", "")
	if !strings.Contains(string(r.body), `"example.com"`) {
		t.Errorf("discovery on the other replica does not list example.com: %s", r.body)
	}
	r = b.expect(t, http.StatusOK, "GET", "/apis", "", "Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
	if !strings.Contains(string(r.body), `"widgets"`) {
		t.Errorf("aggregated discovery on the other replica does not list widgets: %s", r.body)
	}

	// A second CRD, used at once without discovery first.
	a.expect(t, http.StatusCreated, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
		strings.NewReplacer("widgets", "gadgets", "widget", "gadget", "Widget", "Gadget", `"wd"`, `"gd"`).Replace(widgetCRD))
	b.expect(t, http.StatusCreated, "POST", "/apis/example.com/v1/namespaces/team/gadgets",
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"g1"},"spec":{"size":1}}`)
	a.expect(t, http.StatusOK, "GET", "/apis/example.com/v1/namespaces/team/gadgets/g1", "")

	// A path that names nothing still answers 404 after the wait.
	b.expectStatus(t, http.StatusNotFound, "NotFound", "GET", "/apis/example.com/v1/namespaces/team/nothings", "")
	b.expectStatus(t, http.StatusNotFound, "NotFound", "GET", "/apis/nothing.example.com/v1", "")
}

// TestWatchFromAnotherReplicasRevision opens a watch on a replica whose
// feed has not read the resourceVersion the client got from another
// replica: the watch is accepted and starts after that revision once the
// feed catches up (here when a consistent read makes it read).
func TestWatchFromAnotherReplicasRevision(t *testing.T) {
	a := newEnv(t)
	b, bFeed := newLaggingReplica(t, a)
	a.expect(t, http.StatusCreated, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widgetCRD)
	b.expect(t, http.StatusOK, "GET", widgetsPath, "") // b serves widgets from now on

	rv := metaOf(a.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w1", 1)).json(t))["resourceVersion"].(string)
	if n, err := strconv.ParseInt(rv, 10, 64); err != nil || bFeed.Revision() >= n {
		t.Fatalf("the lagging replica's feed is at %d, want it behind %s", bFeed.Revision(), rv)
	}
	w := b.watch(t, widgetsPath+"?watch=true&resourceVersion="+rv)
	b.expect(t, http.StatusOK, "GET", widgetsPath+"/w1?resourceVersion="+rv, "")
	a.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w2", 2))
	b.expect(t, http.StatusOK, "GET", "/apis", "") // a consistent read: b's feed reads w1 and w2
	w.expect(t, "ADDED", "w2")
}
