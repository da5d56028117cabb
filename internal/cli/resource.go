package cli

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// noKindMatchTimeout bounds how long apply waits for a kind to appear in
// discovery (a CRD applied earlier in the same run becomes established).
const noKindMatchTimeout = 15 * time.Second

// resolveResource maps a resource argument as kubectl accepts it — plural,
// singular, short name or kind, optionally qualified as NAME.GROUP or
// NAME.VERSION.GROUP — to a REST mapping.
func (c *clients) resolveResource(arg string) (*meta.RESTMapping, error) {
	mapper := restmapper.NewShortcutExpander(c.mapper, c.discovery, nil)
	var tries []func() (*meta.RESTMapping, error)
	gvr, gr := schema.ParseResourceArg(strings.ToLower(arg))
	if gvr != nil {
		tries = append(tries, func() (*meta.RESTMapping, error) { return mappingForResource(mapper, *gvr) })
	}
	tries = append(tries, func() (*meta.RESTMapping, error) { return mappingForResource(mapper, gr.WithVersion("")) })
	// Not a resource name: try it as a kind (Widget, Widget.v1.example.com).
	gvk, gk := schema.ParseKindArg(arg)
	if gvk != nil {
		tries = append(tries, func() (*meta.RESTMapping, error) { return mapper.RESTMapping(gvk.GroupKind(), gvk.Version) })
	}
	tries = append(tries, func() (*meta.RESTMapping, error) { return mapper.RESTMapping(gk) })
	for _, try := range tries {
		m, err := try()
		if err == nil {
			return m, nil
		}
		if !meta.IsNoMatchError(err) {
			// Discovery itself failed (server down, bad credentials).
			return nil, fmt.Errorf("resolve resource type %q: %w", arg, err)
		}
	}
	return nil, fmt.Errorf("the server doesn't have a resource type %q", arg)
}

func mappingForResource(mapper meta.RESTMapper, gvr schema.GroupVersionResource) (*meta.RESTMapping, error) {
	full, err := mapper.ResourceFor(gvr)
	if err != nil {
		return nil, err
	}
	gvk, err := mapper.KindFor(full)
	if err != nil {
		return nil, err
	}
	return mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}

// mappingForObject maps an object's apiVersion and kind to a REST mapping.
// A kind that discovery does not know yet (a CRD applied a moment ago) is
// retried with fresh discovery until noKindMatchTimeout.
func (c *clients) mappingForObject(ctx context.Context, obj *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := obj.GroupVersionKind()
	deadline := time.Now().Add(noKindMatchTimeout)
	delay := 50 * time.Millisecond
	for {
		m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			return m, nil
		}
		if !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return nil, fmt.Errorf("resource mapping not found for %q: %w", gvk.String(), err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
		c.mapper.Reset()
	}
}

// resourceClient returns the dynamic client for m in namespace ns (ignored
// for cluster-scoped resources; "" lists across all namespaces).
func (c *clients) resourceClient(m *meta.RESTMapping, ns string) dynamic.ResourceInterface {
	rc := c.dynamic.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return rc.Namespace(ns)
	}
	return rc
}

// resourcePath is the URL path of a collection of m in namespace ns.
func resourcePath(m *meta.RESTMapping, ns string) string {
	gvr := m.Resource
	base := "/api/" + gvr.Version
	if gvr.Group != "" {
		base = path.Join("/apis", gvr.Group, gvr.Version)
	}
	if ns != "" && m.Scope.Name() == meta.RESTScopeNameNamespace {
		base = path.Join(base, "namespaces", ns)
	}
	return path.Join(base, gvr.Resource)
}

// kindGroup is "kind.group" in lower case ("kind" for the core group), the
// way kubectl names a type in its messages.
func kindGroup(gk schema.GroupKind) string {
	if gk.Group == "" {
		return strings.ToLower(gk.Kind)
	}
	return strings.ToLower(gk.Kind) + "." + gk.Group
}
