package postgres_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/postgres"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
	"github.com/setpoint/setpoint/internal/storage/storagetest"
)

// benchFactory opens stores with the default options.
func benchFactory(b testing.TB) storagetest.Opener {
	url := pgtest.URL(b)
	return func(b testing.TB) storage.Store {
		b.Helper()
		s, err := postgres.Open(b.Context(), url, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
}

// replicas3 is benchFactory with three stores on the schema.
func replicas3(b testing.TB) storagetest.Opener {
	open := benchFactory(b)
	return func(b testing.TB) storage.Store {
		return storagetest.Spread(open(b), open(b), open(b))
	}
}

func BenchmarkCreate1(b *testing.B)           { storagetest.BenchCreate(b, benchFactory, 1) }
func BenchmarkCreate32(b *testing.B)          { storagetest.BenchCreate(b, benchFactory, 32) }
func BenchmarkCreate32Replicas3(b *testing.B) { storagetest.BenchCreate(b, replicas3, 32) }
func BenchmarkUpdate32(b *testing.B)          { storagetest.BenchUpdate(b, benchFactory, 32) }
func BenchmarkGet(b *testing.B)               { storagetest.BenchGet(b, benchFactory) }
func BenchmarkListAll10k(b *testing.B)        { storagetest.BenchList(b, benchFactory, 10000, 0) }
func BenchmarkListPaged10k(b *testing.B)      { storagetest.BenchList(b, benchFactory, 10000, 500) }
func BenchmarkListSelector10k(b *testing.B)   { storagetest.BenchListSelector(b, benchFactory, 10000) }
func BenchmarkChanges(b *testing.B)           { storagetest.BenchChanges(b, benchFactory) }

// bench1M is the schema BenchmarkListSelector1M keeps between runs.
const bench1M = "bench_1m"

// BenchmarkListSelector1M lists a selector matching 1% of 1,000,000
// objects of one resource (the target: 100 ms). The objects are
// filled once into the schema bench_1m, which later runs reuse.
func BenchmarkListSelector1M(b *testing.B) { benchListSelector1M(b, 0) }

// BenchmarkListSelector1MPage lists the first page of 500 of
// BenchmarkListSelector1M's selector. Its matches sit in one namespace of
// ten, late in the key order.
func BenchmarkListSelector1MPage(b *testing.B) { benchListSelector1M(b, 500) }

// benchListSelector1M lists the bench_1m selector in pages of limit
// objects (0: all), reading the first page only.
func benchListSelector1M(b *testing.B, limit int) {
	const n = 1000000
	url := pgtest.WithSchema(b, pgtest.BaseURL(b), bench1M)
	s, err := postgres.Open(b.Context(), url, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill1M(b, s, url, n)
	sel := labels.SelectorFromSet(labels.Set{"bucket": "7"})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.List(ctx, storage.ListOptions{Resource: "example.com/widgets", Labels: sel, Limit: limit})
		if err != nil {
			b.Fatal(err)
		}
		if want := cmp.Or(limit, n/100); len(res.Objects) != want {
			b.Fatalf("listed %d objects, want %d", len(res.Objects), want)
		}
	}
}

// fill1M fills an empty store with the objects storagetest's benchmarks
// create (object i in namespace ns-<i%10>, named obj-<i, six digits>, with
// labels app=bench and bucket=<i%100> and a 1 KiB value), with their log
// rows, in one transaction of bulk inserts: Create would take minutes.
// It checks one object against what Create stores.
func fill1M(b *testing.B, s storage.Store, url string, n int) {
	ctx := b.Context()
	if cur, err := s.CurrentRevision(ctx); err != nil {
		b.Fatal(err)
	} else if cur == int64(n) {
		return
	} else if cur != 0 {
		b.Fatalf("schema %s holds %d revisions, want 0 or %d: drop it", bench1M, cur, n)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	value := `convert_to('{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"obj-' || i ||
		'"},"spec":{"data":"` + strings.Repeat("x", 900) + `"}}', 'UTF8')`
	lbl := `jsonb_build_object('app', 'bench', 'bucket', (i % 100)::text)`
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range []string{
			`INSERT INTO objects (resource, namespace, name, revision, labels, value)
				SELECT 'example.com/widgets', 'ns-' || (i % 10), 'obj-' || lpad(i::text, 6, '0'), i + 1, ` + lbl + `, ` + value + `
				FROM generate_series(0, $1 - 1) i`,
			`INSERT INTO log (revision, type, resource, namespace, name, labels, value)
				SELECT revision, 1, resource, namespace, name, labels, value FROM objects`,
			`UPDATE meta SET revision = $1`,
		} {
			args := []any{n}
			if !strings.Contains(q, "$1") {
				args = nil
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("%.40s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE objects`); err != nil {
		b.Fatal(err)
	}
	want := storage.Object{Key: storage.Key{Resource: "example.com/widgets", Namespace: "ns-7", Name: "obj-000007"}, Revision: 8}
	got, err := s.Get(ctx, want.Key)
	if err != nil {
		b.Fatal(err)
	}
	wantLabels := map[string]string{"app": "bench", "bucket": "7"}
	wantValue := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"obj-` + strconv.Itoa(7) +
		`"},"spec":{"data":"` + strings.Repeat("x", 900) + `"}}`
	if got.Revision != want.Revision || !bytes.Equal(got.Value, []byte(wantValue)) || !maps.Equal(got.Labels, wantLabels) {
		b.Fatalf("bulk-filled object = %+v (value %s), want revision %d, labels %v, value %s", got, got.Value, want.Revision, wantLabels, wantValue)
	}
}
