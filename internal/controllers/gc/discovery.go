package gc

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	"github.com/setpoint/setpoint/pkg/client"
)

// ignored are the resources the collector does not watch, as Kubernetes'
// collector ignores them by default: Events are many, short-lived and
// never anyone's owner, and the two groups serve the same objects.
var ignored = []schema.GroupResource{{Group: "", Resource: "events"}, {Group: "events.k8s.io", Resource: "events"}}

// catalog is what discovery found: the resources to watch, and where each
// kind is served, to look owners up.
type catalog struct {
	// watch holds the preferred version of every resource that can be
	// listed, watched and deleted.
	watch []client.Resource
	byGVK map[schema.GroupVersionKind]client.Resource
	// byGK holds each kind's resource in its group's preferred version, for
	// references naming a version no longer served.
	byGK map[schema.GroupKind]client.Resource
}

// lookup returns the resource serving the kind an ownerReference names.
func (c *catalog) lookup(apiVersion, kind string) (client.Resource, bool) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return client.Resource{}, false
	}
	if res, ok := c.byGVK[gv.WithKind(kind)]; ok {
		return res, true
	}
	res, ok := c.byGK[schema.GroupKind{Group: gv.Group, Kind: kind}]
	return res, ok
}

// discover asks the server which resources it serves. A group that failed
// to answer is left out and reported with the partial catalog.
func discover(d discovery.DiscoveryInterface) (*catalog, error) {
	groups, lists, err := d.ServerGroupsAndResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("gc: discovery: %w", err)
	}
	preferred := map[string]string{}
	for _, g := range groups {
		preferred[g.Name] = g.PreferredVersion.Version
	}
	c := &catalog{byGVK: map[schema.GroupVersionKind]client.Resource{}, byGK: map[schema.GroupKind]client.Resource{}}
	for _, list := range lists {
		gv, perr := schema.ParseGroupVersion(list.GroupVersion)
		if perr != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			res := client.Resource{Group: gv.Group, Version: gv.Version, Resource: r.Name, Kind: r.Kind, Namespaced: r.Namespaced}
			c.byGVK[gv.WithKind(r.Kind)] = res
			if preferred[gv.Group] != gv.Version {
				continue
			}
			c.byGK[schema.GroupKind{Group: gv.Group, Kind: r.Kind}] = res
			if watchable(r) && !slices.Contains(ignored, gv.WithResource(r.Name).GroupResource()) {
				c.watch = append(c.watch, res)
			}
		}
	}
	return c, err
}

// watchable reports whether the collector can list, watch and delete r.
func watchable(r metav1.APIResource) bool {
	for _, v := range []string{"list", "watch", "delete"} {
		if !slices.Contains(r.Verbs, v) {
			return false
		}
	}
	return true
}
