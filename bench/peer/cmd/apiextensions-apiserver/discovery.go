package main

import (
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
)

// servedGroup returns the discovery entry of group built from the versions
// that the given CRDs serve in it, most preferred version first, and false
// when no CRD serves a version of group.
func servedGroup(group string, crds []*apiextensionsv1.CustomResourceDefinition) (metav1.APIGroup, bool) {
	var versions []string
	for _, crd := range crds {
		if crd.Spec.Group != group || crd.DeletionTimestamp != nil {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Served && !slices.Contains(versions, v.Name) {
				versions = append(versions, v.Name)
			}
		}
	}
	if len(versions) == 0 {
		return metav1.APIGroup{}, false
	}
	// CompareKubeAwareVersionStrings ranks GA above beta above alpha; higher first.
	slices.SortFunc(versions, func(a, b string) int {
		return -version.CompareKubeAwareVersionStrings(a, b)
	})
	out := metav1.APIGroup{Name: group}
	for _, v := range versions {
		out.Versions = append(out.Versions, metav1.GroupVersionForDiscovery{GroupVersion: group + "/" + v, Version: v})
	}
	out.PreferredVersion = out.Versions[0]
	return out, true
}
