package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// Accept headers asking for a Table: the plain one and kubectl's, with its
// fallbacks.
const (
	tableAccept   = "application/json;as=Table;v=v1;g=meta.k8s.io"
	kubectlAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)

// TestTableOutput asks for widgets as a meta.k8s.io/v1 Table, as kubectl get
// does, and checks the CRD's printer columns and their values.
func TestTableOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 30*time.Second)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "table")
	wc := c.widgets("table")
	ready := mustCreate(t, ctx, wc, widget("table", "t1", nil, validSpec()))
	ready.Object["status"] = map[string]any{"phase": "Ready"}
	if _, err := wc.UpdateStatus(ctx, ready, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, wc, widget("table", "t2", nil, map[string]any{"size": int64(5), "color": "blue"}))

	rc := tableClient(t, s)
	getTable := func(t *testing.T, accept, name string) *metav1.Table {
		t.Helper()
		return fetchTable(t, ctx, rc, accept, "table", name)
	}
	// cells maps each row's name to its cells by column name.
	cells := func(t *testing.T, tbl *metav1.Table) map[string]map[string]any {
		t.Helper()
		if len(tbl.ColumnDefinitions) == 0 || tbl.ColumnDefinitions[0].Name != "Name" {
			t.Fatalf("first column %+v, want Name", tbl.ColumnDefinitions)
		}
		var order []string
		for _, col := range tbl.ColumnDefinitions {
			order = append(order, col.Name)
		}
		if want := []string{"Name", "Color", "Size", "Phase"}; len(order) < len(want) || !equalPrefix(order, want) {
			t.Errorf("columns %v, want %v first", order, want)
		}
		out := map[string]map[string]any{}
		for i, row := range tbl.Rows {
			if len(row.Cells) != len(tbl.ColumnDefinitions) {
				t.Fatalf("row %d has %d cells for %d columns", i, len(row.Cells), len(tbl.ColumnDefinitions))
			}
			byCol := map[string]any{}
			for j, col := range tbl.ColumnDefinitions {
				byCol[col.Name] = row.Cells[j]
			}
			var meta metav1.PartialObjectMetadata
			if err := json.Unmarshal(row.Object.Raw, &meta); err != nil || meta.Name == "" {
				t.Errorf("row %d object %s: want the object's metadata (%v)", i, row.Object.Raw, err)
			}
			name, _ := byCol["Name"].(string)
			if name != meta.Name {
				t.Errorf("row %d Name cell %v, object %q", i, byCol["Name"], meta.Name)
			}
			out[name] = byCol
		}
		return out
	}
	check := func(t *testing.T, got map[string]any, color string, size float64, phase string) {
		t.Helper()
		if got["Color"] != color || got["Size"] != size {
			t.Errorf("cells %v, want Color %s Size %v", got, color, size)
		}
		if p, _ := got["Phase"].(string); p != phase {
			t.Errorf("Phase cell %v, want %q", got["Phase"], phase)
		}
	}

	for _, accept := range []string{tableAccept, kubectlAccept} {
		tbl := getTable(t, accept, "")
		rows := cells(t, tbl)
		if len(rows) != 2 {
			t.Fatalf("Accept %s: rows for %v, want t1 and t2", accept, rows)
		}
		check(t, rows["t1"], "red", 3, "Ready")
		check(t, rows["t2"], "blue", 5, "")
		if tbl.ResourceVersion == "" {
			t.Errorf("Accept %s: Table has no metadata.resourceVersion", accept)
		}
	}
	one := cells(t, getTable(t, tableAccept, "t1"))
	if len(one) != 1 {
		t.Fatalf("Table of one widget has rows %v", one)
	}
	check(t, one["t1"], "red", 3, "Ready")
}

// equalPrefix reports whether got starts with want.
func equalPrefix(got, want []string) bool {
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// tableClient is a REST client for the test group's resources.
func tableClient(t *testing.T, s *server) *rest.RESTClient {
	t.Helper()
	cfg := s.restConfig()
	cfg.GroupVersion = &schema.GroupVersion{Group: testGroup, Version: testVersion}
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatalf("REST client: %v", err)
	}
	return rc
}

// fetchTable gets the widgets of ns (or the one called name) with the
// Accept header accept and decodes the meta.k8s.io/v1 Table it must get.
func fetchTable(t *testing.T, ctx context.Context, rc *rest.RESTClient, accept, ns, name string) *metav1.Table {
	t.Helper()
	req := rc.Get().Namespace(ns).Resource("widgets").SetHeader("Accept", accept)
	if name != "" {
		req = req.Name(name)
	}
	raw, err := req.DoRaw(ctx)
	if err != nil {
		t.Fatalf("get widgets as Table: %v (%s)", err, raw)
	}
	var tbl metav1.Table
	if err := json.Unmarshal(raw, &tbl); err != nil {
		t.Fatalf("decode Table: %v\n%s", err, raw)
	}
	if tbl.Kind != "Table" || tbl.APIVersion != "meta.k8s.io/v1" {
		t.Fatalf("got kind %q apiVersion %q, want a meta.k8s.io/v1 Table:\n%s", tbl.Kind, tbl.APIVersion, raw)
	}
	return &tbl
}
