package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	kjson "sigs.k8s.io/json"
)

// NewConfig loads the kubeconfig at path and returns the configuration of
// its current context. An empty path uses client-go's default rules: the
// files in $KUBECONFIG, else ~/.kube/config, else the in-cluster
// configuration.
func NewConfig(kubeconfigPath string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfigPath
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("client: load kubeconfig: %w", err)
	}
	return cfg, nil
}

// Discover asks the server which resource serves kind in group/version
// (group "" is the core group) and whether it is namespaced. An unknown
// group/version is an error for which IsNotFound is true; an unknown
// kind in a known one is a plain error.
func Discover(ctx context.Context, cfg *rest.Config, group, version, kind string) (Resource, error) {
	c, err := newConn(cfg)
	if err != nil {
		return Resource{}, err
	}
	gv := schema.GroupVersion{Group: group, Version: version}
	path := "/apis/" + gv.String()
	if group == "" {
		path = "/api/" + version
	}
	data, err := c.do(ctx, request{method: http.MethodGet, path: path, verb: "get", resource: schema.GroupResource{Group: group}}, c.maxListBytes)
	if err != nil {
		return Resource{}, fmt.Errorf("client: discover %s: %w", gv, err)
	}
	var list metav1.APIResourceList
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &list); err != nil {
		return Resource{}, fmt.Errorf("client: decode discovery of %s: %w", gv, err)
	}
	for _, r := range list.APIResources {
		if r.Kind == kind && !strings.Contains(r.Name, "/") {
			return Resource{Group: group, Version: version, Resource: r.Name, Kind: kind, Namespaced: r.Namespaced}, nil
		}
	}
	return Resource{}, fmt.Errorf("client: %s serves no kind %s", gv, kind)
}
