package discovery_test

import (
	"fmt"
	"testing"

	setpointdiscovery "github.com/setpoint/setpoint/internal/apiserver/discovery"
	"github.com/setpoint/setpoint/internal/registry"
)

// manyCRDs is a registry serving n copies of the widget CRD (two versions,
// status, schema) in groups of their own.
func manyCRDs(b *testing.B, n int) *registry.Registry {
	b.Helper()
	reg := newRegistry(b)
	for i := range n {
		crd := widgetCRD()
		group := fmt.Sprintf("g%d.example.com", i)
		crd["metadata"] = map[string]any{"name": "widgets." + group}
		crd["spec"].(map[string]any)["group"] = group
		createCRD(b, reg, crd)
	}
	return reg
}

// BenchmarkBuild measures building each kind of document for 50 CRDs
// from scratch, which happens once per change of the served resources.
func BenchmarkBuild(b *testing.B) {
	reg := manyCRDs(b, 50)
	for _, name := range []string{"plain", "aggregated", "openapi"} {
		build := setpointdiscovery.Builders[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				build(reg.Groups())
			}
		})
	}
}

// BenchmarkCached measures a request's cost while the served resources do
// not change: the snapshot comparison and the cache lookup.
func BenchmarkCached(b *testing.B) {
	reg := manyCRDs(b, 50)
	setpointdiscovery.OpenAPIIndex(reg)
	b.ReportAllocs()
	for b.Loop() {
		setpointdiscovery.Aggregated(reg, false)
		setpointdiscovery.OpenAPIIndex(reg)
	}
}

// BenchmarkRebuildOpenAPIAfterChange measures rebuilding the OpenAPI
// documents of 50 CRDs after one more CRD was added: only its group
// version's document is built, the others are reused.
func BenchmarkRebuildOpenAPIAfterChange(b *testing.B) {
	reg := manyCRDs(b, 50)
	base := reg.Groups()
	crd := gizmoCRD()
	createCRD(b, reg, crd)
	rebuild := setpointdiscovery.RebuildOpenAPI(base, reg.Groups())
	b.ReportAllocs()
	for b.Loop() {
		rebuild()
	}
}
