package main

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestParseStorageOptions(t *testing.T) {
	const storage = "postgres://postgres@127.0.0.1:5432/dev?sslmode=disable"
	o, err := parseOptions([]string{"-storage", storage, "-replicas", "3", "-selector-objects", "1000000", "-keep-schema", "bench_selector"})
	if err != nil {
		t.Fatal(err)
	}
	if o.storage != storage || o.replicas != 3 || o.selectorObjects != 1_000_000 || o.keepSchema != "bench_selector" {
		t.Errorf("options %+v", o)
	}
	if o, err := parseOptions(nil); err != nil || o.replicas != 1 || o.storage != "" {
		t.Errorf("defaults %+v, %v: want one replica on SQLite", o, err)
	}
	for name, args := range map[string][]string{
		"replicas-without-storage":    {"-replicas", "3"},
		"keep-schema-without-storage": {"-keep-schema", "kept"},
		"storage-and-kubeconfig":      {"-storage", storage, "-kubeconfig", "kc"},
		"no-replica":                  {"-storage", storage, "-replicas", "0"},
		"negative-selector-objects":   {"-storage", storage, "-selector-objects", "-1"},
		"not-postgres":                {"-storage", "mysql://root@127.0.0.1/db"},
		"no-host":                     {"-storage", "postgres:///db"},
		"keyword-value":               {"-storage", "host=127.0.0.1 dbname=dev"},
		"upper-case-schema":           {"-storage", storage, "-keep-schema", "Kept"},
		"quoted-schema":               {"-storage", storage, "-keep-schema", `a";drop`},
		"reserved-schema":             {"-storage", storage, "-keep-schema", "pg_kept"},
		"long-schema":                 {"-storage", storage, "-keep-schema", strings.Repeat("s", 64)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseOptions(args); err == nil {
				t.Errorf("parseOptions(%q) accepted", args)
			}
		})
	}
	// A password never shows in an error, even of a URL that does not parse.
	for _, bad := range []string{"postgres://u:s3cret@h:5432/db%zz", "mysql://u:s3cret@h/db", "postgres://u:s3cret@/db"} {
		_, err := parseOptions([]string{"-storage", bad})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("-storage %s: error %v", bad, err)
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	got, err := withSearchPath("postgresql://u:pw@db:5432/dev?sslmode=disable&search_path=old", "bench_1")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "postgresql" || u.User.String() != "u:pw" || u.Host != "db:5432" || u.Path != "/dev" ||
		q.Get("sslmode") != "disable" || len(q["search_path"]) != 1 || q.Get("search_path") != "bench_1" {
		t.Errorf("withSearchPath = %s", got)
	}
	if got := redactURL("postgres://u:pw@db/dev"); strings.Contains(got, "pw") || !strings.Contains(got, "u:xxxxx@db/dev") {
		t.Errorf("redactURL = %s", got)
	}
}

func TestCheckSchemaName(t *testing.T) {
	for _, ok := range []string{"bench", "_b", "bench_20261126_120000_42_run", strings.Repeat("s", 63)} {
		if err := checkSchemaName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	s := newSchemas(options{storage: "postgres://h/db"}, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	for _, name := range []string{s.run, s.selector} {
		if err := checkSchemaName(name); err != nil {
			t.Errorf("fresh schema %q: %v", name, err)
		}
	}
	if s.run == s.selector {
		t.Errorf("both fresh schemas are %s", s.run)
	}
	if kept := newSchemas(options{storage: "postgres://h/db", keepSchema: "kept"}, time.Now()); kept.selector != "kept" {
		t.Errorf("selector schema %q, want the kept one", kept.selector)
	}
}

// TestSchemas creates and drops the schemas of a run in the database of
// SETPOINT_TEST_POSTGRES.
func TestSchemas(t *testing.T) {
	storage := os.Getenv("SETPOINT_TEST_POSTGRES")
	if storage == "" {
		t.Skip("SETPOINT_TEST_POSTGRES is not set: no PostgreSQL to create schemas in")
	}
	ctx := context.Background()
	opts := options{storage: storage, keepSchema: "bench_test_kept_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))}
	s := newSchemas(opts, time.Now())
	t.Cleanup(func() {
		if err := execSQL(context.Background(), storage, "DROP SCHEMA IF EXISTS "+opts.keepSchema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	exists := func(name string) bool {
		t.Helper()
		conn, err := pgx.Connect(ctx, storage)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	args, err := s.use(ctx, s.run, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 2 || args[0] != "--storage" || !strings.Contains(args[1], "search_path="+s.run) || !exists(s.run) {
		t.Fatalf("flags %q, schema %s exists: %v", args, s.run, exists(s.run))
	}
	// The search path reaches the session.
	conn, err := pgx.Connect(ctx, args[1])
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	err = conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema)
	conn.Close(ctx)
	if err != nil || schema != s.run {
		t.Errorf("current schema %q (%v), want %s", schema, err, s.run)
	}
	if _, err := s.use(ctx, s.run, false); err == nil {
		t.Error("a fresh schema was created twice")
	}
	for range 2 { // a kept schema is reused
		if _, err := s.use(ctx, s.selector, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.drop(); err != nil {
		t.Fatal(err)
	}
	if exists(s.run) || !exists(s.selector) {
		t.Errorf("after drop: run schema exists %v, kept schema exists %v", exists(s.run), exists(s.selector))
	}
}

func TestWriteMarkdownPostgres(t *testing.T) {
	rep := &Report{Date: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC), Objects: 20_000, Rounds: 3,
		Storage: "postgres://postgres@127.0.0.1:5432/dev", Replicas: 3}
	rep.addRoundsOn(1_000_000, "list", "selector, all", []float64{90, 120, 80}, "ms", atMost(100).at(1_000_000))
	rep.addRoundsOn(20_000, "list", "selector, small", []float64{9}, "ms", atMost(100).at(1_000_000))
	rep.Steps = []Step{{Name: "lists", Seconds: 1, ServerCPU: 0.5, BenchCPU: 0.25, OtherCPU: 0.5, DatabaseCPU: 0.4}}
	containsAll(t, "table", markdownOf(t, rep),
		"20,000 objects, PostgreSQL postgres://postgres@127.0.0.1:5432/dev with 3 replicas, median of 3 rounds",
		// Judged on the objects it was measured on, not the report's.
		"| list | selector, all | 90 ms | ≤ 100 ms | yes |\n",
		"| list | selector, small | 9 ms | ≤ 100 ms at 1,000,000 | n/a |\n",
		"| Others CPU s | PostgreSQL CPU s |\n",
		"| lists | 1.0 | 0.5 | 0.2 | 0.5 | 0.4 |\n",
	)
	if v, ok := rep.value("list", "selector, all"); !ok || v != 90 {
		t.Errorf("value = %v, %v; want 90", v, ok)
	}
	if _, ok := rep.value("list", "absent"); ok {
		t.Error("a figure never measured has a value")
	}
}
