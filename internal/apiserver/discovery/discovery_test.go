package discovery_test

import (
	"encoding/json"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/setpoint/setpoint/internal/apiserver/discovery"
)

func TestVersion(t *testing.T) {
	info := discovery.Version()
	v, err := utilversion.ParseSemantic(info.GitVersion)
	if err != nil {
		t.Fatalf("gitVersion %q: %v", info.GitVersion, err)
	}
	if v.PreRelease() != "" {
		t.Errorf("gitVersion %q is a pre-release; semver ranges would reject it", info.GitVersion)
	}
	if got := []string{info.Major, info.Minor}; !reflect.DeepEqual(got, []string{"1", itoa(v.Minor())}) || v.Major() != 1 {
		t.Errorf("major/minor %v do not match %s", got, info.GitVersion)
	}
	if info.GoVersion != runtime.Version() || info.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("info %+v", info)
	}
}

func itoa(u uint) string { b, _ := json.Marshal(u); return string(b) }

func TestLegacy(t *testing.T) {
	b, err := json.Marshal(discovery.Legacy())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]}`
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}

func TestGroups(t *testing.T) {
	reg := newPopulated(t)
	list := discovery.Groups(reg)
	if list.Kind != "APIGroupList" || list.APIVersion != "v1" {
		t.Errorf("type meta %+v", list.TypeMeta)
	}
	var names []string
	for _, g := range list.Groups {
		names = append(names, g.Name)
	}
	if want := []string{"admissionregistration.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io", "example.com", "tools.example.org"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("groups %v, want %v", names, want)
	}
	g, ok := discovery.Group(reg, "example.com")
	if !ok {
		t.Fatal("example.com not served")
	}
	want := []metav1.GroupVersionForDiscovery{
		{GroupVersion: "example.com/v1", Version: "v1"},
		{GroupVersion: "example.com/v1beta1", Version: "v1beta1"},
	}
	if g.Kind != "APIGroup" || !reflect.DeepEqual(g.Versions, want) || g.PreferredVersion != want[0] {
		t.Fatalf("group %+v", g)
	}
	i := slices.IndexFunc(list.Groups, func(g metav1.APIGroup) bool { return g.Name == "example.com" })
	if i < 0 || !reflect.DeepEqual(list.Groups[i].Versions, want) {
		t.Errorf("listed groups %+v", list.Groups)
	}
	for _, missing := range []string{"", "nope.example.com"} {
		if _, ok := discovery.Group(reg, missing); ok {
			t.Errorf("group %q served", missing)
		}
	}
}

func TestResources(t *testing.T) {
	reg := newPopulated(t)
	status := []string{"get", "patch", "update"}
	crdVerbs := []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	tests := []struct {
		group, version string
		want           []metav1.APIResource
	}{{
		group: "", version: "v1",
		want: []metav1.APIResource{
			{Name: "configmaps", SingularName: "configmap", Namespaced: true, Kind: "ConfigMap", ShortNames: []string{"cm"}, Verbs: crdVerbs},
			{Name: "events", SingularName: "event", Namespaced: true, Kind: "Event", ShortNames: []string{"ev"}, Verbs: crdVerbs},
			{Name: "namespaces", SingularName: "namespace", Kind: "Namespace", ShortNames: []string{"ns"},
				Verbs: []string{"create", "delete", "get", "list", "patch", "update", "watch"}},
			{Name: "namespaces/status", Kind: "Namespace", Verbs: status},
			{Name: "namespaces/finalize", Kind: "Namespace", Verbs: []string{"update"}},
			{Name: "secrets", SingularName: "secret", Namespaced: true, Kind: "Secret", Verbs: crdVerbs},
		},
	}, {
		group: "coordination.k8s.io", version: "v1",
		want: []metav1.APIResource{
			{Name: "leases", SingularName: "lease", Namespaced: true, Kind: "Lease", Verbs: crdVerbs},
		},
	}, {
		group: "events.k8s.io", version: "v1",
		want: []metav1.APIResource{
			{Name: "events", SingularName: "event", Namespaced: true, Kind: "Event", ShortNames: []string{"ev"}, Verbs: crdVerbs},
		},
	}, {
		group: "example.com", version: "v1beta1",
		want: []metav1.APIResource{
			{Name: "widgets", SingularName: "widget", Namespaced: true, Kind: "Widget",
				ShortNames: []string{"wd", "wds"}, Categories: []string{"all", "toys"},
				Verbs: crdVerbs},
			{Name: "widgets/status", Namespaced: true, Kind: "Widget", Verbs: status},
		},
	}, {
		group: "tools.example.org", version: "v1",
		want: []metav1.APIResource{
			{Name: "gizmos", SingularName: "gizmo", Kind: "Gizmo",
				Verbs: crdVerbs},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.group+"/"+tt.version, func(t *testing.T) {
			l, ok := discovery.Resources(reg, tt.group, tt.version)
			if !ok {
				t.Fatal("not served")
			}
			gv := tt.version
			if tt.group != "" {
				gv = tt.group + "/" + tt.version
			}
			if l.Kind != "APIResourceList" || l.APIVersion != "v1" || l.GroupVersion != gv {
				t.Errorf("list %+v", l.TypeMeta)
			}
			got := slices.Clone(l.APIResources)
			for i := range got {
				if got[i].StorageVersionHash == "" && !strings.Contains(got[i].Name, "/") {
					t.Errorf("%s has no storageVersionHash", got[i].Name)
				}
				got[i].StorageVersionHash = ""
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	if _, ok := discovery.Resources(reg, "example.com", "v2"); ok {
		t.Error("example.com/v2 served")
	}
}

func TestBuiltInGroupsFirst(t *testing.T) {
	reg := newPopulated(t)
	createCRD(t, reg, map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "aardvarks.aaa.example.com"},
		"spec": map[string]any{
			"group": "aaa.example.com", "scope": "Cluster",
			"names":    map[string]any{"plural": "aardvarks", "kind": "Aardvark"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	})
	want := []string{"admissionregistration.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io", "aaa.example.com", "example.com", "tools.example.org"}
	var plain, aggregated []string
	for _, g := range discovery.Groups(reg).Groups {
		plain = append(plain, g.Name)
	}
	for _, g := range discovery.Aggregated(reg, false).Items {
		aggregated = append(aggregated, g.Name)
	}
	if !slices.Equal(plain, want) || !slices.Equal(aggregated, want) {
		t.Fatalf("groups %v (plain), %v (aggregated), want %v", plain, aggregated, want)
	}
}

// TestEventsStorageVersionHash checks that both Event APIs announce the
// storage version hash of the one resource they share, the core v1 Event,
// as Kubernetes does ("r2yiGXH7wu8=").
func TestEventsStorageVersionHash(t *testing.T) {
	reg := newPopulated(t)
	for _, group := range []string{"", "events.k8s.io"} {
		l, ok := discovery.Resources(reg, group, "v1")
		if !ok {
			t.Fatalf("%q/v1 not served", group)
		}
		i := slices.IndexFunc(l.APIResources, func(r metav1.APIResource) bool { return r.Name == "events" })
		if i < 0 || l.APIResources[i].StorageVersionHash != "r2yiGXH7wu8=" {
			t.Errorf("%q/v1 events: %+v", group, l.APIResources)
		}
	}
}
