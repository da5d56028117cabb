package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"
)

// objectPrinter writes whole objects in one output format.
type objectPrinter interface {
	// printObject writes obj, whose REST mapping is m, to w.
	printObject(w io.Writer, m *meta.RESTMapping, obj *unstructured.Unstructured) error
}

// outputFormats lists the -o values of objectPrinters; "" is the table.
const outputFormats = "json, yaml or name"

// newObjectPrinter returns the printer for -o format.
func newObjectPrinter(format string) (objectPrinter, error) {
	switch format {
	case "json":
		return jsonPrinter{}, nil
	case "yaml":
		return &yamlPrinter{}, nil
	case "name":
		return namePrinter{}, nil
	default:
		return nil, newUsageError("setpoint get widgets -o yaml", "unknown output format %q: want %s", format, outputFormats)
	}
}

type jsonPrinter struct{}

func (jsonPrinter) printObject(w io.Writer, _ *meta.RESTMapping, obj *unstructured.Unstructured) error {
	data, err := json.MarshalIndent(obj.Object, "", "    ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

type yamlPrinter struct {
	printed bool
}

// printObject writes obj as one YAML document; every document after the
// first starts with "---", so a stream of them (a watch) stays valid
// multi-document YAML.
func (p *yamlPrinter) printObject(w io.Writer, _ *meta.RESTMapping, obj *unstructured.Unstructured) error {
	data, err := yaml.Marshal(obj.Object)
	if err != nil {
		return fmt.Errorf("encode YAML: %w", err)
	}
	sep := ""
	if p.printed {
		sep = "---\n"
	}
	p.printed = true
	_, err = fmt.Fprintf(w, "%s%s", sep, data)
	return err
}

type namePrinter struct{}

// printObject writes kind.group/name for obj, or for each item of a list.
func (namePrinter) printObject(w io.Writer, m *meta.RESTMapping, obj *unstructured.Unstructured) error {
	prefix := kindGroup(m.GroupVersionKind.GroupKind())
	if !obj.IsList() {
		_, err := fmt.Fprintf(w, "%s/%s\n", prefix, obj.GetName())
		return err
	}
	return obj.EachListItem(func(item runtime.Object) error {
		name := ""
		if o, ok := item.(*unstructured.Unstructured); ok {
			name = o.GetName()
		}
		_, err := fmt.Fprintf(w, "%s/%s\n", prefix, name)
		return err
	})
}

// tablePrinter writes the rows of server-side Tables in aligned columns,
// as kubectl does: NAMESPACE (with withNamespace), then the table's
// columns of priority 0, headers in capitals.
type tablePrinter struct {
	w             *tabwriter.Writer
	withNamespace bool
	columns       []metav1.TableColumnDefinition
	printedHeader bool
	now           func() time.Time
}

func newTablePrinter(w io.Writer, withNamespace bool) *tablePrinter {
	return &tablePrinter{
		w:             tabwriter.NewWriter(w, 0, 8, 3, ' ', 0),
		withNamespace: withNamespace,
		now:           time.Now,
	}
}

// printTable writes the rows of t, with the header before the first row
// printed. Tables without column definitions (later watch events) reuse
// the last ones seen.
func (p *tablePrinter) printTable(t *metav1.Table) error {
	if len(t.ColumnDefinitions) > 0 {
		p.columns = t.ColumnDefinitions
	}
	if len(t.Rows) == 0 {
		return nil
	}
	if !p.printedHeader {
		var cells []string
		if p.withNamespace {
			cells = append(cells, "NAMESPACE")
		}
		for _, c := range p.columns {
			if c.Priority == 0 {
				cells = append(cells, strings.ToUpper(c.Name))
			}
		}
		fmt.Fprintln(p.w, strings.Join(cells, "\t"))
		p.printedHeader = true
	}
	for _, row := range t.Rows {
		var cells []string
		if p.withNamespace {
			cells = append(cells, rowNamespace(row))
		}
		for i, c := range p.columns {
			if c.Priority != 0 {
				continue
			}
			var v any
			if i < len(row.Cells) {
				v = row.Cells[i]
			}
			cells = append(cells, p.formatCell(c, v))
		}
		fmt.Fprintln(p.w, strings.Join(cells, "\t"))
	}
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// formatCell renders one cell: "<none>" for a missing value, the age of a
// date given as an RFC 3339 timestamp, the value otherwise.
func (p *tablePrinter) formatCell(c metav1.TableColumnDefinition, v any) string {
	switch v := v.(type) {
	case nil:
		return "<none>"
	case string:
		if c.Type == "date" || c.Format == "date" {
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				return duration.HumanDuration(p.now().Sub(t))
			}
		}
		return v
	case map[string]any, []any:
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(data)
	default:
		return fmt.Sprint(v)
	}
}

// rowNamespace is the namespace of the object a row describes.
func rowNamespace(row metav1.TableRow) string {
	if len(row.Object.Raw) == 0 {
		return ""
	}
	var obj struct {
		Metadata struct {
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(row.Object.Raw, &obj); err != nil {
		return ""
	}
	return obj.Metadata.Namespace
}

// tableFromObjects builds a NAME/AGE table client-side, for servers that
// answer a Table request with plain objects.
func tableFromObjects(objs []unstructured.Unstructured) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name"},
		{Name: "Age", Type: "date"},
	}}
	for i := range objs {
		raw, err := json.Marshal(map[string]any{"metadata": map[string]any{"namespace": objs[i].GetNamespace()}})
		if err != nil {
			return nil, fmt.Errorf("encode row: %w", err)
		}
		var created any
		if ts := objs[i].GetCreationTimestamp(); !ts.IsZero() {
			created = ts.UTC().Format(time.RFC3339)
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells:  []any{objs[i].GetName(), created},
			Object: runtime.RawExtension{Raw: raw},
		})
	}
	return t, nil
}
