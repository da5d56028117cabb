package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestTablePrinter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	table := &metav1.Table{
		ColumnDefinitions: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name"},
			{Name: "Size", Type: "integer"},
			{Name: "Detail", Type: "string", Priority: 1},
			{Name: "Age", Type: "date"},
		},
		Rows: []metav1.TableRow{
			{Cells: []any{"a", int64(3), "hidden", now.Add(-90 * time.Second).Format(time.RFC3339)}, Object: runtime.RawExtension{Raw: []byte(`{"metadata":{"namespace":"ns1"}}`)}},
			{Cells: []any{"long-name", nil, "hidden", now.Add(-3 * time.Hour).Format(time.RFC3339)}, Object: runtime.RawExtension{Raw: []byte(`{"metadata":{"namespace":"ns2"}}`)}},
		},
	}
	var out strings.Builder
	p := newTablePrinter(&out, true)
	p.now = func() time.Time { return now }
	if err := p.printTable(table); err != nil {
		t.Fatal(err)
	}
	// A watch event's table has no column definitions and no header.
	if err := p.printTable(&metav1.Table{Rows: table.Rows[:1]}); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"NAMESPACE   NAME        SIZE     AGE\n" +
		"ns1         a           3        90s\n" +
		"ns2         long-name   <none>   3h\n" +
		"ns1   a   3   90s\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestObjectPrinters(t *testing.T) {
	m := &meta.RESTMapping{GroupVersionKind: schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w"}}}
	tests := []struct{ format, want string }{
		{"name", "widget.example.com/w\nwidget.example.com/w\n"},
		{"yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"},
		{"json", "{\n    \"apiVersion\": \"example.com/v1\",\n    \"kind\": \"Widget\",\n    \"metadata\": {\n        \"name\": \"w\"\n    }\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			p, err := newObjectPrinter(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			for range 2 {
				if err := p.printObject(&out, m, obj); err != nil {
					t.Fatal(err)
				}
			}
			if tt.format == "json" {
				tt.want += tt.want
			}
			if out.String() != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tt.want)
			}
		})
	}
	if _, err := newObjectPrinter("xml"); err == nil || !strings.Contains(err.Error(), "example:") {
		t.Errorf("unknown format: err = %v, want a usage error with an example", err)
	}
}

func TestFormatError(t *testing.T) {
	notFound := apierrors.NewNotFound(schema.GroupResource{Group: "example.com", Resource: "widgets"}, "x")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"server", fmt.Errorf("get: %w", notFound), `Error from server (NotFound): widgets.example.com "x" not found`},
		{"unauthorized", apierrors.NewUnauthorized("no token"), "error: You must be logged in to the server (no token)"},
		{"client", errors.New("boom"), "error: boom"},
		{"joined", errors.Join(errors.New("a"), notFound), "error: a\n" + `Error from server (NotFound): widgets.example.com "x" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatError(tt.err); got != tt.want {
				t.Errorf("FormatError = %q, want %q", got, tt.want)
			}
		})
	}
}
