package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
	"github.com/setpoint/setpoint/internal/storage/storagetest"
)

func BenchmarkCreate1(b *testing.B)          { storagetest.BenchCreate(b, factory, 1) }
func BenchmarkCreate32(b *testing.B)         { storagetest.BenchCreate(b, factory, 32) }
func BenchmarkCreate32Tailed(b *testing.B)   { storagetest.BenchCreate(b, tailed, 32) }
func BenchmarkCreate256(b *testing.B)        { storagetest.BenchCreate(b, factory, 256) }
func BenchmarkUpdate32(b *testing.B)         { storagetest.BenchUpdate(b, factory, 32) }
func BenchmarkListSelector100k(b *testing.B) { storagetest.BenchListSelector(b, factory, 100000) }
func BenchmarkListAll100k(b *testing.B)      { storagetest.BenchList(b, factory, 100000, 0) }
func BenchmarkListPaged100k(b *testing.B)    { storagetest.BenchList(b, factory, 100000, 500) }
func BenchmarkListPage100k(b *testing.B)     { storagetest.BenchListPage(b, factory, 100000, 500, 1000) }
func BenchmarkChanges(b *testing.B)          { storagetest.BenchChanges(b, factory) }
func BenchmarkGet(b *testing.B)              { storagetest.BenchGet(b, factory) }

// BenchmarkOpenNew measures Open of a new database, migrations included.
func BenchmarkOpenNew(b *testing.B) {
	dir := b.TempDir()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s, err := sqlite.Open(b.Context(), filepath.Join(dir, strconv.Itoa(i), "db"), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkOpenExisting measures Open and Close of an existing database.
func BenchmarkOpenExisting(b *testing.B) {
	path := filepath.Join(b.TempDir(), "db")
	b.ReportAllocs()
	for b.Loop() {
		s, err := sqlite.Open(b.Context(), path, sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// tailed is factory with a change-feed reader on the store, as in the
// server: after each commit notification it reads the new events back with
// Changes and checks that they follow on from the last one it read.
func tailed(t testing.TB) storagetest.Opener {
	open := factory(t)
	return func(t testing.TB) storage.Store {
		t.Helper()
		s := open(t)
		done := make(chan struct{})
		go func() {
			defer close(done)
			var after int64
			for range s.Notify() {
				for {
					evs, err := s.Changes(context.Background(), after, 1000)
					if err != nil {
						if !errors.Is(err, storage.ErrClosed) {
							t.Errorf("changes after %d: %v", after, err)
						}
						return
					}
					if len(evs) == 0 {
						break
					}
					for _, ev := range evs {
						if ev.Revision() != after+1 {
							t.Errorf("event revision %d after %d", ev.Revision(), after)
							return
						}
						after++
					}
				}
			}
		}()
		t.Cleanup(func() {
			_ = s.Close()
			<-done
		})
		return s
	}
}
