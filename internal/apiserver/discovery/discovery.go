// Package discovery builds the documents clients read to learn what the
// server serves: /version, /api, /apis, per group-version resource lists,
// aggregated discovery (apidiscovery.k8s.io/v2) and OpenAPI v3. It builds
// documents only; the apiserver package writes them to HTTP.
//
// Documents are built once per set of served resources (see cache.go) and
// shared between callers. Each call returns its own copy of the top-level
// struct (so setting its kind or apiVersion is safe), but the slices and
// structs it refers to are shared and must not be modified.
package discovery

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"runtime"
	"slices"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/setpoint/setpoint/internal/registry"
)

// The server reports itself as the Kubernetes release whose client
// libraries it is built and tested with (k8s.io/* v0.37 in go.mod). kubectl
// compares its own minor version with the server's and warns about an
// unsupported skew when they are more than one minor apart, and charts and
// operators gate features on the server version, so a non-Kubernetes
// number would trigger warnings or wrong feature checks. The "+setpoint"
// suffix is semver build metadata (as k3s does with "+k3s1"), not a
// pre-release tag: "v1.37.0-setpoint" would sort below v1.37.0 and fail
// constraints such as ">=1.30.0" in tools that use semver ranges (Helm).
const (
	kubeMajor  = "1"
	kubeMinor  = "37"
	gitVersion = "v" + kubeMajor + "." + kubeMinor + ".0+setpoint"
)

// Version is the document served at /version.
func Version() version.Info {
	return version.Info{
		Major:          kubeMajor,
		Minor:          kubeMinor,
		EmulationMajor: kubeMajor,
		EmulationMinor: kubeMinor,
		GitVersion:     gitVersion,
		GitTreeState:   "clean",
		BuildDate:      "1970-01-01T00:00:00Z",
		GoVersion:      runtime.Version(),
		Compiler:       runtime.Compiler,
		Platform:       runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// Legacy is the document served at /api.
//
// Kubernetes also lists the address clients should use per client CIDR
// (one entry for 0.0.0.0/0). Neither client-go nor kubectl reads it, and
// this package does not know the address clients reach the server at, so
// the list is empty (serialized as [] since the field is required).
func Legacy() *metav1.APIVersions {
	return &metav1.APIVersions{
		TypeMeta:                   metav1.TypeMeta{Kind: "APIVersions"},
		Versions:                   []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{},
	}
}

// Groups is the document served at /apis (the core group is not in it).
func Groups(reg *registry.Registry) *metav1.APIGroupList {
	return shallowCopy(docsFor(reg).plain().groups)
}

// Group is the document served at /apis/<group>; false if not served.
func Group(reg *registry.Registry, group string) (*metav1.APIGroup, bool) {
	g, ok := docsFor(reg).plain().group[group]
	return shallowCopy(g), ok
}

// Resources is the document served at /api/v1 (group "") and
// /apis/<group>/<version>; false if not served.
func Resources(reg *registry.Registry, group, version string) (*metav1.APIResourceList, bool) {
	l, ok := docsFor(reg).plain().resources[groupVersion(group, version)]
	return shallowCopy(l), ok
}

// Aggregated is the aggregated discovery document: for /api when legacy
// is true (the core group), for /apis otherwise.
func Aggregated(reg *registry.Registry, legacy bool) *apidiscoveryv2.APIGroupDiscoveryList {
	a := docsFor(reg).aggregated()
	if legacy {
		return shallowCopy(a.legacy)
	}
	return shallowCopy(a.groups)
}

// shallowCopy returns a copy of *p, or nil.
func shallowCopy[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// OpenAPIIndex is the document served at /openapi/v3: one entry per
// served group-version path ("api/v1", "apis/<group>/<version>") with the
// URL of its document, carrying a hash so clients can cache it.
func OpenAPIIndex(reg *registry.Registry) []byte {
	return docsFor(reg).openAPI().index
}

// OpenAPI is the OpenAPI v3 document of one group-version path (as listed
// in OpenAPIIndex, without the /openapi/v3/ prefix); false if not served.
func OpenAPI(reg *registry.Registry, path string) ([]byte, bool) {
	d, ok := docsFor(reg).openAPI().byPath[path]
	if !ok {
		return nil, false
	}
	return d.doc, true
}

// plainDocs are the non-aggregated discovery documents of one snapshot.
type plainDocs struct {
	groups *metav1.APIGroupList
	// group is keyed by group name (not the core group).
	group map[string]*metav1.APIGroup
	// resources is keyed by group version ("v1", "<group>/<version>").
	resources map[string]*metav1.APIResourceList
}

// groupVersion is the apiVersion string of group and version.
func groupVersion(group, version string) string {
	if group == "" {
		return version
	}
	return group + "/" + version
}

// statusVerbs are the verbs of every status and scale subresource.
var statusVerbs = []string{"get", "patch", "update"}

// finalizeVerbs are the verbs of namespaces/finalize, PUT alone.
var finalizeVerbs = []string{"update"}

// hasFinalize reports whether res is the core namespaces resource, the
// one with the finalize subresource.
func hasFinalize(res *registry.Resource) bool {
	return res.Group == "" && res.Resource == "namespaces"
}

// scaleKind is what the scale subresource serves.
var scaleKind = metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}

// buildPlain builds the documents of /apis, /apis/<group>, /api/v1 and
// /apis/<group>/<version> from a Groups snapshot.
func buildPlain(groups []registry.GroupVersions) *plainDocs {
	d := &plainDocs{
		groups: &metav1.APIGroupList{
			TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
			Groups:   []metav1.APIGroup{},
		},
		group:     map[string]*metav1.APIGroup{},
		resources: map[string]*metav1.APIResourceList{},
	}
	for _, g := range inKubeOrder(groups) {
		for _, v := range g.Versions {
			gv := groupVersion(g.Group, v)
			d.resources[gv] = resourceList(gv, g.Resources[v])
		}
		if g.Group == "" || len(g.Versions) == 0 {
			continue
		}
		apiGroup := metav1.APIGroup{
			TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
			Name:     g.Group,
		}
		for _, v := range g.Versions {
			apiGroup.Versions = append(apiGroup.Versions, metav1.GroupVersionForDiscovery{
				GroupVersion: groupVersion(g.Group, v), Version: v,
			})
		}
		apiGroup.PreferredVersion = apiGroup.Versions[0]
		d.group[g.Group] = &apiGroup
		listed := apiGroup
		listed.TypeMeta = metav1.TypeMeta{}
		d.groups.Groups = append(d.groups.Groups, listed)
	}
	return d
}

// inKubeOrder returns groups with Kubernetes' own groups (the core group,
// groups without a dot and *.k8s.io groups; CRD groups always have a dot)
// before the others, keeping the order otherwise. Kubernetes lists its
// built-in groups first and the groups of CRDs after them by name, and
// REST mappers prefer earlier groups when a resource or short name is
// ambiguous.
func inKubeOrder(groups []registry.GroupVersions) []registry.GroupVersions {
	rank := func(g registry.GroupVersions) int {
		if !strings.Contains(g.Group, ".") || strings.HasSuffix(g.Group, ".k8s.io") {
			return 0
		}
		return 1
	}
	out := slices.Clone(groups)
	slices.SortStableFunc(out, func(a, b registry.GroupVersions) int { return cmp.Compare(rank(a), rank(b)) })
	return out
}

// resourceList is the APIResourceList of one group version.
func resourceList(gv string, resources []*registry.Resource) *metav1.APIResourceList {
	l := &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv,
		APIResources: []metav1.APIResource{},
	}
	for _, res := range resources {
		l.APIResources = append(l.APIResources, metav1.APIResource{
			Name:               res.Resource,
			SingularName:       res.SingularName,
			Namespaced:         res.Namespaced,
			Kind:               res.Kind,
			Verbs:              res.Verbs,
			ShortNames:         res.ShortNames,
			Categories:         res.Categories,
			StorageVersionHash: storageVersionHash(res),
		})
		if res.HasStatus {
			l.APIResources = append(l.APIResources, metav1.APIResource{
				Name:       res.Resource + "/status",
				Namespaced: res.Namespaced,
				Kind:       res.Kind,
				Verbs:      statusVerbs,
			})
		}
		if hasFinalize(res) {
			l.APIResources = append(l.APIResources, metav1.APIResource{
				Name:       res.Resource + "/finalize",
				Namespaced: res.Namespaced,
				Kind:       res.Kind,
				Verbs:      finalizeVerbs,
			})
		}
		if res.Scale != nil {
			l.APIResources = append(l.APIResources, metav1.APIResource{
				Name:       res.Resource + "/scale",
				Namespaced: res.Namespaced,
				Group:      scaleKind.Group,
				Version:    scaleKind.Version,
				Kind:       scaleKind.Kind,
				Verbs:      statusVerbs,
			})
		}
	}
	return l
}

// storageVersionHash identifies the version objects of res are stored in,
// computed as Kubernetes does (first 8 bytes of the SHA-256 of
// "<group>/<storage version>/<kind>", base64), so storage-version
// migration tools see a change exactly when the storage version changes.
func storageVersionHash(res *registry.Resource) string {
	gv := res.StorageGroupVersion()
	sum := sha256.Sum256([]byte(gv.Group + "/" + gv.Version + "/" + res.Kind))
	return base64.StdEncoding.EncodeToString(sum[:8])
}
