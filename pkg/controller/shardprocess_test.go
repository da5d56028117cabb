package controller_test

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
	"github.com/setpoint/setpoint/pkg/shard"
)

// Environment of a replica process started by TestShardProcessesSurviveKill.
const (
	envKubeconfig = "SETPOINT_SHARD_KUBECONFIG"
	envIdentity   = "SETPOINT_SHARD_ID"
	envLog        = "SETPOINT_SHARD_LOG"
	// envObjects sets the number of widgets of TestShardProcessesSurviveKill;
	// default 10,000, or 2,000 under the race detector.
	envObjects = "SETPOINT_SHARD_OBJECTS"
)

// processShard is the shard timing of the replica processes.
var processShard = shard.Options{LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RenewPeriod: 200 * time.Millisecond}

// TestShardReplicaProcess is one replica of TestShardProcessesSurviveKill,
// run in its own process; run directly, it skips. It appends
// "start <key> <unix-nanos>" and "end <key> <unix-nanos>" lines around each
// reconcile to its ownership log, prints "active <members>" each time a
// view becomes active, and runs until SIGTERM (or SIGKILL).
func TestShardReplicaProcess(t *testing.T) {
	kubeconfig := os.Getenv(envKubeconfig)
	if kubeconfig == "" {
		t.Skip("a replica process of TestShardProcessesSurviveKill")
	}
	cfg, err := client.NewConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS = -1
	f, err := os.OpenFile(os.Getenv(envLog), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	record := func(event, key string) {
		// One write per line, appended: a kill loses no finished line.
		if _, err := f.WriteString(event + " " + key + " " + strconv.FormatInt(time.Now().UnixNano(), 10) + "\n"); err != nil {
			panic(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	r, err := newReplica(cfg, os.Getenv(envIdentity), processShard, record)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			changed := r.member.Changed()
			select {
			case <-ctx.Done():
				return
			case <-changed:
				fmt.Printf("active %s\n", strings.Join(r.member.Members(), ","))
			}
		}
	}()
	if err := r.manager.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// proc is a replica process.
type proc struct {
	id     string
	cmd    *exec.Cmd
	log    string
	active chan string // the members of each view it activates
	exited chan error
}

func startReplica(t *testing.T, dir, kubeconfig, id string) *proc {
	t.Helper()
	p := &proc{id: id, log: filepath.Join(dir, id+".log"), active: make(chan string, 100), exited: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestShardReplicaProcess$", "-test.count=1")
	p.cmd.Env = append(os.Environ(), envKubeconfig+"="+kubeconfig, envIdentity+"="+id, envLog+"="+p.log)
	stderr, err := os.Create(filepath.Join(dir, id+".stderr"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if members, ok := strings.CutPrefix(sc.Text(), "active "); ok {
				select {
				case p.active <- members:
				default:
				}
			}
		}
	}()
	go func() {
		<-scanned
		p.exited <- p.cmd.Wait()
		stderr.Close()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(stderr.Name())
			t.Logf("%s stderr:\n%s", id, b)
		}
	})
	return p
}

// interval is one reconcile of a key by a replica, in unix nanoseconds.
type interval struct {
	replica    string
	start, end int64
}

// readOwnership parses a replica's ownership log into intervals per key; a
// reconcile without an end line ends at openEnd.
func readOwnership(t *testing.T, p *proc, openEnd int64, into map[string][]interval) {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]int64{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("%s: bad ownership line %q", p.id, line)
		}
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("%s: bad ownership line %q", p.id, line)
		}
		switch f[0] {
		case "start":
			if _, ok := open[f[1]]; ok {
				t.Errorf("%s started %s twice at once", p.id, f[1])
			}
			open[f[1]] = ns
		case "end":
			into[f[1]] = append(into[f[1]], interval{p.id, open[f[1]], ns})
			delete(open, f[1])
		}
	}
	for key, start := range open {
		into[key] = append(into[key], interval{p.id, start, openEnd})
	}
}

// TestShardProcessesSurviveKill runs three replica processes of a sharded
// controller against one server and creates widgets for them (10,000;
// 2,000 under the race detector; or $SETPOINT_SHARD_OBJECTS). When a third have converged it kills
// one replica with SIGKILL. Every widget still converges, the dead
// replica's keys move to the others, and the replicas' ownership logs show
// no key reconciled by two replicas at overlapping times.
func TestShardProcessesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs replica processes")
	}
	n := 10000
	if raceEnabled {
		n = 2000
	}
	if v := os.Getenv(envObjects); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("%s: %v", envObjects, err)
		}
	}
	s := setpointtest.Start(t, setpointtest.Options{})
	cfg := s.RESTConfig()
	installWidgetCRD(t, cfg)
	widgets := must(client.New[Widget](cfg, widgetResource))
	dir := t.TempDir()
	ids := []string{"r0", "r1", "r2"}
	var procs []*proc
	for _, id := range ids {
		procs = append(procs, startReplica(t, dir, s.Kubeconfig, id))
	}
	for _, p := range procs {
		for m := ""; m != "r0,r1,r2"; {
			m = await(t, p.active, p.id+" to activate the view of three")
		}
	}

	start := time.Now()
	created := make(chan error, 1)
	go func() { created <- createWidgets(widgets, n) }()
	victim := procs[1]
	var killed time.Time
	awaitConverged(t, widgets, n, func(c int) {
		if c == n/3 && killed.IsZero() {
			if err := victim.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-victim.exited
			killed = time.Now()
		}
	})
	took := time.Since(start)
	if err := await(t, created, "the widgets to be created"); err != nil {
		t.Fatal(err)
	}
	if killed.IsZero() {
		t.Fatal("converged before the kill")
	}
	for _, p := range []*proc{procs[0], procs[2]} {
		if m := await(t, p.active, p.id+" to activate a view"); m != "r0,r2" {
			t.Errorf("%s activated %q after the kill, want r0,r2", p.id, m)
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*proc{procs[0], procs[2]} {
		if err := await(t, p.exited, p.id+" to exit"); err != nil {
			t.Errorf("%s exited with %v", p.id, err)
		}
	}

	byKey := map[string][]interval{}
	readOwnership(t, victim, killed.UnixNano(), byKey)
	for _, p := range []*proc{procs[0], procs[2]} {
		readOwnership(t, p, math.MaxInt64, byKey)
	}
	reconciles, firstMoved, moved := 0, int64(math.MaxInt64), 0
	for key, ivs := range byKey {
		reconciles += len(ivs)
		slices.SortFunc(ivs, func(a, b interval) int { return cmp.Compare(a.start, b.start) })
		var last interval
		for i, iv := range ivs {
			if i > 0 && iv.start <= last.end {
				t.Errorf("key %s: %s reconciled it over [%d,%d] while %s did over [%d,%d]",
					key, iv.replica, iv.start, iv.end, last.replica, last.start, last.end)
			}
			if iv.end > last.end || i == 0 {
				last = iv
			}
		}
		if shard.Owner(key, ids) == victim.id {
			moved++
			for _, iv := range ivs {
				if iv.replica != victim.id && iv.start > killed.UnixNano() {
					firstMoved = min(firstMoved, iv.start)
				}
			}
		}
	}
	if len(byKey) < n {
		t.Errorf("the ownership logs name %d keys, want %d", len(byKey), n)
	}
	if firstMoved == math.MaxInt64 {
		t.Fatal("no key of the killed replica was reconciled after the kill")
	}
	t.Logf("%d widgets converged in %v with %d reconciles; killing %s moved its %d keys, the first %v after the kill (lease duration %v)",
		n, took.Round(time.Millisecond), reconciles, victim.id, moved, time.Unix(0, firstMoved).Sub(killed).Round(time.Millisecond), processShard.LeaseDuration)
}
