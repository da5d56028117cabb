package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/postgres"
	"github.com/setpoint/setpoint/internal/storage/postgres/pgtest"
)

// TestNewerSchemaRefused checks that a schema migrated by a newer binary
// is not opened.
func TestNewerSchemaRefused(t *testing.T) {
	url := pgtest.URL(t)
	s, err := postgres.Open(t.Context(), url, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := admin(t, url).Exec(t.Context(), `UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	s, err = postgres.Open(t.Context(), url, testOptions)
	if err == nil {
		_ = s.Close()
		t.Fatal("opened a schema newer than the binary")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("error does not say why: %v", err)
	}
}

// TestOpenRace opens several stores at once on a schema that does not
// exist yet: all must succeed, the schema migrated once.
func TestOpenRace(t *testing.T) {
	base := pgtest.BaseURL(t)
	schema := uniqueName("t_openrace_")
	db := admin(t, base)
	t.Cleanup(func() {
		_, _ = db.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	})
	url := pgtest.WithSchema(t, base, schema)
	const n = 4
	stores := make([]storage.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 1})
			stores[i], errs[i] = s, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var versions, metas int
	if err := db.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM `+pgx.Identifier{schema, "schema_version"}.Sanitize()+`),
		(SELECT count(*) FROM `+pgx.Identifier{schema, "meta"}.Sanitize()+`)`).Scan(&versions, &metas); err != nil {
		t.Fatal(err)
	}
	if versions != 1 || metas != 1 {
		t.Fatalf("%d schema_version rows and %d meta rows, want 1 each", versions, metas)
	}
	obj, err := stores[0].Create(t.Context(), storage.Key{Resource: "r", Name: "a"}, []byte(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := stores[n-1].Get(t.Context(), obj.Key); err != nil || got.Revision != obj.Revision {
		t.Fatalf("get from another store = %+v, %v", got, err)
	}
}

// TestOpenContextEndsAfterOpen checks that Open's context bounds only Open.
func TestOpenContextEndsAfterOpen(t *testing.T) {
	url := pgtest.URL(t)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := postgres.Open(ctx, url, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	key := storage.Key{Resource: "r", Name: "a"}
	if _, err := s.Create(t.Context(), key, []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), key); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput writes keys, labels and values that are awkward for SQL:
// what PostgreSQL text cannot hold fails with storage.ErrInvalid and
// changes nothing; everything else comes back byte for byte.
func TestBadInput(t *testing.T) {
	ctx := t.Context()
	s := factory(t)(t)
	const res = "example.com/widgets"
	invalid := []struct {
		name string
		key  storage.Key
		lbl  map[string]string
	}{
		{"nul-name", storage.Key{Resource: res, Name: "a\x00b"}, nil},
		{"nul-namespace", storage.Key{Resource: res, Namespace: "\x00", Name: "a"}, nil},
		{"bad-utf8-name", storage.Key{Resource: res, Name: "a\xffb"}, nil},
		{"nul-label-value", storage.Key{Resource: res, Name: "a"}, map[string]string{"k": "v\x00"}},
		{"nul-label-key", storage.Key{Resource: res, Name: "a"}, map[string]string{"k\x00": "v"}},
		{"bad-utf8-label", storage.Key{Resource: res, Name: "a"}, map[string]string{"k": "\xc3\x28"}},
	}
	for _, c := range invalid {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Create(ctx, c.key, []byte(`{}`), c.lbl)
			if !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("create: %v, want ErrInvalid", err)
			}
			_, err = s.Update(ctx, c.key, []byte(`{}`), c.lbl, storage.Precondition{})
			if !errors.Is(err, storage.ErrInvalid) && !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("update: %v, want ErrInvalid or ErrNotFound", err)
			}
			if _, err := s.Get(ctx, c.key); !errors.Is(err, storage.ErrInvalid) && !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("get: %v, want ErrInvalid or ErrNotFound", err)
			}
		})
	}
	if cur, err := s.CurrentRevision(ctx); err != nil || cur != 0 {
		t.Fatalf("revision after rejected writes = %d, %v", cur, err)
	}

	huge := bytes.Repeat([]byte(`{"x":"\u0000 ünïcode '\"); DROP TABLE objects; --"}`), 1<<20/48)
	awkward := []struct {
		name  string
		key   storage.Key
		lbl   map[string]string
		value []byte
	}{
		{"quotes", storage.Key{Resource: res, Namespace: `n'"s`, Name: `'); DROP TABLE objects; --`},
			map[string]string{`it's`: `"quoted" \ back`, "x": `'); DELETE FROM meta; --`}, []byte(`{"a":"'\""}`)},
		{"unicode", storage.Key{Resource: res, Namespace: "ns", Name: "ünïcödé-名前"}, map[string]string{"ключ": "значение", "e": ""}, []byte(`{}`)},
		{"binary-value", storage.Key{Resource: res, Namespace: "ns", Name: "bin"}, nil, []byte{0, 1, 2, 0xff, 0xfe, 0}},
		{"empty-value", storage.Key{Resource: res, Namespace: "ns", Name: "empty"}, nil, nil},
		{"huge-value", storage.Key{Resource: res, Namespace: "ns", Name: "huge"}, map[string]string{"big": "yes"}, huge},
	}
	for _, c := range awkward {
		t.Run(c.name, func(t *testing.T) {
			obj, err := s.Create(ctx, c.key, c.value, c.lbl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, c.key)
			if err != nil {
				t.Fatal(err)
			}
			if got.Revision != obj.Revision || !bytes.Equal(got.Value, c.value) || len(got.Labels) != len(c.lbl) {
				t.Fatalf("get = %+v, want labels %v and the value written", got, c.lbl)
			}
			for k, v := range c.lbl {
				if got.Labels[k] != v {
					t.Fatalf("label %q = %q, want %q", k, got.Labels[k], v)
				}
			}
			evs, err := s.Changes(ctx, obj.Revision-1, 1)
			if err != nil || len(evs) != 1 || !bytes.Equal(evs[0].Object.Value, c.value) || evs[0].Object.Key != c.key {
				t.Fatalf("changes = %+v, %v", evs, err)
			}
			if _, err := s.Delete(ctx, c.key, storage.Precondition{Revision: obj.Revision}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n, err := s.Count(ctx, res, ""); err != nil || n != 0 {
		t.Fatalf("count = %d, %v", n, err)
	}
}
