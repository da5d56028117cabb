// Command apiextensions-apiserver runs the Kubernetes custom-resource API
// server (k8s.io/apiextensions-apiserver) on its own, without kube-apiserver's
// aggregator in front of it.
//
// The upstream server command is meant to sit behind the aggregator, so it
// turns discovery off and configures only OpenAPI v3. Standalone, clients need
// /apis and the CRD OpenAPI v2 controller, so this wrapper builds the server
// from the module's options and config, turns discovery back on, keeps the
// unaggregated /apis list in step with the served CRD groups, and configures
// OpenAPI v2.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	"k8s.io/apimachinery/pkg/labels"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/cli"
)

// standaloneDisabledAdmission lists the admission plugins that need a full
// cluster (namespaces, webhook and policy objects served by kube-apiserver).
var standaloneDisabledAdmission = []string{
	"NamespaceLifecycle",
	"MutatingAdmissionPolicy",
	"MutatingAdmissionWebhook",
	"ValidatingAdmissionPolicy",
	"ValidatingAdmissionWebhook",
}

func main() {
	ctx := genericapiserver.SetupSignalContext()
	os.Exit(cli.Run(newCommand(ctx, os.Stdout, os.Stderr)))
}

// newCommand returns the server command with the module's own flags, and
// standalone defaults for admission and priority-and-fairness.
func newCommand(ctx context.Context, out, errOut io.Writer) *cobra.Command {
	o := options.NewCustomResourceDefinitionsServerOptions(out, errOut)
	o.RecommendedOptions.Admission.DisablePlugins = standaloneDisabledAdmission
	o.RecommendedOptions.Features.EnablePriorityAndFairness = false

	cmd := &cobra.Command{
		Use:   "apiextensions-apiserver",
		Short: "Run the Kubernetes custom-resource API server standalone",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return o.ServerRunOptions.ComponentGlobalsRegistry.Set()
		},
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return fmt.Errorf("complete options: %w", err)
			}
			if err := o.Validate(); err != nil {
				return fmt.Errorf("validate options: %w", err)
			}
			return run(c.Context(), o)
		},
	}
	cmd.SetContext(ctx)
	o.AddFlags(cmd.Flags())
	return cmd
}

// run builds the server with discovery and OpenAPI v2 enabled and serves
// until ctx ends.
func run(ctx context.Context, o *options.CustomResourceDefinitionsServerOptions) error {
	config, err := o.Config()
	if err != nil {
		return fmt.Errorf("build config: %w", err)
	}
	config.GenericConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(
		openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions),
		openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme),
	)
	completed := config.Complete()
	completed.GenericConfig.EnableDiscovery = true

	server, err := completed.New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return fmt.Errorf("create server: %w", err)
	}
	if err := listCRDGroups(server); err != nil {
		return err
	}
	prepared := server.GenericAPIServer.PrepareRun()
	if err := prepared.RunWithContext(ctx); err != nil {
		return fmt.Errorf("run server: %w", err)
	}
	return nil
}

// listCRDGroups keeps the unaggregated /apis group list in step with the
// groups that CRDs serve. The aggregated form is kept by the server's own
// discovery controller; the plain APIGroupList is what kube-apiserver's
// aggregator would otherwise provide.
func listCRDGroups(server *apiserver.CustomResourceDefinitions) error {
	informer := server.Informers.Apiextensions().V1().CustomResourceDefinitions()
	lister := informer.Lister()
	groups := server.GenericAPIServer.DiscoveryGroupManager
	sync := func(obj any) {
		if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
		if !ok {
			return
		}
		all, err := lister.List(labels.Everything())
		if err != nil {
			return
		}
		group, ok := servedGroup(crd.Spec.Group, all)
		if !ok {
			groups.RemoveGroup(crd.Spec.Group)
			return
		}
		groups.AddGroup(group)
	}
	_, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    sync,
		UpdateFunc: func(_, obj any) { sync(obj) },
		DeleteFunc: sync,
	})
	if err != nil {
		return fmt.Errorf("watch CRDs for discovery: %w", err)
	}
	return nil
}
