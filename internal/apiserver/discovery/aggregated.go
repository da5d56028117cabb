package discovery

import (
	"mime"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/internal/registry"
)

// aggregatedDocs are the aggregated discovery documents of one snapshot.
type aggregatedDocs struct {
	// legacy is served at /api (the core group only), groups at /apis.
	legacy, groups *apidiscoveryv2.APIGroupDiscoveryList
}

// buildAggregated builds the apidiscovery.k8s.io/v2 documents from a
// Groups snapshot. client-go's discovery client drops resources and
// subresources without a responseKind and reports group versions whose
// freshness is not Current as failed. It chooses the decoder by the
// response's content type (AggregatedContentType), not by the list's kind
// and apiVersion, which are set as Kubernetes sets them.
func buildAggregated(groups []registry.GroupVersions) *aggregatedDocs {
	list := func() *apidiscoveryv2.APIGroupDiscoveryList {
		return &apidiscoveryv2.APIGroupDiscoveryList{
			TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: apidiscoveryv2.SchemeGroupVersion.String()},
			Items:    []apidiscoveryv2.APIGroupDiscovery{},
		}
	}
	d := &aggregatedDocs{legacy: list(), groups: list()}
	for _, g := range inKubeOrder(groups) {
		item := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g.Group}}
		for _, v := range g.Versions {
			item.Versions = append(item.Versions, apidiscoveryv2.APIVersionDiscovery{
				Version:   v,
				Resources: aggregatedResources(g.Resources[v]),
				Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
			})
		}
		if g.Group == "" {
			d.legacy.Items = append(d.legacy.Items, item)
		} else {
			d.groups.Items = append(d.groups.Items, item)
		}
	}
	return d
}

// aggregatedResources describes the resources of one group version.
func aggregatedResources(resources []*registry.Resource) []apidiscoveryv2.APIResourceDiscovery {
	out := make([]apidiscoveryv2.APIResourceDiscovery, 0, len(resources))
	for _, res := range resources {
		kind := &metav1.GroupVersionKind{Group: res.Group, Version: res.Version, Kind: res.Kind}
		scope := apidiscoveryv2.ScopeCluster
		if res.Namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		rd := apidiscoveryv2.APIResourceDiscovery{
			Resource:         res.Resource,
			ResponseKind:     kind,
			Scope:            scope,
			SingularResource: res.SingularName,
			Verbs:            res.Verbs,
			ShortNames:       res.ShortNames,
			Categories:       res.Categories,
		}
		if res.HasStatus {
			rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
				Subresource:  "status",
				ResponseKind: kind,
				Verbs:        statusVerbs,
			})
		}
		if hasFinalize(res) {
			rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
				Subresource:  "finalize",
				ResponseKind: kind,
				Verbs:        finalizeVerbs,
			})
		}
		if res.Scale != nil {
			sk := scaleKind
			rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
				Subresource:  "scale",
				ResponseKind: &sk,
				Verbs:        statusVerbs,
			})
		}
		out = append(out, rd)
	}
	return out
}

// AggregatedContentType is the Content-Type of an aggregated discovery
// response. client-go decodes /api and /apis as APIGroupDiscoveryList only
// when the response carries it, and as the plain documents otherwise.
const AggregatedContentType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// AcceptsAggregated reports whether an Accept header asks for aggregated
// discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList as JSON). Clients
// list it first and the plain document after it, so a server that serves
// the aggregated form whenever it is acceptable matches Kubernetes.
func AcceptsAggregated(accept string) bool {
	for _, r := range strings.Split(accept, ",") {
		base, params, err := mime.ParseMediaType(strings.TrimSpace(r))
		if err != nil || base != "application/json" || params["q"] == "0" {
			continue
		}
		if params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" && params["as"] == "APIGroupDiscoveryList" {
			return true
		}
	}
	return false
}
