package apiserver_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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

// bigWidget is a Widget body of about a kilobyte, as the whole-system
// benchmark writes.
func bigWidget(name string) string {
	return `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"` + name + `","labels":{"bucket":"b07"},"annotations":{"pad":"` + strings.Repeat("x", 700) + `"}},"spec":{"size":7,"color":"red"}}`
}

// cpuTime is the CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWrites measures creates of kilobyte widgets and then their
// first status updates (the body is the object the create answered, with
// managedFields, and a status), from 32 concurrent clients whose storage
// writes share commits. cpu-µs/op, the process's CPU time per write, is
// steadier on a shared machine than the time per write.
func BenchmarkWrites(b *testing.B) {
	e := newEnv(b)
	e.withWidgets(b)
	var seq atomic.Int64
	parallel := func(b *testing.B, op func(i int64)) {
		b.SetParallelism(16)
		b.ReportAllocs()
		start := cpuTime(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op(seq.Add(1))
			}
		})
		b.StopTimer()
		b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("create", func(b *testing.B) {
		parallel(b, func(i int64) {
			if rec := e.serve(b, "POST", widgetsPath, "application/json", bigWidget("c"+strconv.FormatInt(i, 10))); rec.Code != http.StatusCreated {
				b.Error(rec.Code, rec.Body)
			}
		})
	})
	b.Run("status", func(b *testing.B) {
		bodies := make([]string, b.N)
		for i := range bodies {
			rec := e.serve(b, "POST", widgetsPath, "application/json", bigWidget("s"+strconv.Itoa(i)+"-"+strconv.Itoa(b.N)))
			if rec.Code != http.StatusCreated {
				b.Fatal(rec.Code, rec.Body)
			}
			bodies[i] = strings.TrimSuffix(strings.TrimSpace(rec.Body.String()), "}") + `,"status":{"ready":true}}`
		}
		first := seq.Load()
		parallel(b, func(i int64) {
			body := bodies[i-first-1]
			name := body[strings.Index(body, `"name":"`)+8:]
			name = name[:strings.IndexByte(name, '"')]
			if rec := e.serve(b, "PUT", widgetsPath+"/"+name+"/status", "application/json", body); rec.Code != http.StatusOK {
				b.Error(rec.Code, rec.Body)
			}
		})
	})
}
