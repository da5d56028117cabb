package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMmapReadersOnly checks that reader connections map the database by
// default and not at all with a negative MmapSize, and that the writer
// never maps it.
func TestMmapReadersOnly(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
		want int64
	}{
		{name: "default", want: DefaultMmapSize},
		{name: "set", opts: Options{MmapSize: 64 << 20}, want: 64 << 20},
		{name: "off", opts: Options{MmapSize: -1}, want: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			s, err := Open(t.Context(), path, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			var got int64
			if err := s.readDB.QueryRowContext(t.Context(), `PRAGMA mmap_size`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("reader mmap_size = %d, want %d", got, c.want)
			}
			if w := dsn(path, c.opts.withDefaults(), false); strings.Contains(w, "mmap_size") {
				t.Errorf("writer connection string %s sets mmap_size", w)
			}
		})
	}
}
