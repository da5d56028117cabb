package discovery_test

import (
	"fmt"
	"sync"
	"testing"

	"k8s.io/client-go/discovery"

	setpointdiscovery "github.com/setpoint/setpoint/internal/apiserver/discovery"
)

func TestDocumentsRebuiltOnlyOnChange(t *testing.T) {
	reg := newPopulated(t)
	groups := setpointdiscovery.Groups(reg)
	aggregated := setpointdiscovery.Aggregated(reg, false)
	if &setpointdiscovery.Groups(reg).Groups[0] != &groups.Groups[0] || &setpointdiscovery.Aggregated(reg, false).Items[0] != &aggregated.Items[0] {
		t.Fatal("documents rebuilt without a change")
	}
	other := newRegistry(t)
	if n := len(setpointdiscovery.Groups(other).Groups); n != 5 {
		t.Fatalf("second registry serves %d groups, want only the 5 built-in ones", n)
	}
	if &setpointdiscovery.Groups(reg).Groups[0] != &groups.Groups[0] {
		t.Fatal("documents of one registry rebuilt by another's")
	}
	createCRD(t, reg, map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "cogs.late.example.com"},
		"spec": map[string]any{
			"group": "late.example.com", "scope": "Cluster",
			"names":    map[string]any{"plural": "cogs", "kind": "Cog"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	})
	if _, ok := setpointdiscovery.Group(reg, "late.example.com"); !ok {
		t.Fatal("new CRD's group not served")
	}
	if _, ok := setpointdiscovery.Resources(reg, "late.example.com", "v1"); !ok {
		t.Fatal("new CRD's resources not served")
	}
	if got := setpointdiscovery.Aggregated(reg, false); len(got.Items) != len(aggregated.Items)+1 {
		t.Fatalf("aggregated document not rebuilt: %d items", len(got.Items))
	}
}

func TestAcceptsAggregated(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{discovery.AcceptV2 + "," + discovery.AcceptV1, true},
		{discovery.AcceptV2NoPeer + "," + discovery.AcceptV2 + "," + discovery.AcceptV1, true},
		{"application/json; as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io", true},
		{discovery.AcceptV1, false},
		{"application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList, application/json", false},
		{"application/yaml;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", false},
		{"", false},
		{"*/*", false},
		{discovery.AcceptV2 + ";q=0," + discovery.AcceptV1, false},
	}
	for _, tt := range tests {
		if got := setpointdiscovery.AcceptsAggregated(tt.accept); got != tt.want {
			t.Errorf("AcceptsAggregated(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}

// TestConcurrentCallers sets the type fields of the returned documents from
// several goroutines at once, as HTTP handlers do; run with -race it fails
// if callers share the top-level structs. The goroutines write only after
// all have their documents, so no lock orders the writes.
func TestConcurrentCallers(t *testing.T) {
	reg := newPopulated(t)
	for round := range 3 {
		if round > 0 {
			createCRD(t, reg, map[string]any{
				"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
				"metadata": map[string]any{"name": fmt.Sprintf("things.c%d.example.com", round)},
				"spec": map[string]any{
					"group": fmt.Sprintf("c%d.example.com", round), "scope": "Cluster",
					"names":    map[string]any{"plural": "things", "kind": "Thing"},
					"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
				},
			})
		}
		var ready, done sync.WaitGroup
		start := make(chan struct{})
		for range 4 {
			ready.Add(1)
			done.Go(func() {
				g := setpointdiscovery.Groups(reg)
				a := setpointdiscovery.Aggregated(reg, true)
				l, _ := setpointdiscovery.Resources(reg, "", "v1")
				gr, _ := setpointdiscovery.Group(reg, "example.com")
				ready.Done()
				<-start
				g.Kind, a.Kind, l.Kind, gr.Kind = "APIGroupList", "APIGroupDiscoveryList", "APIResourceList", "APIGroup"
			})
		}
		ready.Wait()
		close(start)
		done.Wait()
	}
	if n := len(setpointdiscovery.Groups(reg).Groups); n != 9 {
		t.Fatalf("%d groups after the changes, want 9", n)
	}
}
