package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"k8s.io/apimachinery/pkg/util/mergepatch"
)

// lastAppliedAnnotation holds the configuration last applied to an object,
// the "original" of the three-way merge. kubectl uses the same key, so
// objects can be applied by either tool.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// maxPatchAttempts bounds retries of a patch that hits a write conflict.
const maxPatchAttempts = 5

const applyExample = `  setpoint apply -f widget-crd.yaml -f widgets/
  cat widget.yaml | setpoint apply -f -`

// applyOptions are the flags of "setpoint apply".
type applyOptions struct {
	client    clientFlags
	filenames []string
}

func newApplyCommand(env Env) *cobra.Command {
	o := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply -f PATH...",
		Short: "Create or update objects from YAML or JSON manifests",
		Long: `Create objects that do not exist and update those that do, to match the
manifests given. Fields removed from a manifest since it was last applied are
removed from the object; fields set by others are kept (a three-way merge on
the kubectl.kubernetes.io/last-applied-configuration annotation, compatible
with kubectl apply).`,
		Example: applyExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.filenames) == 0 {
				return newUsageError("setpoint apply -f widget.yaml", "you must give manifests with -f")
			}
			return o.run(cmd.Context(), env)
		},
	}
	o.client.addFlags(cmd.Flags())
	cmd.Flags().StringArrayVarP(&o.filenames, "filename", "f", nil,
		"manifest file, directory (read recursively for *.yaml, *.yml, *.json) or - for stdin; repeatable")
	return cmd
}

func (o *applyOptions) run(ctx context.Context, env Env) error {
	objs, err := readManifestPaths(o.filenames, env.In)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return newUsageError("setpoint apply -f widget.yaml", "no objects found in %v", o.filenames)
	}
	if err := checkNames(objs); err != nil {
		return err
	}
	c, err := o.client.newClients(env.Getenv)
	if err != nil {
		return err
	}
	var errs []error
	for _, obj := range objs {
		if err := c.applyOne(ctx, env.Out, obj); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkNames rejects objects apply cannot address, before anything is sent.
func checkNames(objs []*unstructured.Unstructured) error {
	for _, obj := range objs {
		if obj.GetName() == "" {
			return fmt.Errorf("%s object has no metadata.name (apply needs a name; generateName is not supported)", obj.GetKind())
		}
	}
	return nil
}

// applyOne creates obj or three-way merges it into the live object, and
// prints what happened.
func (c *clients) applyOne(ctx context.Context, out io.Writer, obj *unstructured.Unstructured) error {
	m, err := c.mappingForObject(ctx, obj)
	if err != nil {
		return err
	}
	if err := c.setNamespace(m, obj); err != nil {
		return err
	}
	modified, err := withLastApplied(obj)
	if err != nil {
		return err
	}
	rc := c.resourceClient(m, obj.GetNamespace())
	name := fmt.Sprintf("%s/%s", kindGroup(m.GroupVersionKind.GroupKind()), obj.GetName())
	for attempt := 1; ; attempt++ {
		live, err := rc.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			var created unstructured.Unstructured
			if err := json.Unmarshal(modified, &created.Object); err != nil {
				return fmt.Errorf("%s: decode object: %w", name, err)
			}
			if _, err := rc.Create(ctx, &created, metav1.CreateOptions{FieldManager: "setpoint"}); err != nil {
				return err
			}
			fmt.Fprintf(out, "%s created\n", name)
			return nil
		}
		if err != nil {
			return err
		}
		patch, err := threeWayPatch(live, modified)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if string(patch) == "{}" {
			fmt.Fprintf(out, "%s unchanged\n", name)
			return nil
		}
		_, err = rc.Patch(ctx, obj.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "setpoint"})
		if apierrors.IsConflict(err) && attempt < maxPatchAttempts {
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s configured\n", name)
		return nil
	}
}

// setNamespace fills in the namespace of a namespaced object from -n or the
// kubeconfig, and clears it on cluster-scoped ones.
func (c *clients) setNamespace(m *meta.RESTMapping, obj *unstructured.Unstructured) error {
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		obj.SetNamespace("")
		return nil
	}
	switch ns := obj.GetNamespace(); {
	case ns == "":
		obj.SetNamespace(c.namespace)
	case c.namespaceForced && ns != c.namespace:
		return fmt.Errorf("the namespace from the manifest (%q) does not match the namespace from -n (%q)", ns, c.namespace)
	}
	return nil
}

// withLastApplied returns obj as JSON with the last-applied annotation set
// to obj itself (without that annotation): the "modified" configuration.
func withLastApplied(obj *unstructured.Unstructured) ([]byte, error) {
	obj = obj.DeepCopy()
	annotations := obj.GetAnnotations()
	delete(annotations, lastAppliedAnnotation)
	obj.SetAnnotations(annotations)
	original, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, fmt.Errorf("encode object: %w", err)
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[lastAppliedAnnotation] = string(original) + "\n"
	obj.SetAnnotations(annotations)
	modified, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, fmt.Errorf("encode object: %w", err)
	}
	return modified, nil
}

// threeWayPatch computes the JSON merge patch from live to modified, given
// the configuration last applied to live (its annotation).
func threeWayPatch(live *unstructured.Unstructured, modified []byte) ([]byte, error) {
	current, err := json.Marshal(live.Object)
	if err != nil {
		return nil, fmt.Errorf("encode live object: %w", err)
	}
	var original []byte
	if s, ok := live.GetAnnotations()[lastAppliedAnnotation]; ok {
		original = []byte(s)
	}
	patch, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, modified, current,
		mergepatch.RequireKeyUnchanged("apiVersion"),
		mergepatch.RequireKeyUnchanged("kind"),
		mergepatch.RequireMetadataKeyUnchanged("name"))
	if err != nil {
		return nil, fmt.Errorf("compute patch: %w", err)
	}
	return patch, nil
}
