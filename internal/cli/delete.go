package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const deleteExample = `  setpoint delete widgets my-widget other-widget
  setpoint delete -f widgets/
  setpoint delete widgets -l app=web`

// deleteOptions are the flags of "setpoint delete".
type deleteOptions struct {
	client         clientFlags
	filenames      []string
	selector       string
	all            bool
	ignoreNotFound bool
}

func newDeleteCommand(env Env) *cobra.Command {
	o := &deleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete (RESOURCE NAME... | RESOURCE -l SELECTOR | RESOURCE --all | -f PATH)",
		Short: "Delete objects by name, label selector or manifest",
		Long: `Delete objects. Objects with finalizers are marked for deletion and stay until
their finalizers are removed; delete does not wait for that.`,
		Example: deleteExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args); err != nil {
				return err
			}
			return o.run(cmd.Context(), env, args)
		},
	}
	o.client.addFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringArrayVarP(&o.filenames, "filename", "f", nil, "delete the objects in this manifest file, directory or - for stdin; repeatable")
	fs.StringVarP(&o.selector, "selector", "l", "", "delete the objects of RESOURCE matching this label selector")
	fs.BoolVar(&o.all, "all", false, "delete every object of RESOURCE in the namespace")
	fs.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "treat objects that do not exist as deleted")
	return cmd
}

// validate checks that exactly one way of choosing objects was used.
func (o *deleteOptions) validate(args []string) error {
	switch {
	case len(o.filenames) > 0 && len(args) > 0:
		return newUsageError("setpoint delete -f widgets/", "give either -f or RESOURCE, not both")
	case len(o.filenames) > 0:
		return nil
	case len(args) == 0:
		return newUsageError("setpoint delete widgets my-widget", "you must name a resource type and objects, or give -f")
	case len(args) == 1 && o.selector == "" && !o.all:
		return newUsageError("setpoint delete widgets my-widget", "you must name objects, or give -l SELECTOR or --all")
	case len(args) > 1 && (o.selector != "" || o.all):
		return newUsageError("setpoint delete widgets -l app=web", "give either names or -l/--all, not both")
	}
	return nil
}

// deleteTarget is one object to delete.
type deleteTarget struct {
	mapping   *meta.RESTMapping
	namespace string
	name      string
}

func (o *deleteOptions) run(ctx context.Context, env Env, args []string) error {
	var objs []*unstructured.Unstructured
	if len(o.filenames) > 0 {
		var err error
		if objs, err = readManifestPaths(o.filenames, env.In); err != nil {
			return err
		}
		if err := checkNames(objs); err != nil {
			return err
		}
	}
	c, err := o.client.newClients(env.Getenv)
	if err != nil {
		return err
	}
	var targets []deleteTarget
	if len(o.filenames) > 0 {
		targets, err = c.manifestTargets(ctx, objs)
	} else {
		targets, err = o.argTargets(ctx, c, args)
	}
	if err != nil {
		return err
	}
	if len(targets) == 0 && (o.selector != "" || o.all) {
		fmt.Fprintln(env.ErrOut, "No resources found")
		return nil
	}
	return o.deleteAll(ctx, env.Out, c, targets)
}

// manifestTargets are the objects named by manifests.
func (c *clients) manifestTargets(ctx context.Context, objs []*unstructured.Unstructured) ([]deleteTarget, error) {
	targets := make([]deleteTarget, 0, len(objs))
	for _, obj := range objs {
		m, err := c.mappingForObject(ctx, obj)
		if err != nil {
			return nil, err
		}
		if err := c.setNamespace(m, obj); err != nil {
			return nil, err
		}
		targets = append(targets, deleteTarget{mapping: m, namespace: obj.GetNamespace(), name: obj.GetName()})
	}
	return targets, nil
}

// argTargets are the objects named by RESOURCE NAME... or chosen by
// RESOURCE -l SELECTOR or --all.
func (o *deleteOptions) argTargets(ctx context.Context, c *clients, args []string) ([]deleteTarget, error) {
	m, err := c.resolveResource(args[0])
	if err != nil {
		return nil, err
	}
	var targets []deleteTarget
	for _, name := range args[1:] {
		targets = append(targets, deleteTarget{mapping: m, namespace: c.namespace, name: name})
	}
	if o.selector != "" || o.all {
		list, err := c.resourceClient(m, c.namespace).List(ctx, metav1.ListOptions{LabelSelector: o.selector})
		if err != nil {
			return nil, err
		}
		for _, item := range list.Items {
			targets = append(targets, deleteTarget{mapping: m, namespace: item.GetNamespace(), name: item.GetName()})
		}
	}
	return targets, nil
}

// deleteAll deletes every target, printing each deletion, and returns the
// errors of those that failed.
func (o *deleteOptions) deleteAll(ctx context.Context, out io.Writer, c *clients, targets []deleteTarget) error {
	if len(targets) == 0 {
		return errors.New("no objects to delete")
	}
	var errs []error
	policy := metav1.DeletePropagationBackground
	for _, t := range targets {
		err := c.resourceClient(t.mapping, t.namespace).Delete(ctx, t.name, metav1.DeleteOptions{PropagationPolicy: &policy})
		switch {
		case err == nil:
			fmt.Fprintf(out, "%s %q deleted\n", kindGroup(t.mapping.GroupVersionKind.GroupKind()), t.name)
		case apierrors.IsNotFound(err) && o.ignoreNotFound:
		case ctx.Err() != nil:
			return err
		default:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
