package apiserver

import (
	"bytes"
	"fmt"
	"net/url"
	"reflect"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/util/jsonpath"

	"github.com/setpoint/setpoint/internal/registry"
)

// table is the wire form of a meta.k8s.io Table. Row objects are encoded
// in place rather than through runtime.RawExtension.
type table struct {
	Kind              string                         `json:"kind"`
	APIVersion        string                         `json:"apiVersion"`
	Metadata          any                            `json:"metadata"`
	ColumnDefinitions []metav1.TableColumnDefinition `json:"columnDefinitions"`
	Rows              []tableRow                     `json:"rows"`
}

// tableRow is one row of a table.
type tableRow struct {
	Cells  []any `json:"cells"`
	Object any   `json:"object,omitempty"`
}

// column is a column definition and how to compute its cell.
type column struct {
	def  metav1.TableColumnDefinition
	cell func(obj map[string]any) any
}

// tableBuilder turns objects of one resource into table rows.
type tableBuilder struct {
	columns     []column
	include     metav1.IncludeObjectPolicy
	metaVersion string
	now         time.Time
}

// Column descriptions, written for Setpoint.
const (
	nameDescription    = "Name of the object, unique within its namespace (or the cluster for cluster-scoped objects)."
	ageDescription     = "Time since the object was created (metadata.creationTimestamp)."
	createdDescription = "When the object was created (metadata.creationTimestamp)."
)

// newTableBuilder builds the columns of res: Name first, then the CRD's
// additionalPrinterColumns, or (when it defines none) an Age column, as
// Kubernetes does. Namespaces show Name, Status and Age; CRDs Name and
// Created At. includeObject selects the row objects (default Metadata).
func newTableBuilder(res *registry.Resource, metaVersion string, q url.Values) (*tableBuilder, error) {
	b := &tableBuilder{include: metav1.IncludeObjectPolicy(q.Get("includeObject")), metaVersion: metaVersion, now: time.Now()}
	switch b.include {
	case "":
		b.include = metav1.IncludeMetadata
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("includeObject: Unsupported value: %q: supported values: \"None\", \"Metadata\", \"Object\"", b.include))
	}
	if cols, ok := b.builtinColumns(res); ok {
		b.columns = cols
		return b, nil
	}
	b.columns = append(b.columns, column{
		def:  metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: nameDescription},
		cell: func(obj map[string]any) any { return metaField(obj, "name") },
	})
	switch {
	case res.Group == "" && res.Resource == "namespaces":
		b.columns = append(b.columns, column{
			def: metav1.TableColumnDefinition{Name: "Status", Type: "string", Description: "The status of the namespace."},
			cell: func(obj map[string]any) any {
				status, _ := obj["status"].(map[string]any)
				phase, _ := status["phase"].(string)
				return phase
			},
		}, column{
			def:  metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: ageDescription},
			cell: func(obj map[string]any) any { return b.age(metaField(obj, "creationTimestamp")) },
		})
	case res.Group == "apiextensions.k8s.io" && res.Resource == "customresourcedefinitions":
		b.columns = append(b.columns, column{
			def:  metav1.TableColumnDefinition{Name: "Created At", Type: "date", Description: createdDescription},
			cell: func(obj map[string]any) any { return metaField(obj, "creationTimestamp") },
		})
	default:
		cols := res.PrinterColumns
		if len(cols) == 0 {
			cols = []apiextensionsv1.CustomResourceColumnDefinition{{Name: "Age", Type: "date", Description: ageDescription, JSONPath: ".metadata.creationTimestamp"}}
		}
		for _, c := range cols {
			b.columns = append(b.columns, b.printerColumn(c))
		}
	}
	return b, nil
}

// printerColumn evaluates a CRD printer column's JSONPath. A path that
// does not parse gives empty cells rather than failing the request.
func (b *tableBuilder) printerColumn(c apiextensionsv1.CustomResourceColumnDefinition) column {
	def := metav1.TableColumnDefinition{Name: c.Name, Type: c.Type, Format: c.Format, Description: c.Description, Priority: c.Priority}
	jp := jsonpath.New(c.Name).AllowMissingKeys(true)
	if err := jp.Parse("{" + c.JSONPath + "}"); err != nil {
		return column{def: def, cell: func(map[string]any) any { return nil }}
	}
	var buf bytes.Buffer
	return column{def: def, cell: func(obj map[string]any) any {
		results, err := jp.FindResults(obj)
		if err != nil || len(results) == 0 || len(results[0]) == 0 {
			return nil
		}
		value := results[0][0].Interface()
		if c.Type != "string" {
			return b.typedCell(c.Type, value)
		}
		buf.Reset()
		if err := jp.PrintResults(&buf, []reflect.Value{reflect.ValueOf(value)}); err != nil {
			return nil
		}
		return buf.String()
	}}
}

// typedCell converts a JSON value to the cell of a column type; values of
// the wrong type give an empty cell. Dates show as ages.
func (b *tableBuilder) typedCell(typ string, value any) any {
	switch typ {
	case "integer":
		switch v := value.(type) {
		case int64:
			return v
		case float64:
			return int64(v)
		}
	case "number":
		switch v := value.(type) {
		case int64:
			return float64(v)
		case float64:
			return v
		}
	case "boolean":
		if v, ok := value.(bool); ok {
			return v
		}
	case "date":
		if v, ok := value.(string); ok {
			return b.age(v)
		}
	}
	return nil
}

// age renders an RFC 3339 timestamp as a short age ("5m", "3d").
func (b *tableBuilder) age(ts string) string {
	if ts == "" {
		return "<unknown>"
	}
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "<invalid>"
	}
	return duration.HumanDuration(b.now.Sub(t))
}

// table returns an empty table with the column definitions (when withColumns)
// and the list metadata md.
func (b *tableBuilder) table(md any, withColumns bool) *table {
	t := &table{Kind: "Table", APIVersion: metaGroup + "/" + b.metaVersion, Metadata: listMeta(md), Rows: []tableRow{}}
	if withColumns {
		t.ColumnDefinitions = make([]metav1.TableColumnDefinition, len(b.columns))
		for i, c := range b.columns {
			t.ColumnDefinitions[i] = c.def
		}
	}
	return t
}

// objectTable is the table of one object; its resourceVersion is the
// object's, as Kubernetes sets it.
func (b *tableBuilder) objectTable(obj map[string]any, withColumns bool) *table {
	t := b.table(map[string]any{"resourceVersion": metaField(obj, "resourceVersion")}, withColumns)
	t.Rows = append(t.Rows, b.row(obj))
	return t
}

// row computes the cells of obj and attaches the object as includeObject
// asks.
func (b *tableBuilder) row(obj map[string]any) tableRow {
	row := tableRow{Cells: make([]any, len(b.columns))}
	for i, c := range b.columns {
		row.Cells[i] = c.cell(obj)
	}
	switch b.include {
	case metav1.IncludeMetadata:
		row.Object = partialObject(b.metaVersion, obj)
	case metav1.IncludeObject:
		row.Object = obj
	}
	return row
}

// metaField returns a string field of obj's metadata.
func metaField(obj map[string]any, key string) string {
	md, _ := obj["metadata"].(map[string]any)
	v, _ := md[key].(string)
	return v
}
