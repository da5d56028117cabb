package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct {
		p    float64
		want float64
	}{{1, 1}, {10, 1}, {11, 2}, {50, 5}, {90, 9}, {99, 10}, {100, 10}} {
		if got := percentile(values, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if values[0] != 5 {
		t.Errorf("percentile sorted its argument: %v", values)
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3, 1, 2 = %v, want 2", got)
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median of nothing = %v, want NaN", got)
	}
}

func TestFormatValue(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{8123.4, "/s", "8,123 /s"},
		{1234567, "", "1,234,567"},
		{0.4242, "ms", "0.42 ms"},
		{12.34, "ms", "12.3 ms"},
		{3, "", "3"},
		{-1500, "ms", "-1,500 ms"},
		{math.NaN(), "ms", "-"},
	} {
		if got := formatValue(c.v, c.unit); got != c.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	rep := &Report{
		Date:    time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC),
		Machine: Machine{CPU: "Test CPU", Cores: 2, MemoryMiB: 1024, GoVersion: "go1.26", Commit: "abc"},
		Objects: 20_000,
		Rounds:  3,
		Label:   "kubernetes",
		// The version of the server under test, when it answers one.
		ServerVersion: "v1.37.2",
	}
	rep.add("memory", "RSS idle", 20, "MiB", nil)
	rep.addRounds("writes", "creates/s, 32 clients", []float64{9000, 7000, 8500}, "/s", atLeast(8000))
	rep.add("watch", "delivery p99", 12.5, "ms", atMost(10))
	rep.add("memory", "RSS after the creates", 100, "MiB", atMost(300).at(100_000))
	rep.Steps = []Step{{Name: "lists", Seconds: 4.04, ServerCPU: 3, BenchCPU: 1.25, OtherCPU: 0}}
	rep.Error = "deletes: boom"
	containsAll(t, "table", markdownOf(t, rep),
		"|:-:|\n| writes | creates/s",
		"| memory | RSS idle | 20 MiB |  |  |\n| memory | RSS after the creates",
		"**kubernetes** (server v1.37.2): Run of 2026-11-26 07:00 UTC on Test CPU (2 cores, 1024 MiB), go1.26, commit abc, 20,000 objects",
		"| writes | creates/s, 32 clients | 8,500 /s | ≥ 8,000 /s | yes |\n",
		"| watch | delivery p99 | 12.5 ms | ≤ 10 ms | **no** |\n",
		"| memory | RSS after the creates | 100 MiB | ≤ 300 MiB at 100,000 | n/a |\n",
		"| lists | 4.0 | 3.0 | 1.2 | 0.0 |\n",
		"The run stopped early: deletes: boom",
	)
}

// markdownOf is the table of rep.
func markdownOf(t *testing.T, rep *Report) string {
	t.Helper()
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// containsAll fails t for every one of wants that the text got, a what,
// lacks.
func containsAll(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, got)
		}
	}
}

func TestWidgets(t *testing.T) {
	for _, i := range []int{0, 7, 99_999} {
		if got := widgetIndex(widgetName(i)); got != i {
			t.Errorf("widgetIndex(widgetName(%d)) = %d", i, got)
		}
	}
	if got := widgetIndex(warmupName); got != -1 {
		t.Errorf("widgetIndex(%q) = %d, want -1", warmupName, got)
	}
	if size := len(mustJSON(benchWidget(nsBench, 12345))); size < objectSize-16 || size > objectSize+16 {
		t.Errorf("a widget is %d bytes of JSON, want about %d", size, objectSize)
	}
}

func TestCheckDeliveries(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	written := writes{
		sent:     []time.Time{ms(0), ms(1), ms(2)},
		acked:    []time.Time{ms(2), ms(3), ms(4)},
		versions: []uint64{10, 11, 12},
		replicas: []int{0, 1, 0},
	}
	good := &watcher{events: []delivery{
		{index: 0, eventType: "ADDED", version: 10, at: ms(5)},
		{index: 1, eventType: "ADDED", version: 11, at: ms(2)}, // before its ack
		{index: 2, eventType: "ADDED", version: 12, at: ms(6)},
	}}
	lat, f := checkDeliveries([]*watcher{good}, written)
	if f.total() != 0 {
		t.Errorf("faults %+v in a correct history", f)
	}
	if want := []float64{3, 0, 2}; !slices.Equal(lat.afterAck, want) {
		t.Errorf("after ack = %v, want %v", lat.afterAck, want)
	}
	if want := []float64{5, 1, 4}; !slices.Equal(lat.afterSend, want) {
		t.Errorf("after send = %v, want %v", lat.afterSend, want)
	}
	// The watcher is on replica 0: only the write sent to replica 1
	// crossed replicas.
	if want := []float64{0}; !slices.Equal(lat.acrossAfterAck, want) {
		t.Errorf("across replicas = %v, want %v", lat.acrossAfterAck, want)
	}
	onOne := &watcher{replica: 1, events: good.events}
	if lat, _ := checkDeliveries([]*watcher{good, onOne}, written); !slices.Equal(lat.acrossAfterAck, []float64{0, 3, 2}) {
		t.Errorf("across replicas from watchers on replicas 0 and 1 = %v, want [0 3 2]", lat.acrossAfterAck)
	}

	bad := &watcher{events: []delivery{
		{index: 1, eventType: "ADDED", version: 11, at: ms(5)},
		{index: 0, eventType: "ADDED", version: 10, at: ms(5)}, // out of order
		{index: 1, eventType: "ADDED", version: 11, at: ms(5)}, // repeated
		{index: -1, eventType: "ADDED", version: 13, at: ms(5)},
	}}
	wrong := &watcher{events: []delivery{
		{index: 0, eventType: "MODIFIED", version: 10, at: ms(5)},
		{index: 1, eventType: "ADDED", version: 11, at: ms(5)},
		{index: 2, eventType: "ADDED", version: 13, at: ms(5)}, // not the version written
	}}
	_, f = checkDeliveries([]*watcher{bad, wrong}, written)
	if want := (watchFaults{missing: 1, repeated: 2, outOfOrder: 1, wrong: 2}); f != want {
		t.Errorf("faults = %+v, want %+v", f, want)
	}
}

func TestNewStep(t *testing.T) {
	before := cpuSample{machine: 10 * time.Second, server: 2 * time.Second, bench: time.Second}
	after := cpuSample{machine: 16 * time.Second, server: 5 * time.Second, bench: 2 * time.Second}
	got := newStep("creates", 4*time.Second, before, after)
	want := Step{Name: "creates", Seconds: 4, ServerCPU: 3, BenchCPU: 1, OtherCPU: 2}
	if got != want {
		t.Errorf("newStep = %+v, want %+v", got, want)
	}
	// Samples read at slightly different moments can make others negative.
	after.machine = 13 * time.Second
	if got := newStep("creates", time.Second, before, after); got.OtherCPU != 0 {
		t.Errorf("others = %v, want 0 when the machine counter lags", got.OtherCPU)
	}
}

func TestCompare(t *testing.T) {
	day := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	run := func(label string, minute int, creates, p99, missing float64, extra bool) *Report {
		r := &Report{Label: label, Date: day.Add(time.Duration(minute) * time.Minute), Objects: 100_000}
		r.addRounds("writes", "creates/s, 32 clients", []float64{creates}, "/s", nil)
		r.add("watch", "delivery after write ack p99, 50 watchers, 5,000 writes", p99, "ms", nil)
		r.add("watch", "events missing, repeated, out of order or wrong", missing, "", nil)
		r.add("startup", "exec → first 200 from /readyz", 10, "ms", nil)
		if extra {
			r.add("startup", "exec → listening line", 9, "ms", nil)
		}
		return r
	}
	reports := []*Report{
		run("setpoint", 2, 9000, 8, 0, true),
		run("kubernetes", 3, 1000, 100, 0, false),
		run("setpoint", 4, 6000, 12, 0, true),
		run("kubernetes", 1, 3000, 120, 0, false),
		run("setpoint", 6, 8000, 10, 0, true),
		run("kubernetes", 7, 2000, 30, 0, false),
	}
	c, err := compare(reports)
	if err != nil {
		t.Fatal(err)
	}
	if c.Labels != [2]string{"setpoint", "kubernetes"} || c.Runs != [2]int{3, 3} || !c.Date.Equal(day.Add(time.Minute)) {
		t.Errorf("labels %v, runs %v, date %v", c.Labels, c.Runs, c.Date)
	}
	var b strings.Builder
	c.writeMarkdown(&b)
	for _, want := range []string{
		"setpoint against kubernetes: medians of 3 and 3 runs, 100,000 objects, from 2026-11-26 07:01 UTC",
		"| Scenario | Figure | setpoint | kubernetes | setpoint/kubernetes | setpoint ahead | Target | Met |\n",
		"| startup | exec → first 200 from /readyz | 10 ms | 10 ms | 1.00 | 1.0× | ≥ 10× | **no** |\n",
		"| writes | creates/s, 32 clients | 8,000 /s | 2,000 /s | 4.00 | 4.0× | ≥ 3× | yes |\n",
		"| watch | delivery after write ack p99, 50 watchers, 5,000 writes | 10 ms | 100 ms | 0.10 | 10.0× | ≥ 3× | yes |\n",
		"| watch | events missing, repeated, out of order or wrong | 0 | 0 | - | - |  |  |\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "listening line") {
		t.Errorf("a figure of one system only is compared:\n%s", b.String())
	}

	dir := t.TempDir()
	var paths []string
	for i, r := range reports {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("%d.json", i)))
		if err := os.WriteFile(paths[i], data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var printed strings.Builder
	if err := compareFiles(paths, dir, &printed); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(filepath.Join(dir, "compare.md"))
	if err != nil || string(saved) != printed.String() || printed.String() != b.String() {
		t.Errorf("compare.md (%v) differs from the table printed:\n%s\n%s", err, saved, printed.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "compare-2026-11-26T070100Z.json"))
	if err != nil {
		t.Fatal(err)
	}
	var decoded Comparison
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded.Rows) != len(c.Rows) || decoded.Rows[1].Medians != [2]float64{8000, 2000} {
		t.Errorf("saved rows %+v, want %+v", decoded.Rows, c.Rows)
	}

	for name, bad := range map[string][]*Report{
		"one-system":    {run("setpoint", 0, 1, 1, 0, false)},
		"three-systems": {run("a", 0, 1, 1, 0, false), run("b", 0, 1, 1, 0, false), run("c", 0, 1, 1, 0, false)},
		"other-size":    {run("a", 0, 1, 1, 0, false), {Label: "b", Objects: 20_000}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := compare(bad); err == nil {
				t.Error("compared")
			}
		})
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-kubeconfig", "kc", "-pids", "12, 34", "-label", "kubernetes", "-compare", "a.json,b.json"})
	if err != nil {
		t.Fatal(err)
	}
	if o.kubeconfig != "kc" || !slices.Equal(o.pids, []int{12, 34}) || o.label != "kubernetes" || !slices.Equal(o.compare, []string{"a.json", "b.json"}) {
		t.Errorf("options %+v", o)
	}
	for name, args := range map[string][]string{
		"pids-without-kubeconfig": {"-pids", "1"},
		"bad-pid":                 {"-kubeconfig", "kc", "-pids", "1,x"},
		"start-without-stop":      {"-kubeconfig", "kc", "-start-cmd", "true"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseOptions(args); err == nil {
				t.Errorf("parseOptions(%q) accepted", args)
			}
		})
	}
}

func TestServerMemory(t *testing.T) {
	self := server{pids: []int{os.Getpid(), os.Getpid()}}
	one, err := server{pids: []int{os.Getpid()}}.memoryMiB("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	two, err := self.memoryMiB("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	// The peak read later is at least the one read first.
	if one <= 0 || two < 2*one {
		t.Errorf("VmHWM of this process %v MiB, counted twice %v MiB", one, two)
	}
	if _, err := (server{}).memoryMiB("VmRSS"); err == nil {
		t.Error("memory of no process read")
	}
}

func TestMeasureStartCmd(t *testing.T) {
	opts := options{
		starts: 2,
		// The stop command sees the directory the start command wrote to.
		startCmd: `test -d "$BENCH_START_DIR" && touch "$BENCH_START_DIR/started"`,
		stopCmd:  `test -f "$BENCH_START_DIR/started"`,
	}
	rep := &Report{}
	if err := measureStartCmd(context.Background(), opts, rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || len(rep.Results[0].Rounds) != 2 || rep.Results[0].Name != "exec → first 200 from /readyz" {
		t.Errorf("results %+v, want one figure of 2 rounds", rep.Results)
	}
	opts.stopCmd = "exit 3"
	if err := measureStartCmd(context.Background(), opts, &Report{}); err == nil {
		t.Error("a failing stop command went unnoticed")
	}
}
