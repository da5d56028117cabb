// Package discovery builds the documents clients read to learn what the
// server serves: /version, /api, /apis, per group-version resource lists,
// aggregated discovery (apidiscovery.k8s.io/v2) and OpenAPI v3. It builds
// documents only; the apiserver package writes them to HTTP.
//
// API CONTRACT (skeleton written by the lead; the discovery owner fills it in
// and may add to it, but must not change these signatures without telling the
// apiserver owner).
package discovery

import (
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/setpoint/setpoint/internal/registry"
)

// Version is the document served at /version.
func Version() version.Info { panic("unimplemented") }

// Legacy is the document served at /api.
func Legacy() *metav1.APIVersions { panic("unimplemented") }

// Groups is the document served at /apis (the core group is not in it).
func Groups(reg *registry.Registry) *metav1.APIGroupList { panic("unimplemented") }

// Group is the document served at /apis/<group>; false if not served.
func Group(reg *registry.Registry, group string) (*metav1.APIGroup, bool) {
	panic("unimplemented")
}

// Resources is the document served at /api/v1 (group "") and
// /apis/<group>/<version>; false if not served.
func Resources(reg *registry.Registry, group, version string) (*metav1.APIResourceList, bool) {
	panic("unimplemented")
}

// Aggregated is the aggregated discovery document: for /api when legacy
// is true (the core group), for /apis otherwise.
func Aggregated(reg *registry.Registry, legacy bool) *apidiscoveryv2.APIGroupDiscoveryList {
	panic("unimplemented")
}

// OpenAPIIndex is the document served at /openapi/v3: one entry per
// served group-version path ("api/v1", "apis/<group>/<version>") with the
// URL of its document, carrying a hash so clients can cache it.
func OpenAPIIndex(reg *registry.Registry) []byte { panic("unimplemented") }

// OpenAPI is the OpenAPI v3 document of one group-version path (as listed
// in OpenAPIIndex, without the /openapi/v3/ prefix); false if not served.
func OpenAPI(reg *registry.Registry, path string) ([]byte, bool) { panic("unimplemented") }
