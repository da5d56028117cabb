package main

import (
	"math"
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
	}
	rep.add("memory", "RSS idle", 20, "MiB", nil)
	rep.addRounds("writes", "creates/s, 32 clients", []float64{9000, 7000, 8500}, "/s", atLeast(8000))
	rep.add("watch", "delivery p99", 12.5, "ms", atMost(10))
	rep.add("memory", "RSS after the creates", 100, "MiB", atMost(300).at(100_000))
	rep.Steps = []Step{{Name: "lists", Seconds: 4.04, ServerCPU: 3, BenchCPU: 1.25, OtherCPU: 0}}
	rep.Error = "deletes: boom"
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"|:-:|\n| writes | creates/s",
		"| memory | RSS idle | 20 MiB |  |  |\n| memory | RSS after the creates",
		"Run of 2026-11-26 07:00 UTC on Test CPU (2 cores, 1024 MiB), go1.26, commit abc, 20,000 objects",
		"| writes | creates/s, 32 clients | 8,500 /s | ≥ 8,000 /s | yes |\n",
		"| watch | delivery p99 | 12.5 ms | ≤ 10 ms | **no** |\n",
		"| memory | RSS after the creates | 100 MiB | ≤ 300 MiB at 100,000 | n/a |\n",
		"| lists | 4.0 | 3.0 | 1.2 | 0.0 |\n",
		"The run stopped early: deletes: boom",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
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
