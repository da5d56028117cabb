package discovery_test

import (
	"encoding/json"
	"mime"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/kube-openapi/pkg/spec3"

	setpointdiscovery "github.com/setpoint/setpoint/internal/apiserver/discovery"
	"github.com/setpoint/setpoint/internal/registry"
)

// FuzzAcceptsAggregated checks that Accept headers never panic the
// negotiation and that a yes always names the aggregated JSON form.
func FuzzAcceptsAggregated(f *testing.F) {
	for _, s := range []string{discovery.AcceptV2 + "," + discovery.AcceptV1, discovery.AcceptV2NoPeer, discovery.AcceptV1, "*/*", "", ";;,", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		if !setpointdiscovery.AcceptsAggregated(accept) {
			return
		}
		for _, r := range strings.Split(accept, ",") {
			base, params, err := mime.ParseMediaType(strings.TrimSpace(r))
			if err == nil && base == "application/json" && params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" && params["as"] == "APIGroupDiscoveryList" {
				return
			}
		}
		t.Fatalf("AcceptsAggregated(%q) without an aggregated media range", accept)
	})
}

// FuzzCRDSchemaDocument builds the OpenAPI document of a custom resource
// from any schema that decodes as a CRD's openAPIV3Schema: it must be
// JSON that decodes as an OpenAPI v3 document carrying the kind's schema.
func FuzzCRDSchemaDocument(f *testing.F) {
	for _, s := range []string{
		`{"type":"object","properties":{"spec":{"type":"object","properties":{"size":{"type":"integer"}}}}}`,
		`{"type":"object","x-kubernetes-preserve-unknown-fields":true}`,
		`{"type":"object","properties":{"a":{"x-kubernetes-int-or-string":true,"anyOf":[{"type":"integer"},{"type":"string"}]}}}`,
		`{"type":"object","properties":{"m":{"type":"array","items":{"type":"array","items":{"type":"object","additionalProperties":{"type":"string"}}}}}}`,
		`{"type":"object","properties":{"t":{"type":"object","x-kubernetes-embedded-resource":true,"x-kubernetes-preserve-unknown-fields":true}}}`,
		`{"properties":{"d":{"type":"string","default":"x","enum":["x",1,null],"nullable":true}},"x-kubernetes-validations":[{"rule":"true"}]}`,
		`{"items":[{"type":"string"}],"additionalProperties":false}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, schemaJSON string) {
		var props apiextensionsv1.JSONSchemaProps
		if json.Unmarshal([]byte(schemaJSON), &props) != nil {
			return
		}
		res := &registry.Resource{
			Group: "fuzz.example.com", Version: "v1", Resource: "things", SingularName: "thing",
			Kind: "Thing", ListKind: "ThingList", Namespaced: true, HasStatus: true,
			Verbs:         []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
			OpenAPISchema: &props,
		}
		b, err := setpointdiscovery.GroupVersionDoc(res.Group, res.Version, []*registry.Resource{res})
		if err != nil {
			t.Fatal(err)
		}
		var doc spec3.OpenAPI
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("document does not decode: %v\n%s", err, b)
		}
		kind, ok := doc.Components.Schemas["com.example.fuzz.v1.Thing"]
		if !ok || kind.Extensions["x-kubernetes-group-version-kind"] == nil {
			t.Fatalf("kind schema missing or unmarked: %v", kind)
		}
		if _, ok := kind.Properties["metadata"]; !ok {
			t.Fatal("kind schema has no metadata")
		}
	})
}
