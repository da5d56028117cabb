package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestKubectlGet reads knobs with kubectl get in every output format and
// with label and field selectors, and checks what it prints against the
// objects client-go reads.
func TestKubectlGet(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	k1 := e.createKnob(t, "k1", map[string]string{"tier": "gold"}, map[string]any{"position": int64(10)})
	e.createKnob(t, "k2", map[string]string{"tier": "silver"}, map[string]any{"position": int64(20), "mode": "auto"})
	e.createKnob(t, "k3", nil, map[string]any{"position": int64(30)})
	e.setKnobStatus(t, "k1", map[string]any{"phase": "Turning"})

	t.Run("table", func(t *testing.T) {
		// The CRD's columns replace Age; an unset status shows empty.
		want := [][]string{
			{"NAME", "POSITION", "PHASE"},
			{"k1", "10", "Turning"},
			{"k2", "20", ""},
			{"k3", "30", ""},
		}
		if got := kubectlTable(e.kn(t, "get", "knobs")); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("kubectl get knobs printed %q, want %q: the priority-1 column MODE shows only in wide", got, want)
		}
	})
	t.Run("wide", func(t *testing.T) {
		want := [][]string{
			{"NAME", "POSITION", "PHASE", "MODE"},
			{"k1", "10", "Turning", "manual"},
			{"k2", "20", "", "auto"},
			{"k3", "30", "", "manual"},
		}
		if got := kubectlTable(e.kn(t, "get", "knobs", "-o", "wide")); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("kubectl get knobs -o wide printed %q, want %q", got, want)
		}
	})
	t.Run("yaml", func(t *testing.T) {
		var got unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(e.kn(t, "get", "knob", "k1", "-o", "yaml")), &got.Object); err != nil {
			t.Fatal(err)
		}
		if got.GetUID() != k1.GetUID() || got.GetKind() != "Knob" || got.GetAPIVersion() != testGroup+"/"+testVersion {
			t.Errorf("kubectl get -o yaml: %s %s uid %s, want Knob %s/%s uid %s", got.GetAPIVersion(), got.GetKind(), got.GetUID(), testGroup, testVersion, k1.GetUID())
		}
		if pos, _, _ := unstructured.NestedFloat64(got.Object, "spec", "position"); pos != 10 {
			t.Errorf("kubectl get -o yaml: spec %v, want position 10", got.Object["spec"])
		}
		if phase, _, _ := unstructured.NestedString(got.Object, "status", "phase"); phase != "Turning" {
			t.Errorf("kubectl get -o yaml: status %v, want phase Turning", got.Object["status"])
		}
	})
	t.Run("json", func(t *testing.T) {
		var list struct {
			APIVersion string                      `json:"apiVersion"`
			Kind       string                      `json:"kind"`
			Items      []unstructured.Unstructured `json:"items"`
		}
		if err := json.Unmarshal([]byte(e.kn(t, "get", "knobs", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		if list.Kind != "List" || list.APIVersion != "v1" || !slices.Equal(names(list.Items), []string{"k1", "k2", "k3"}) {
			t.Fatalf("kubectl get -o json: %s %s of %v, want a v1 List of k1 k2 k3", list.APIVersion, list.Kind, names(list.Items))
		}
		for _, it := range list.Items {
			if it.GetKind() != "Knob" || it.GetNamespace() != e.ns || it.GetResourceVersion() == "" {
				t.Errorf("item %s: kind %q namespace %q resourceVersion %q", it.GetName(), it.GetKind(), it.GetNamespace(), it.GetResourceVersion())
			}
		}
	})
	t.Run("jsonpath", func(t *testing.T) {
		out := e.kn(t, "get", "knobs", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.position}/{.spec.mode}{"\n"}{end}`)
		if want := "k1=10/manual\nk2=20/auto\nk3=30/manual\n"; out != want {
			t.Errorf("kubectl get -o jsonpath printed %q, want %q", out, want)
		}
		if out := e.kn(t, "get", "knob", "k1", "-o", "jsonpath={.metadata.uid}"); out != string(k1.GetUID()) {
			t.Errorf("kubectl get knob -o jsonpath={.metadata.uid} printed %q, want %q", out, k1.GetUID())
		}
	})
	t.Run("custom-columns", func(t *testing.T) {
		got := kubectlTable(e.kn(t, "get", "knobs", "-o", "custom-columns=N:.metadata.name,T:.metadata.labels.tier", "--sort-by", "{.spec.position}"))
		want := [][]string{{"N", "T"}, {"k1", "gold"}, {"k2", "silver"}, {"k3", "<none>"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("kubectl get -o custom-columns printed %q, want %q", got, want)
		}
	})
	// Each selector lists the names kubectl prints with -o name.
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"label-equals", []string{"-l", "tier=gold"}, []string{"k1"}},
		{"label-in", []string{"-l", "tier in (gold,silver)"}, []string{"k1", "k2"}},
		{"label-not-equals", []string{"-l", "tier!=gold"}, []string{"k2", "k3"}},
		{"label-absent", []string{"-l", "!tier"}, []string{"k3"}},
		{"label-exists", []string{"-l", "tier"}, []string{"k1", "k2"}},
		{"label-none", []string{"-l", "tier=bronze"}, nil},
		{"field-name", []string{"--field-selector", "metadata.name=k2"}, []string{"k2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"get", "knobs", "-o", "name"}, tc.args...)
			var want []string
			for _, n := range tc.want {
				want = append(want, knobsResource+"/"+n)
			}
			if got := strings.Fields(e.kn(t, args...)); !slices.Equal(got, want) {
				t.Errorf("kubectl %s printed %q, want %q", strings.Join(args, " "), got, want)
			}
		})
	}
	t.Run("chunked-short-name", func(t *testing.T) {
		// -v=6 logs each request: three pages of one knob each.
		stdout, stderr, err := e.exec(t, nil, "-n", e.ns, "get", "kn", "-o", "name", "--chunk-size", "1", "-v", "6")
		if err != nil {
			t.Fatalf("kubectl get kn --chunk-size 1: %v\n%s", err, stderr)
		}
		want := []string{knobsResource + "/k1", knobsResource + "/k2", knobsResource + "/k3"}
		if got := strings.Fields(stdout); !slices.Equal(got, want) {
			t.Errorf("kubectl get kn --chunk-size 1 printed %q, want %q", got, want)
		}
		if n := strings.Count(stderr, "knobs?continue="); n != 2 {
			t.Errorf("kubectl get --chunk-size 1 followed %d continue tokens, want 2:\n%s", n, stderr)
		}
	})
	t.Run("category", func(t *testing.T) {
		want := [][]string{
			{"NAMESPACE", "NAME", "POSITION", "PHASE"},
			{e.ns, "k1", "10", "Turning"},
			{e.ns, "k2", "20", ""},
			{e.ns, "k3", "30", ""},
		}
		if got := kubectlTable(e.run(t, "get", knobCategory, "-A")); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("kubectl get %s -A printed %q, want %q", knobCategory, got, want)
		}
	})
}

// kubectlTable splits kubectl's table output into cells, cutting each line
// where the header's columns start: after two spaces or more, so that
// names like LAST SEEN stay whole and cells may be empty.
func kubectlTable(out string) [][]string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var starts []int
	for i, r := range lines[0] {
		if r != ' ' && (i == 0 || i > 1 && lines[0][i-2:i] == "  ") {
			starts = append(starts, i)
		}
	}
	var rows [][]string
	for _, line := range lines {
		row := make([]string, len(starts))
		for j, start := range starts {
			end := len(line)
			if j+1 < len(starts) {
				end = min(starts[j+1], len(line))
			}
			if start < end {
				row[j] = strings.TrimSpace(line[start:end])
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// TestKubectlGetWatch starts kubectl get -w, changes knobs with client-go and
// reads the lines kubectl prints for each change.
func TestKubectlGetWatch(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	labels := func(run string) map[string]string { return map[string]string{"run": run} }

	t.Run("table", func(t *testing.T) {
		e.createKnob(t, "a1", labels("table"), map[string]any{"position": int64(10)})
		w := e.start(t, nil, "-n", e.ns, "get", "knobs", "-l", "run=table", "-w")
		steps := []struct {
			name   string
			change func()
			want   []string
		}{
			{"header", func() {}, []string{"NAME", "POSITION", "PHASE"}},
			{"listed", func() {}, []string{"a1", "10"}},
			{"created", func() { e.createKnob(t, "a2", labels("table"), map[string]any{"position": int64(20)}) }, []string{"a2", "20"}},
			{"patched", func() { e.kn(t, "patch", "knob", "a1", "--type", "merge", "-p", `{"spec":{"position":55}}`) }, []string{"a1", "55"}},
			{"status", func() { e.setKnobStatus(t, "a1", map[string]any{"phase": "Turning"}) }, []string{"a1", "55", "Turning"}},
			{"deleted", func() { e.kn(t, "delete", "knob", "a2") }, []string{"a2", "20"}},
		}
		for _, step := range steps {
			step.change()
			if got := strings.Fields(w.next(t)); !slices.Equal(got, step.want) {
				t.Fatalf("%s: kubectl get -w printed %q, want %q", step.name, got, step.want)
			}
		}
	})
	t.Run("watch-events", func(t *testing.T) {
		e.createKnob(t, "b1", labels("events"), map[string]any{"position": int64(1)})
		w := e.start(t, nil, "-n", e.ns, "get", "knobs", "-l", "run=events", "-w", "--output-watch-events")
		steps := []struct {
			name   string
			change func()
			want   []string
		}{
			{"header", func() {}, []string{"EVENT", "NAME", "POSITION", "PHASE"}},
			{"listed", func() {}, []string{"ADDED", "b1", "1"}},
			{"created", func() { e.createKnob(t, "b2", labels("events"), map[string]any{"position": int64(2)}) }, []string{"ADDED", "b2", "2"}},
			{"modified", func() {
				e.kn(t, "patch", "knob", "b2", "--type", "json", "-p", `[{"op":"replace","path":"/spec/position","value":3}]`)
			}, []string{"MODIFIED", "b2", "3"}},
			{"deleted", func() { e.kn(t, "delete", "knob", "b1") }, []string{"DELETED", "b1", "1"}},
			// An object relabelled out of the selector leaves the watch as
			// DELETED, as Kubernetes reports it.
			{"relabelled", func() { e.kn(t, "label", "knob", "b2", "run=other", "--overwrite") }, []string{"DELETED", "b2", "3"}},
			{"back", func() { e.kn(t, "label", "knob", "b2", "run=events", "--overwrite") }, []string{"ADDED", "b2", "3"}},
		}
		for _, step := range steps {
			step.change()
			if got := strings.Fields(w.next(t)); !slices.Equal(got, step.want) {
				t.Fatalf("%s: kubectl get -w --output-watch-events printed %q, want %q", step.name, got, step.want)
			}
		}
	})
}
