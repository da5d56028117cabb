package apiserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// event is one decoded watch event.
type event struct {
	Type   string         `json:"type"`
	Object map[string]any `json:"object"`
}

// stream is an open watch.
type stream struct {
	resp   *http.Response
	events chan event
	// done is closed when the stream ends; err says how.
	done chan struct{}
	err  error
}

// watch opens a watch on path (which carries the query) and fails unless
// it answers 200.
func (e *env) watch(t *testing.T, path string, headers ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch %s: %d %s", path, resp.StatusCode, b)
	}
	s := &stream{resp: resp, events: make(chan event), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		dec := json.NewDecoder(resp.Body)
		for {
			var ev event
			if err := dec.Decode(&ev); err != nil {
				s.err = err
				return
			}
			select {
			case s.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

// next returns the next event, skipping bookmarks unless bookmarks is set.
func (s *stream) next(t *testing.T, bookmarks bool) event {
	t.Helper()
	for {
		select {
		case ev := <-s.events:
			if ev.Type == "BOOKMARK" && !bookmarks {
				continue
			}
			return ev
		case <-s.done:
			t.Fatalf("watch ended: %v", s.err)
		case <-timeout():
			t.Fatal("no watch event in time")
		}
	}
}

// expect checks the next non-bookmark event's type and object name.
func (s *stream) expect(t *testing.T, typ, name string) event {
	t.Helper()
	ev := s.next(t, false)
	if ev.Type != typ || name != "" && metaOf(ev.Object)["name"] != name {
		t.Fatalf("got %s %v, want %s %s", ev.Type, ev.Object, typ, name)
	}
	return ev
}

func metaOf(obj map[string]any) map[string]any {
	md, _ := obj["metadata"].(map[string]any)
	return md
}

// rvOf returns the resourceVersion of an object or list body.
func rvOf(obj map[string]any) string {
	rv, _ := metaOf(obj)["resourceVersion"].(string)
	return rv
}

func TestWatchStream(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("before", 1))
	list := e.expect(t, http.StatusOK, "GET", widgetsPath, "").json(t)
	w := e.watch(t, widgetsPath+"?watch=true&resourceVersion="+rvOf(list))
	if ct := w.resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if !slices.Contains(w.resp.TransferEncoding, "chunked") {
		t.Fatalf("Transfer-Encoding %v", w.resp.TransferEncoding)
	}
	created := e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w1", 1)).json(t)
	ev := w.expect(t, "ADDED", "w1")
	if rvOf(ev.Object) != rvOf(created) || ev.Object["kind"] != "Widget" {
		t.Fatalf("ADDED carries %v", ev.Object)
	}
	e.expect(t, http.StatusOK, "PATCH", widgetsPath+"/w1", `{"spec":{"size":2}}`, "Content-Type", "application/merge-patch+json")
	modified := w.expect(t, "MODIFIED", "w1")
	e.expect(t, http.StatusOK, "DELETE", widgetsPath+"/w1", "")
	deleted := w.expect(t, "DELETED", "w1")
	if deleted.Object["spec"].(map[string]any)["size"] != float64(2) {
		t.Fatalf("DELETED carries %v", deleted.Object)
	}

	t.Run("Resume", func(t *testing.T) {
		r := e.watch(t, widgetsPath+"?watch=1&resourceVersion="+rvOf(modified.Object))
		r.expect(t, "DELETED", "w1")
	})
	t.Run("LegacyPath", func(t *testing.T) {
		r := e.watch(t, "/apis/example.com/v1/watch/namespaces/default/widgets/w1?resourceVersion="+rvOf(list))
		r.expect(t, "ADDED", "w1")
		r.expect(t, "MODIFIED", "w1")
	})
	t.Run("AllNamespacesWithSelector", func(t *testing.T) {
		r := e.watch(t, "/apis/example.com/v1/widgets?watch=true&labelSelector=pick%3Dme")
		e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("unpicked", 1))
		picked := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"picked","labels":{"pick":"me"}}}`
		e.expect(t, http.StatusCreated, "POST", widgetsPath, picked)
		r.expect(t, "ADDED", "picked")
	})
}

func TestWatchBookmarksAndTimeout(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	w := e.watch(t, widgetsPath+"?watch=true&allowWatchBookmarks=true&timeoutSeconds=1")
	ev := w.next(t, true)
	if ev.Type != "BOOKMARK" || ev.Object["kind"] != "Widget" || rvOf(ev.Object) == "" || ev.Object["spec"] != nil {
		t.Fatalf("bookmark %v", ev)
	}
	// timeoutSeconds ends the stream cleanly.
	for {
		select {
		case <-w.events:
			continue
		case <-w.done:
		case <-timeout():
			t.Fatal("the stream outlived timeoutSeconds")
		}
		break
	}
	if !errors.Is(w.err, io.EOF) {
		t.Fatalf("stream ended with %v, want EOF", w.err)
	}
}

func TestWatchSendInitialEvents(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	for _, n := range []string{"a", "b"} {
		e.expect(t, http.StatusCreated, "POST", widgetsPath, widget(n, 1))
	}
	w := e.watch(t, widgetsPath+"?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
	w.expect(t, "ADDED", "a")
	w.expect(t, "ADDED", "b")
	ev := w.next(t, true)
	if ev.Type != "BOOKMARK" || metaOf(ev.Object)["annotations"].(map[string]any)["k8s.io/initial-events-end"] != "true" {
		t.Fatalf("want the initial-events-end bookmark, got %v", ev)
	}
	e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("c", 1))
	w.expect(t, "ADDED", "c")
	// Without allowWatchBookmarks the request is invalid, answered before
	// any stream starts.
	e.expectStatus(t, http.StatusUnprocessableEntity, "Invalid", "GET", widgetsPath+"?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", "")
}

func TestWatchErrorsBeforeStream(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	var rv string
	for i := range 3 {
		rv = rvOf(e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w"+strconv.Itoa(i), 1)).json(t))
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Compact(context.Background(), n-1); err != nil {
		t.Fatal(err)
	}
	e.expectStatus(t, http.StatusGone, "Expired", "GET", widgetsPath+"?watch=true&resourceVersion=1", "")
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "GET", widgetsPath+"?watch=true&labelSelector=%3D%3D", "")
	e.expectStatus(t, http.StatusGatewayTimeout, "Timeout", "GET", widgetsPath+"?watch=true&resourceVersion=999999", "")
	e.expectStatus(t, http.StatusNotAcceptable, "NotAcceptable", "GET", widgetsPath+"?watch=true", "", "Accept", "application/yaml")
}

func TestWatchTransforms(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	t.Run("Table", func(t *testing.T) {
		w := e.watch(t, widgetsPath+"?watch=true", "Accept", tableAccept)
		e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("t1", 7))
		first := w.expect(t, "ADDED", "")
		if first.Object["kind"] != "Table" || len(first.Object["columnDefinitions"].([]any)) != 4 {
			t.Fatalf("first table event %v", first.Object)
		}
		if cells := rowCells(t, first.Object, 0); cells[0] != "t1" || cells[1] != float64(7) {
			t.Fatalf("cells %v", cells)
		}
		e.expect(t, http.StatusOK, "PATCH", widgetsPath+"/t1", `{"spec":{"size":8}}`, "Content-Type", "application/merge-patch+json")
		second := w.expect(t, "MODIFIED", "")
		if second.Object["columnDefinitions"] != nil {
			t.Fatalf("later table events repeat the columns: %v", second.Object)
		}
		if cells := rowCells(t, second.Object, 0); cells[1] != float64(8) {
			t.Fatalf("cells %v", cells)
		}
	})
	t.Run("PartialObjectMetadata", func(t *testing.T) {
		rv := rvOf(e.expect(t, http.StatusOK, "GET", widgetsPath, "").json(t))
		w := e.watch(t, widgetsPath+"?watch=true&resourceVersion="+rv, "Accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
		e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("p1", 7))
		ev := w.expect(t, "ADDED", "p1")
		if ev.Object["kind"] != "PartialObjectMetadata" || ev.Object["apiVersion"] != "meta.k8s.io/v1" || ev.Object["spec"] != nil {
			t.Fatalf("partial event %v", ev.Object)
		}
		// The metadata cut from the stored document is the object's.
		full := e.expect(t, http.StatusOK, "GET", widgetsPath+"/p1", "").json(t)
		if !reflect.DeepEqual(ev.Object["metadata"], full["metadata"]) {
			t.Fatalf("partial event metadata %v, object's %v", ev.Object["metadata"], full["metadata"])
		}
		e.expect(t, http.StatusOK, "PATCH", widgetsPath+"/p1", `{"metadata":{"labels":{"a":"b"}}}`, "Content-Type", "application/merge-patch+json")
		ev = w.expect(t, "MODIFIED", "p1")
		full = e.expect(t, http.StatusOK, "GET", widgetsPath+"/p1", "").json(t)
		if !reflect.DeepEqual(ev.Object["metadata"], full["metadata"]) {
			t.Fatalf("partial event metadata %v, object's %v", ev.Object["metadata"], full["metadata"])
		}
		e.expect(t, http.StatusOK, "DELETE", widgetsPath+"/p1", "")
		if ev = w.expect(t, "DELETED", "p1"); ev.Object["kind"] != "PartialObjectMetadata" {
			t.Fatalf("partial delete event %v", ev.Object)
		}
	})
}

// TestWatchEndsWhenClientLeaves checks that the handler (and with it the
// registry watch, which shares its context) ends when the client goes.
func TestWatchEndsWhenClientLeaves(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	w := e.watch(t, widgetsPath+"?watch=true")
	e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w1", 1))
	w.expect(t, "ADDED", "w1")
	if n := e.watchesEnded(t); n != 0 {
		t.Fatalf("%v watches ended before the client left", n)
	}
	w.resp.Body.Close()
	deadline := timeout()
	for e.watchesEnded(t) != 1 {
		select {
		case <-deadline:
			t.Fatal("the watch handler did not end after the client left")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// watchesEnded counts finished watch requests on widgets.
func (e *env) watchesEnded(t *testing.T) uint64 {
	t.Helper()
	families, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "apiserver_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "verb") == "watch" && label(m, "resource") == "widgets" {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}
