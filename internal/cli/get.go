package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

const getExample = `  setpoint get customresourcedefinitions
  setpoint get widgets
  setpoint get widgets.example.com my-widget -o yaml
  setpoint get widgets -A -l app=web
  setpoint get widgets -w`

// getOptions are the flags of "setpoint get".
type getOptions struct {
	client        clientFlags
	output        string
	selector      string
	fieldSelector string
	allNamespaces bool
	watch         bool
	watchOnly     bool
}

func newGetCommand(env Env) *cobra.Command {
	o := &getOptions{}
	cmd := &cobra.Command{
		Use:     "get RESOURCE [NAME...]",
		Short:   "Show objects of one resource type as a table, YAML, JSON or names",
		Example: getExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return newUsageError("setpoint get widgets", "you must name a resource type")
			}
			return o.run(cmd.Context(), env, args[0], args[1:])
		},
	}
	o.client.addFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVarP(&o.output, "output", "o", "", "output format: "+outputFormats+" (default: a table)")
	fs.StringVarP(&o.selector, "selector", "l", "", "label selector, e.g. app=web,tier!=db")
	fs.StringVar(&o.fieldSelector, "field-selector", "", "field selector, e.g. metadata.name=x")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list objects in all namespaces")
	fs.BoolVarP(&o.watch, "watch", "w", false, "after listing, print changes as they happen")
	fs.BoolVar(&o.watchOnly, "watch-only", false, "print changes as they happen, without the initial list")
	return cmd
}

func (o *getOptions) run(ctx context.Context, env Env, resource string, names []string) error {
	var printer objectPrinter
	if o.output != "" {
		p, err := newObjectPrinter(o.output)
		if err != nil {
			return err
		}
		printer = p
	}
	watching := o.watch || o.watchOnly
	if watching && len(names) > 1 {
		return newUsageError("setpoint get widgets my-widget -w", "watch takes at most one name")
	}
	c, err := o.client.newClients(env.Getenv)
	if err != nil {
		return err
	}
	m, err := c.resolveResource(resource)
	if err != nil {
		return err
	}
	ns := c.namespace
	if o.allNamespaces {
		ns = ""
	}
	path := resourcePath(m, ns)
	query := url.Values{}
	if o.selector != "" {
		query.Set("labelSelector", o.selector)
	}
	if o.fieldSelector != "" {
		query.Set("fieldSelector", o.fieldSelector)
	}
	accept := acceptTable
	if printer != nil {
		accept = acceptJSON
	}
	out := &getOutput{w: env.Out, mapping: m, printer: printer, table: newTablePrinter(env.Out, o.allNamespaces && isNamespaced(m))}

	if watching {
		if len(names) == 1 {
			query.Set("fieldSelector", joinSelectors(o.fieldSelector, "metadata.name="+names[0]))
		}
		list, err := c.getRaw(ctx, path, query, accept)
		if err != nil {
			return err
		}
		if !o.watchOnly {
			if err := out.print(list); err != nil {
				return err
			}
		}
		return c.watchRaw(ctx, path, query, list.GetResourceVersion(), accept, func(_ string, obj *unstructured.Unstructured) error {
			return out.print(obj)
		})
	}

	if len(names) == 0 {
		list, err := c.getRaw(ctx, path, query, accept)
		if err != nil {
			return err
		}
		if out.rows(list) == 0 && printer == nil {
			fmt.Fprintln(env.ErrOut, noResourcesMessage(m, ns))
			return nil
		}
		return out.print(list)
	}
	var objs []*unstructured.Unstructured
	var errs []error
	for _, name := range names {
		obj, err := c.getRaw(ctx, path+"/"+name, query, accept)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, obj)
	}
	if len(objs) == 1 || printer == nil {
		for _, obj := range objs {
			if err := out.print(obj); err != nil {
				return err
			}
		}
	} else if len(objs) > 1 {
		if err := out.print(listOf(objs)); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// getOutput prints what the server answered to get: Tables row by row,
// objects and lists through the -o printer.
type getOutput struct {
	w       io.Writer
	mapping *meta.RESTMapping
	printer objectPrinter
	table   *tablePrinter
}

// print writes obj, which is a Table, a list or one object.
func (g *getOutput) print(obj *unstructured.Unstructured) error {
	if g.printer != nil {
		if obj.IsList() {
			return g.printer.printObject(g.w, g.mapping, asGenericList(obj))
		}
		return g.printer.printObject(g.w, g.mapping, obj)
	}
	if obj.GetKind() == "Table" {
		var t metav1.Table
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &t); err != nil {
			return fmt.Errorf("decode Table: %w", err)
		}
		return g.table.printTable(&t)
	}
	var objs []unstructured.Unstructured
	if obj.IsList() {
		list, err := obj.ToList()
		if err != nil {
			return fmt.Errorf("decode list: %w", err)
		}
		objs = list.Items
	} else {
		objs = []unstructured.Unstructured{*obj}
	}
	t, err := tableFromObjects(objs)
	if err != nil {
		return err
	}
	return g.table.printTable(t)
}

// rows counts the objects in a Table or list.
func (g *getOutput) rows(obj *unstructured.Unstructured) int {
	key := "items"
	if obj.GetKind() == "Table" {
		key = "rows"
	}
	items, _, _ := unstructured.NestedFieldNoCopy(obj.Object, key)
	s, _ := items.([]any)
	return len(s)
}

// asGenericList turns a typed list (WidgetList) into a v1 List, the way
// kubectl prints lists.
func asGenericList(list *unstructured.Unstructured) *unstructured.Unstructured {
	items, _, _ := unstructured.NestedFieldNoCopy(list.Object, "items")
	if items == nil {
		items = []any{}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"metadata":   map[string]any{"resourceVersion": list.GetResourceVersion()},
		"items":      items,
	}}
}

// listOf wraps objects in a v1 List.
func listOf(objs []*unstructured.Unstructured) *unstructured.Unstructured {
	items := make([]any, 0, len(objs))
	for _, o := range objs {
		items = append(items, o.Object)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"metadata":   map[string]any{"resourceVersion": ""},
		"items":      items,
	}}
}

func isNamespaced(m *meta.RESTMapping) bool {
	return m.Scope.Name() == meta.RESTScopeNameNamespace
}

// noResourcesMessage is what kubectl says for an empty list.
func noResourcesMessage(m *meta.RESTMapping, ns string) string {
	if ns != "" && isNamespaced(m) {
		return fmt.Sprintf("No resources found in %s namespace.", ns)
	}
	return "No resources found"
}

// joinSelectors joins two selectors of one kind with a comma.
func joinSelectors(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}
