package discovery

import (
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/setpoint/setpoint/internal/registry"
)

// docs holds the documents of one snapshot of a registry's served
// resources, each built on first use.
type docs struct {
	snapshot []registry.GroupVersions

	plainOnce sync.Once
	plainDocs *plainDocs

	aggregatedOnce sync.Once
	aggregatedDocs *aggregatedDocs

	openAPIOnce sync.Once
	openAPIDocs atomic.Pointer[openAPIDocs]
	// openAPIBase holds the latest OpenAPI documents built for an earlier
	// snapshot, whose unchanged group versions are reused.
	openAPIBase atomic.Pointer[openAPIDocs]
}

// plain returns the non-aggregated discovery documents.
func (d *docs) plain() *plainDocs {
	d.plainOnce.Do(func() { d.plainDocs = buildPlain(d.snapshot) })
	return d.plainDocs
}

// aggregated returns the aggregated discovery documents.
func (d *docs) aggregated() *aggregatedDocs {
	d.aggregatedOnce.Do(func() { d.aggregatedDocs = buildAggregated(d.snapshot) })
	return d.aggregatedDocs
}

// openAPI returns the OpenAPI v3 documents.
func (d *docs) openAPI() *openAPIDocs {
	d.openAPIOnce.Do(func() {
		d.openAPIDocs.Store(buildOpenAPI(d.snapshot, d.openAPIBase.Swap(nil)))
	})
	return d.openAPIDocs.Load()
}

// cache maps each registry (weakly, so a closed registry is not kept
// alive) to the documents of its latest snapshot.
var cache = struct {
	mu    sync.Mutex
	byReg map[weak.Pointer[registry.Registry]]*docs
}{byReg: map[weak.Pointer[registry.Registry]]*docs{}}

// docsFor returns the documents of reg's current served resources,
// reusing the previous ones while the set of resources is unchanged.
func docsFor(reg *registry.Registry) *docs {
	groups := reg.Groups()
	key := weak.Make(reg)
	cache.mu.Lock()
	defer cache.mu.Unlock()
	d, known := cache.byReg[key]
	if known && sameSnapshot(d.snapshot, groups) {
		return d
	}
	if !known {
		runtime.AddCleanup(reg, forget, key)
	}
	next := &docs{snapshot: groups}
	if known {
		base := d.openAPIDocs.Load()
		if base == nil {
			base = d.openAPIBase.Load()
		}
		next.openAPIBase.Store(base)
	}
	cache.byReg[key] = next
	return next
}

// forget drops the documents of a collected registry.
func forget(key weak.Pointer[registry.Registry]) {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	delete(cache.byReg, key)
}

// sameSnapshot reports whether a and b serve the same resources. The
// registry builds new Resource values whenever its set of resources
// changes and never modifies them afterwards, so comparing the Resource
// pointers is an exact and cheap fingerprint.
func sameSnapshot(a, b []registry.GroupVersions) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if a[i].Group != b[i].Group || len(a[i].Versions) != len(b[i].Versions) {
			return false
		}
		for j, v := range a[i].Versions {
			ra, rb := a[i].Resources[v], b[i].Resources[v]
			if v != b[i].Versions[j] || len(ra) != len(rb) {
				return false
			}
			for k := range ra {
				if ra[k] != rb[k] {
					return false
				}
			}
		}
	}
	return true
}
