package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is one run of the benchmark: where it ran, with which options,
// and every figure measured. It is written as JSON and as a markdown table.
type Report struct {
	// Label names the system measured, such as "setpoint" or
	// "kubernetes"; -compare pairs runs by it.
	Label string `json:"label"`
	// Date is when the run started, in UTC.
	Date time.Time `json:"date"`
	// Machine describes the host and the binary under test.
	Machine Machine `json:"machine"`
	// ServerVersion is the gitVersion the server's /version answered.
	ServerVersion string `json:"serverVersion,omitempty"`
	// Objects is the number of objects the list, RSS, status and delete
	// figures were measured on.
	Objects int `json:"objects"`
	// Rounds is how many rounds the short scenarios were repeated.
	Rounds int `json:"rounds"`
	// Storage is the PostgreSQL URL the servers kept their data in,
	// without its password; empty for embedded SQLite.
	Storage string `json:"storage,omitempty"`
	// Replicas is how many servers shared Storage.
	Replicas int `json:"replicas,omitempty"`
	// Results are the figures in the order they were measured.
	Results []Result `json:"results"`
	// Steps say how each scenario used the CPU, in the order they ran.
	Steps []Step `json:"steps"`
	// Error, when set, is why the run stopped early.
	Error string `json:"error,omitempty"`
}

// Result is one measured figure.
type Result struct {
	// Scenario groups the figures of one scenario, such as "writes".
	Scenario string `json:"scenario"`
	// Name says what was measured, such as "creates/s, 32 clients".
	Name string `json:"name"`
	// Value is the figure reported: the median of Rounds when there are any.
	Value float64 `json:"value"`
	// Unit is the unit of Value and Rounds: "ms", "/s", "MiB" or "".
	Unit string `json:"unit"`
	// Rounds holds the value of each round, when the figure was repeated.
	Rounds []float64 `json:"rounds,omitempty"`
	// Objects, when not zero, is the object count the figure was measured
	// on, when not the report's.
	Objects int `json:"objects,omitempty"`
	// Target, when not nil, is what the figure should reach.
	Target *Target `json:"target,omitempty"`
}

// Target is a goal for a figure: at most or at least Value.
type Target struct {
	// AtMost is true for an upper bound (latency, memory), false for a
	// lower bound (throughput).
	AtMost bool `json:"atMost"`
	// Value is the bound, in the unit of the result.
	Value float64 `json:"value"`
	// AtObjects, when not zero, is the object count the target is set
	// for; runs on fewer objects do not judge it.
	AtObjects int `json:"atObjects,omitempty"`
}

// atMost is a target of at most v.
func atMost(v float64) *Target { return &Target{AtMost: true, Value: v} }

// atLeast is a target of at least v.
func atLeast(v float64) *Target { return &Target{Value: v} }

// at sets the object count the target is meant for.
func (t *Target) at(objects int) *Target { t.AtObjects = objects; return t }

// met tells whether value reaches the target.
func (t *Target) met(value float64) bool {
	if t.AtMost {
		return value <= t.Value
	}
	return value >= t.Value
}

// add appends a figure measured once.
func (r *Report) add(scenario, name string, value float64, unit string, target *Target) {
	r.Results = append(r.Results, Result{Scenario: scenario, Name: name, Value: value, Unit: unit, Target: target})
}

// addRounds appends a figure measured in several rounds, reported as
// their median.
func (r *Report) addRounds(scenario, name string, rounds []float64, unit string, target *Target) {
	r.addRoundsOn(0, scenario, name, rounds, unit, target)
}

// addRoundsOn appends a figure measured in several rounds on objects
// objects, not the report's count (0: the report's).
func (r *Report) addRoundsOn(objects int, scenario, name string, rounds []float64, unit string, target *Target) {
	r.Results = append(r.Results, Result{Scenario: scenario, Name: name, Value: median(rounds), Unit: unit, Rounds: rounds, Target: target, Objects: objects})
}

// value is the figure of scenario named name, if it was measured.
func (r *Report) value(scenario, name string) (float64, bool) {
	for _, res := range r.Results {
		if res.Scenario == scenario && res.Name == name {
			return res.Value, true
		}
	}
	return 0, false
}

// WriteMarkdown writes the results as a markdown table, one row per figure.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	var about []string
	if r.Label != "" {
		about = append(about, "**"+r.Label+"**")
	}
	if r.ServerVersion != "" {
		about = append(about, "(server "+r.ServerVersion+")")
	}
	if len(about) > 0 {
		b.WriteString(strings.Join(about, " ") + ": ")
	}
	storage := ""
	if r.Storage != "" {
		storage = fmt.Sprintf(", PostgreSQL %s with %d replicas", r.Storage, r.Replicas)
	}
	fmt.Fprintf(&b, "Run of %s on %s, %s objects%s, median of %d rounds where repeated.\n\n",
		r.Date.Format("2006-01-02 15:04 UTC"), r.Machine.summary(), formatNumber(float64(r.Objects), 0), storage, r.Rounds)
	b.WriteString("| Scenario | Figure | Value | Target | Met |\n")
	b.WriteString("|---|---|--:|--:|:-:|\n")
	for _, res := range r.grouped() {
		target, met := "", ""
		if t := res.Target; t != nil {
			op := "≥"
			if t.AtMost {
				op = "≤"
			}
			target = op + " " + formatValue(t.Value, res.Unit)
			objects := r.Objects
			if res.Objects > 0 {
				objects = res.Objects
			}
			switch {
			case t.AtObjects > objects:
				target += " at " + formatNumber(float64(t.AtObjects), 0)
				met = "n/a"
			case t.met(res.Value):
				met = "yes"
			default:
				met = "**no**"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", res.Scenario, res.Name, formatValue(res.Value, res.Unit), target, met)
	}
	if len(r.Steps) > 0 {
		if r.Storage == "" {
			b.WriteString("\nCPU seconds used during each step, by the server, the benchmark program and every other process:\n\n")
			b.WriteString("| Step | Wall s | Server CPU s | Bench CPU s | Others CPU s |\n")
			b.WriteString("|---|--:|--:|--:|--:|\n")
		} else {
			b.WriteString("\nCPU seconds used during each step, by the server's replicas, the benchmark program, every other process and, among them, this host's PostgreSQL:\n\n")
			b.WriteString("| Step | Wall s | Server CPU s | Bench CPU s | Others CPU s | PostgreSQL CPU s |\n")
			b.WriteString("|---|--:|--:|--:|--:|--:|\n")
		}
		for _, st := range r.Steps {
			fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %.1f |", st.Name, st.Seconds, st.ServerCPU, st.BenchCPU, st.OtherCPU)
			if r.Storage != "" {
				fmt.Fprintf(&b, " %.1f |", st.DatabaseCPU)
			}
			b.WriteString("\n")
		}
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "\nThe run stopped early: %s\n", r.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// scenarioOrder is the order of the scenarios in the table; figures of a
// scenario keep the order they were measured in.
var scenarioOrder = []string{"startup", "crd", "writes", "list", "informer", "watch", "memory"}

// scenarioRank is the place of scenario in the table.
func scenarioRank(scenario string) int {
	if i := slices.Index(scenarioOrder, scenario); i >= 0 {
		return i
	}
	return len(scenarioOrder)
}

// grouped returns the results sorted by scenario.
func (r *Report) grouped() []Result {
	sorted := slices.Clone(r.Results)
	slices.SortStableFunc(sorted, func(a, b Result) int { return scenarioRank(a.Scenario) - scenarioRank(b.Scenario) })
	return sorted
}

// formatValue prints v with its unit and with fewer decimals the larger it
// is: 0.42 ms, 12.3 ms, 8,123 /s.
func formatValue(v float64, unit string) string {
	decimals := 0
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "-"
	case a < 10 && a != math.Trunc(a):
		decimals = 2
	case a < 100 && a != math.Trunc(a):
		decimals = 1
	}
	s := formatNumber(v, decimals)
	if unit == "" {
		return s
	}
	return s + " " + unit
}

// formatNumber prints v with decimals digits after the point and commas
// between thousands.
func formatNumber(v float64, decimals int) string {
	s := strconv.FormatFloat(math.Abs(v), 'f', decimals, 64)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

// save writes the report to dir as <date>.json and latest.md.
func (r *Report) save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	name := r.Date.Format("2006-01-02T150405Z")
	if r.Label != "" {
		name += "-" + r.Label
	}
	jsonPath := filepath.Join(dir, name+".json")
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	var md strings.Builder
	if err := r.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write results table: %w", err)
	}
	return nil
}
