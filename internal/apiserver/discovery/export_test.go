package discovery

import "github.com/setpoint/setpoint/internal/registry"

// Builders expose the uncached document builders to benchmarks.
var Builders = map[string]func([]registry.GroupVersions){
	"plain":      func(g []registry.GroupVersions) { buildPlain(g) },
	"aggregated": func(g []registry.GroupVersions) { buildAggregated(g) },
	"openapi":    func(g []registry.GroupVersions) { buildOpenAPI(g, nil) },
}

// RebuildOpenAPI builds the OpenAPI documents of groups reusing those
// built for base, as after a change of the served resources.
func RebuildOpenAPI(base, groups []registry.GroupVersions) func() {
	built := buildOpenAPI(base, nil)
	return func() { buildOpenAPI(groups, built) }
}

// GroupVersionDoc exposes the document builder of one group version.
var GroupVersionDoc = groupVersionDoc
