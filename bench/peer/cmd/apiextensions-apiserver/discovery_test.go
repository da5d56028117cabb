package main

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func crd(group string, versions map[string]bool) *apiextensionsv1.CustomResourceDefinition {
	c := &apiextensionsv1.CustomResourceDefinition{Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: group}}
	for name, served := range versions {
		c.Spec.Versions = append(c.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{Name: name, Served: served})
	}
	return c
}

func TestServedGroup(t *testing.T) {
	deleting := crd("a.io", map[string]bool{"v3": true})
	deleting.DeletionTimestamp = &metav1.Time{}
	crds := []*apiextensionsv1.CustomResourceDefinition{
		crd("a.io", map[string]bool{"v1beta1": true, "v1alpha1": false}),
		crd("a.io", map[string]bool{"v1": true, "v2alpha1": true, "v1beta1": true}),
		crd("b.io", map[string]bool{"v1": false}),
		deleting,
	}
	t.Run("served_versions_most_preferred_first", func(t *testing.T) {
		g, ok := servedGroup("a.io", crds)
		if !ok {
			t.Fatal("a.io not served")
		}
		var got []string
		for _, v := range g.Versions {
			got = append(got, v.GroupVersion)
		}
		want := []string{"a.io/v1", "a.io/v1beta1", "a.io/v2alpha1"}
		if len(got) != len(want) {
			t.Fatalf("versions %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("versions %v, want %v", got, want)
			}
		}
		if g.PreferredVersion.Version != "v1" {
			t.Fatalf("preferred %q, want v1", g.PreferredVersion.Version)
		}
	})
	t.Run("no_served_version", func(t *testing.T) {
		if g, ok := servedGroup("b.io", crds); ok {
			t.Fatalf("b.io listed as %+v", g)
		}
	})
	t.Run("unknown_group", func(t *testing.T) {
		if _, ok := servedGroup("c.io", crds); ok {
			t.Fatal("c.io listed")
		}
	})
}
