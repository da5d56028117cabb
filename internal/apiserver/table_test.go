package apiserver_test

import (
	"net/http"
	"testing"
)

// tableAccept is what kubectl get sends.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

// columnNames returns the column names of a Table and their priorities.
func columnNames(t *testing.T, table map[string]any) ([]string, []float64) {
	t.Helper()
	var names []string
	var prio []float64
	for _, c := range table["columnDefinitions"].([]any) {
		col := c.(map[string]any)
		names = append(names, col["name"].(string))
		p, _ := col["priority"].(float64)
		prio = append(prio, p)
	}
	return names, prio
}

func rowCells(t *testing.T, table map[string]any, i int) []any {
	t.Helper()
	rows, _ := table["rows"].([]any)
	if len(rows) <= i {
		t.Fatalf("table has %d rows: %v", len(rows), table)
	}
	return rows[i].(map[string]any)["cells"].([]any)
}

func rowObject(t *testing.T, table map[string]any, i int) map[string]any {
	t.Helper()
	rows, _ := table["rows"].([]any)
	obj, _ := rows[i].(map[string]any)["object"].(map[string]any)
	return obj
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTablePrinterColumns(t *testing.T) {
	e := newEnv(t)
	e.withWidgets(t)
	e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w1", 3))
	tbl := e.expect(t, http.StatusOK, "GET", widgetsPath, "", "Accept", tableAccept).json(t)
	if tbl["kind"] != "Table" || tbl["apiVersion"] != "meta.k8s.io/v1" || rvOf(tbl) == "" {
		t.Fatalf("table %v", tbl)
	}
	names, prio := columnNames(t, tbl)
	if !equal(names, []string{"Name", "Size", "Color", "Age"}) || !equal(prio, []float64{0, 0, 1, 0}) {
		t.Fatalf("columns %v priorities %v", names, prio)
	}
	cells := rowCells(t, tbl, 0)
	if cells[0] != "w1" || cells[1] != float64(3) || cells[2] != "red" || cells[3] == "" {
		t.Fatalf("cells %v", cells)
	}
	obj := rowObject(t, tbl, 0)
	if obj["kind"] != "PartialObjectMetadata" || metaOf(obj)["name"] != "w1" || obj["spec"] != nil {
		t.Fatalf("row object %v", obj)
	}

	t.Run("Get", func(t *testing.T) {
		one := e.expect(t, http.StatusOK, "GET", widgetsPath+"/w1", "", "Accept", tableAccept).json(t)
		if cells := rowCells(t, one, 0); cells[0] != "w1" {
			t.Fatalf("get table %v", one)
		}
	})
	t.Run("IncludeObject", func(t *testing.T) {
		full := e.expect(t, http.StatusOK, "GET", widgetsPath+"?includeObject=Object", "", "Accept", tableAccept).json(t)
		if obj := rowObject(t, full, 0); obj["kind"] != "Widget" || obj["spec"] == nil {
			t.Fatalf("includeObject=Object row %v", obj)
		}
		none := e.expect(t, http.StatusOK, "GET", widgetsPath+"?includeObject=None", "", "Accept", tableAccept).json(t)
		if obj := rowObject(t, none, 0); obj != nil {
			t.Fatalf("includeObject=None row %v", obj)
		}
		e.expectStatus(t, http.StatusBadRequest, "BadRequest", "GET", widgetsPath+"?includeObject=All", "", "Accept", tableAccept)
	})
	t.Run("V1beta1", func(t *testing.T) {
		b := e.expect(t, http.StatusOK, "GET", widgetsPath, "", "Accept", "application/json;as=Table;v=v1beta1;g=meta.k8s.io").json(t)
		if b["apiVersion"] != "meta.k8s.io/v1beta1" {
			t.Fatalf("v1beta1 table %v", b)
		}
	})
	t.Run("PartialObjectMetadataList", func(t *testing.T) {
		l := e.expect(t, http.StatusOK, "GET", widgetsPath, "", "Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").json(t)
		items := l["items"].([]any)
		if l["kind"] != "PartialObjectMetadataList" || rvOf(l) == "" || len(items) != 1 || items[0].(map[string]any)["spec"] != nil {
			t.Fatalf("partial list %v", l)
		}
		p := e.expect(t, http.StatusOK, "GET", widgetsPath+"/w1", "", "Accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1").json(t)
		if p["kind"] != "PartialObjectMetadata" {
			t.Fatalf("partial object %v", p)
		}
		// A list cannot be answered as a single object's metadata.
		e.expectStatus(t, http.StatusNotAcceptable, "NotAcceptable", "GET", widgetsPath, "", "Accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
	})
	// Last: it adds a widget.
	t.Run("Paginated", func(t *testing.T) {
		e.expect(t, http.StatusCreated, "POST", widgetsPath, widget("w2", 4))
		page := e.expect(t, http.StatusOK, "GET", widgetsPath+"?limit=1", "", "Accept", tableAccept).json(t)
		if cont, _ := metaOf(page)["continue"].(string); cont == "" || len(page["rows"].([]any)) != 1 {
			t.Fatalf("kubectl's chunked get needs the continue token in the table: %v", page)
		}
	})
}

func TestTableBuiltinColumns(t *testing.T) {
	e := newEnv(t)
	gadgets := `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"gadgets.example.com"},
	  "spec":{"group":"example.com","scope":"Cluster","names":{"plural":"gadgets","kind":"Gadget"},
	  "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}`
	e.expect(t, http.StatusCreated, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", gadgets)
	e.expect(t, http.StatusCreated, "POST", "/apis/example.com/v1/gadgets", `{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"g1"}}`)
	for _, tc := range []struct {
		name, path string
		columns    []string
		first      []any
	}{
		{"Namespaces", "/api/v1/namespaces/default", []string{"Name", "Status", "Age"}, []any{"default", "Active"}},
		{"CRDs", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com", []string{"Name", "Created At"}, []any{"gadgets.example.com"}},
		{"NoPrinterColumns", "/apis/example.com/v1/gadgets/g1", []string{"Name", "Age"}, []any{"g1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := e.expect(t, http.StatusOK, "GET", tc.path, "", "Accept", tableAccept).json(t)
			if names, _ := columnNames(t, tbl); !equal(names, tc.columns) {
				t.Fatalf("columns %v, want %v", names, tc.columns)
			}
			cells := rowCells(t, tbl, 0)
			if !equal(cells[:len(tc.first)], tc.first) {
				t.Fatalf("cells %v, want prefix %v", cells, tc.first)
			}
		})
	}
}

func TestTableCoreColumns(t *testing.T) {
	e := newEnv(t)
	for path, body := range map[string]string{
		"/api/v1/namespaces/default/configmaps":                  `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1"},"data":{"a":"1","b":"2"},"binaryData":{"c":"AA=="}}`,
		"/api/v1/namespaces/default/secrets":                     `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s1"},"type":"Opaque","data":{"k":"dg=="}}`,
		"/apis/coordination.k8s.io/v1/namespaces/default/leases": `{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l1"},"spec":{"holderIdentity":"me"}}`,
		"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations": `{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingWebhookConfiguration","metadata":{"name":"v1"},
		  "webhooks":[{"name":"a.example.com","clientConfig":{"url":"https://a.example.com/"},"sideEffects":"None","admissionReviewVersions":["v1"]},
		  {"name":"b.example.com","clientConfig":{"url":"https://b.example.com/"},"sideEffects":"None","admissionReviewVersions":["v1"]}]}`,
		"/api/v1/namespaces/default/events": `{"apiVersion":"v1","kind":"Event","metadata":{"name":"e1"},"type":"Warning","reason":"Broken",
		  "involvedObject":{"kind":"Widget","name":"w1","namespace":"default","fieldPath":"spec.size"},"message":" too big\n",
		  "source":{"component":"sizer","host":"h1"},"count":3,"firstTimestamp":"2020-01-01T00:00:00Z","lastTimestamp":"2020-01-02T00:00:00Z"}`,
	} {
		e.expect(t, http.StatusCreated, "POST", path, body)
	}
	eventColumns := []string{"Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"}
	eventCells := []any{"Warning", "Broken", "widget/w1", "spec.size", "sizer, h1", "too big"}
	for _, tc := range []struct {
		name, path string
		columns    []string
		priorities []float64
		// cells are compared without the ages (cells whose column
		// name ends in Age or Seen).
		cells []any
	}{
		{"ConfigMaps", "/api/v1/namespaces/default/configmaps/c1", []string{"Name", "Data", "Age"}, []float64{0, 0, 0}, []any{"c1", 3.0}},
		{"Secrets", "/api/v1/namespaces/default/secrets/s1", []string{"Name", "Type", "Data", "Age"}, []float64{0, 0, 0, 0}, []any{"s1", "Opaque", 1.0}},
		{"Leases", "/apis/coordination.k8s.io/v1/namespaces/default/leases/l1", []string{"Name", "Holder", "Age"}, []float64{0, 0, 0}, []any{"l1", "me"}},
		{"WebhookConfigurations", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/v1", []string{"Name", "Webhooks", "Age"}, []float64{0, 0, 0}, []any{"v1", 2.0}},
		{"Events", "/api/v1/namespaces/default/events/e1", eventColumns, []float64{0, 0, 0, 0, 1, 1, 0, 1, 1, 1}, append(eventCells, 3.0, "e1")},
		{"EventsV1", "/apis/events.k8s.io/v1/namespaces/default/events/e1", eventColumns, []float64{0, 0, 0, 0, 1, 1, 0, 1, 1, 1}, append(eventCells, 3.0, "e1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := e.expect(t, http.StatusOK, "GET", tc.path, "", "Accept", tableAccept).json(t)
			names, prio := columnNames(t, tbl)
			if !equal(names, tc.columns) || !equal(prio, tc.priorities) {
				t.Fatalf("columns %v priorities %v, want %v %v", names, prio, tc.columns, tc.priorities)
			}
			var cells []any
			for i, c := range rowCells(t, tbl, 0) {
				if n := names[i]; n != "Age" && n != "Last Seen" && n != "First Seen" {
					cells = append(cells, c)
				}
			}
			if !equal(cells, tc.cells) {
				t.Errorf("cells %v, want %v", cells, tc.cells)
			}
		})
	}
}
