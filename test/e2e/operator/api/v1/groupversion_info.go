// Package v1 is the API of the end-to-end suite's small operator: a
// Pipeline owns one Stage per entry of its spec. The types carry
// kubebuilder markers; controller-gen generates their CRDs (into
// ../../../testdata/crds) and their deep-copy methods:
//
//	go generate ./operator/api/v1   (from test/e2e)
//
// +kubebuilder:object:generate=true
// +groupName=ops.e2e.setpoint.dev
package v1

//go:generate go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object crd:crdVersions=v1 paths=. output:crd:artifacts:config=../../../testdata/crds

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "ops.e2e.setpoint.dev", Version: "v1"}

	// SchemeBuilder registers these types with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds these types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
