package storagetest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/storage"
)

// benchPadding fills benchValue up to about 1 KiB.
var benchPadding = strings.Repeat("x", 900)

// benchValue returns a JSON document of about 1 KiB.
func benchValue(i int) []byte {
	return []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"obj-` + strconv.Itoa(i) +
		`"},"spec":{"data":"` + benchPadding + `"}}`)
}

// Spread returns a Store whose creates go round-robin to the given stores,
// opened on one database, as clients behind a load balancer reach several
// replicas; its other methods are the first store's.
func Spread(stores ...storage.Store) storage.Store {
	return &spread{Store: stores[0], all: stores}
}

type spread struct {
	storage.Store
	all  []storage.Store
	next atomic.Uint64
}

func (s *spread) Create(ctx context.Context, key storage.Key, value []byte, lbl map[string]string) (storage.Object, error) {
	return s.all[s.next.Add(1)%uint64(len(s.all))].Create(ctx, key, value, lbl)
}

// parallelWrites runs b.N calls of write spread over the given number of
// goroutines and reports the rate as unit.
func parallelWrites(b *testing.B, goroutines int, unit string, write func(i int) error) {
	b.Helper()
	b.ReportAllocs()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Value
	)
	b.ResetTimer()
	for range goroutines {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := write(i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// BenchCreate measures durable creates of 1 KiB objects with two labels
// from the given number of concurrent goroutines.
func BenchCreate(b *testing.B, f Factory, goroutines int) {
	s := f(b)(b)
	ctx := b.Context()
	parallelWrites(b, goroutines, "creates/s", func(i int) error {
		lbl := map[string]string{"app": "bench", "bucket": strconv.Itoa(i % 100)}
		_, err := s.Create(ctx, key(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("obj-%d", i)), benchValue(i), lbl)
		return err
	})
}

// BenchUpdate measures durable updates of 1 KiB objects from the given
// number of concurrent goroutines, each on its own set of keys.
func BenchUpdate(b *testing.B, f Factory, goroutines int) {
	s := f(b)(b)
	ctx := b.Context()
	const keys = 1000
	lbl := map[string]string{"app": "bench"}
	for i := range keys {
		if _, err := s.Create(ctx, key("ns", fmt.Sprintf("obj-%d", i)), benchValue(i), lbl); err != nil {
			b.Fatal(err)
		}
	}
	parallelWrites(b, goroutines, "updates/s", func(i int) error {
		_, err := s.Update(ctx, key("ns", fmt.Sprintf("obj-%d", i%keys)), benchValue(i), lbl, storage.Precondition{})
		return err
	})
}

// fill creates n 1 KiB objects over 10 namespaces; object i has the label
// bucket=i%100, so a bucket selects 1% of them.
func fill(b *testing.B, s storage.Store, n int) {
	b.Helper()
	ctx := b.Context()
	var (
		wg     sync.WaitGroup
		next   atomic.Int64
		failed atomic.Value
	)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				lbl := map[string]string{"app": "bench", "bucket": fmt.Sprint(i % 100)}
				if _, err := s.Create(ctx, key(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("obj-%06d", i)), benchValue(i), lbl); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// BenchListSelector measures a label-selector list matching 1% of n
// objects.
func BenchListSelector(b *testing.B, f Factory, n int) {
	s := f(b)(b)
	fill(b, s, n)
	sel := labels.SelectorFromSet(labels.Set{"bucket": "7"})
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := s.List(ctx, storage.ListOptions{Resource: testResource, Labels: sel})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Objects) != n/100 {
			b.Fatalf("listed %d objects, want %d", len(res.Objects), n/100)
		}
	}
}

// BenchGet measures Get of one of 1,000 objects.
func BenchGet(b *testing.B, f Factory) {
	s := f(b)(b)
	const n = 1000
	fill(b, s, n)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, key(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("obj-%06d", i%n))); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchList measures listing all of n objects, in pages of limit objects
// at one snapshot (limit 0: one page).
func BenchList(b *testing.B, f Factory, n, limit int) {
	s := f(b)(b)
	fill(b, s, n)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		opts := storage.ListOptions{Resource: testResource, Limit: limit}
		got := 0
		for {
			res, err := s.List(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			got += len(res.Objects)
			if !res.More {
				break
			}
			opts.After = &res.Objects[len(res.Objects)-1].Key
			opts.Revision = res.Revision
		}
		if got != n {
			b.Fatalf("listed %d objects, want %d", got, n)
		}
	}
}

// BenchChanges measures the change feed's typical read: the last 32 events
// (one group commit) of a store with 1,000 objects.
func BenchChanges(b *testing.B, f Factory) {
	s := f(b)(b)
	fill(b, s, 1000)
	ctx := b.Context()
	cur, err := s.CurrentRevision(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		evs, err := s.Changes(ctx, cur-32, 100)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) != 32 {
			b.Fatalf("read %d events, want 32", len(evs))
		}
	}
}

// BenchListPage measures single pages of limit objects of a paginated list,
// each continuing after the last key of the page before at the first page's
// revision: the first page, one in the middle and the last, of the list of
// all n objects ("all") and of one namespace, a tenth of them ("namespace").
// The "older" sub-benchmarks read the same pages after writes objects were
// updated, so at a revision older than the current one. A later page should
// cost what the first one costs.
func BenchListPage(b *testing.B, f Factory, n, limit, writes int) {
	s := f(b)(b)
	fill(b, s, n)
	ctx := b.Context()
	lists := []struct {
		name string
		opts storage.ListOptions
		all  []storage.Object
		rev  int64
	}{
		{name: "all", opts: storage.ListOptions{Resource: testResource, Limit: limit}},
		{name: "namespace", opts: storage.ListOptions{Resource: testResource, Namespace: "ns-3", Limit: limit}},
	}
	for i := range lists {
		res, err := s.List(ctx, storage.ListOptions{Resource: testResource, Namespace: lists[i].opts.Namespace})
		if err != nil {
			b.Fatal(err)
		}
		lists[i].all, lists[i].rev = res.Objects, res.Revision
	}
	run := func(prefix string) {
		for _, l := range lists {
			pages := (len(l.all) + limit - 1) / limit
			for _, p := range []int{0, pages / 2, pages - 1} {
				opts := l.opts
				if p > 0 {
					opts.After = &l.all[p*limit-1].Key
					opts.Revision = l.rev
				}
				want := min(limit, len(l.all)-p*limit)
				b.Run(fmt.Sprintf("%s%s/page=%d", prefix, l.name, p), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						res, err := s.List(ctx, opts)
						if err != nil {
							b.Fatal(err)
						}
						if len(res.Objects) != want {
							b.Fatalf("page %d has %d objects, want %d", p, len(res.Objects), want)
						}
					}
				})
			}
		}
	}
	run("")
	all := lists[0].all
	for i := range writes {
		o := all[i*len(all)/writes]
		if _, err := s.Update(ctx, o.Key, benchValue(i), o.Labels, storage.Precondition{}); err != nil {
			b.Fatal(err)
		}
	}
	run("older/")
}
