package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

// crashChildEnv names the database a re-executed test binary writes to
// until it is killed.
const crashChildEnv = "SETPOINT_STORAGE_CRASH_DB"

// TestMain lets the test binary act as the crash test's writer process,
// and fails the tests if goroutines of the store or its driver outlive
// the stores that started them.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	code := m.Run()
	if code == 0 {
		if left := leftover(); left != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked:\n%s\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

// leftover waits up to ten seconds for goroutines running store or driver
// code to end, and returns the stacks of those that remain.
func leftover() string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, mark := range []string{"internal/storage/sqlite.(", "database/sql.", "modernc.org/"} {
				if strings.Contains(g, mark) {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return strings.Join(left, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crashChild creates objects from 32 goroutines and prints "name revision"
// for each acknowledged create, until it is killed.
func crashChild(path string) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				obj, err := s.Create(ctx, storage.Key{Resource: "crash/objects", Name: name}, []byte(name), nil)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "%s %d\n", name, obj.Revision)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashKeepsAcknowledgedWrites kills a process writing with 32
// goroutines and checks that every write it acknowledged is stored, with
// its revision, and that the change log has no gaps.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a writer process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int64{}
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 3000 {
		name, rev, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(rev, 10, 64)
		if !ok || err != nil {
			t.Fatalf("bad line %q from writer", sc.Text())
		}
		acked[name] = n
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("writer stopped after %d writes", len(acked))
	}

	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for name, rev := range acked {
		obj, err := s.Get(t.Context(), storage.Key{Resource: "crash/objects", Name: name})
		if err != nil {
			t.Fatalf("acknowledged write %s lost: %v", name, err)
		}
		if obj.Revision != rev || string(obj.Value) != name {
			t.Fatalf("acknowledged write %s at %d came back as %+v", name, rev, obj)
		}
	}
	cur, err := s.CurrentRevision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.Changes(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(evs)) != cur {
		t.Fatalf("%d log entries for revision %d", len(evs), cur)
	}
	for i, ev := range evs {
		if ev.Revision() != int64(i)+1 {
			t.Fatalf("log entry %d has revision %d", i, ev.Revision())
		}
	}
	if n, err := s.Count(t.Context(), "crash/objects", ""); err != nil || n != cur {
		t.Fatalf("count = %d, %v; want %d", n, err, cur)
	}
}
