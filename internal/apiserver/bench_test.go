package apiserver_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// serve runs one request through the handler without a network.
func (e *env) serve(b *testing.B, method, path, contentType, body string, headers ...string) *httptest.ResponseRecorder {
	req, err := http.NewRequestWithContext(context.Background(), method, "http://setpoint"+path, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.srv.Config.Handler.ServeHTTP(rec, req)
	return rec
}

func BenchmarkGet(b *testing.B) {
	e := newEnv(b)
	e.withWidgets(b)
	e.expect(b, http.StatusCreated, "POST", widgetsPath, widget("w1", 1))
	b.ReportAllocs()
	for b.Loop() {
		if rec := e.serve(b, "GET", widgetsPath+"/w1", "", ""); rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

func benchmarkList(b *testing.B, headers ...string) {
	e := newEnv(b)
	e.withWidgets(b)
	for i := range 100 {
		e.expect(b, http.StatusCreated, "POST", widgetsPath, widget("w"+strconv.Itoa(i), i))
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec := e.serve(b, "GET", widgetsPath, "", "", headers...); rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

func BenchmarkList100(b *testing.B) { benchmarkList(b) }

func BenchmarkList100Table(b *testing.B) { benchmarkList(b, "Accept", tableAccept) }

func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	e.withWidgets(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if rec := e.serve(b, "POST", widgetsPath, "application/json", widget("w"+strconv.Itoa(i), 1)); rec.Code != http.StatusCreated {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}

// BenchmarkWatchFanOut measures one write delivered to 50 watch streams
// over HTTP; each event is encoded once for all of them.
func BenchmarkWatchFanOut(b *testing.B) {
	const watchers = 50
	e := newEnv(b)
	e.withWidgets(b)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	lines := make(chan struct{}, watchers*16)
	for range watchers {
		req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+widgetsPath+"?watch=true", nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { resp.Body.Close() })
		go func() {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if strings.Contains(sc.Text(), `"ADDED"`) {
					lines <- struct{}{}
				}
			}
		}()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if rec := e.serve(b, "POST", widgetsPath, "application/json", widget("w"+strconv.Itoa(i), 1)); rec.Code != http.StatusCreated {
			b.Fatal(rec.Code)
		}
		for range watchers {
			<-lines
		}
	}
}

// BenchmarkDiscoveryAggregated measures GET /apis in the aggregated form
// kubectl and client-go ask for, consistent read of the registry included.
func BenchmarkDiscoveryAggregated(b *testing.B) {
	e := newEnv(b)
	e.withWidgets(b)
	b.ReportAllocs()
	for b.Loop() {
		if rec := e.serve(b, "GET", "/apis", "", "", "Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"); rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
