package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/version"
)

// TestKubectlExplain explains the knob CRD and its nested fields with the
// descriptions of its schema, served through OpenAPI v3.
func TestKubectlExplain(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"kind", []string{"knobs"}, []string{"GROUP:      e2e.setpoint.dev", "KIND:       Knob", "VERSION:    v1",
			"Knob is a dial that kubectl turns in the end-to-end tests.", "spec\t<Object>\n    Spec is where the knob should point.", "status\t<Object>"}},
		{"short-name", []string{"kn.spec"}, []string{"FIELD: spec <Object>", "position\t<integer>\n    Position is the setting, from 0 to 100.",
			"limits\t<Object>\n    Limits bound the position.", "mode\t<string>"}},
		{"nested", []string{"knobs.spec.limits.max"}, []string{"FIELD: max <integer>", "Max is the highest position allowed, at most 100."}},
		{"array", []string{"knobs.status.conditions"}, []string{"FIELD: conditions <[]Object>", "Conditions of the knob.",
			"type\t<string> -required-\n    Type of the condition, such as Ready.", "lastTransitionTime\t<string>"}},
		{"recursive", []string{"knobs.spec", "--recursive"}, []string{"  limits\t<Object>\n    max\t<integer>\n    min\t<integer>"}},
		{"api-version", []string{"knobs", "--api-version", testGroup + "/" + testVersion}, []string{"KIND:       Knob"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOutput(t, e.run(t, append([]string{"explain"}, tc.args...)...), tc.want...)
		})
	}
	t.Run("unknown-field", func(t *testing.T) {
		wantOutput(t, e.fail(t, "explain", "knobs.spec.nope"), `field "nope" does not exist`)
	})
}

// TestKubectlAPIResources lists the knob resource with kubectl
// api-resources (short names, categories, the namespaced column, verbs) and
// its group with api-versions.
func TestKubectlAPIResources(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	installCRD(t, e.c, gadgetCRD())
	verbs := "create,delete,deletecollection,get,list,patch,update,watch"
	for _, tc := range []struct {
		name string
		args []string
		want [][]string
	}{
		{"group-wide", []string{"--api-group", testGroup, "-o", "wide", "--sort-by", "name"}, [][]string{
			{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"},
			{"gadgets", "", testGroup + "/v1", "false", "Gadget", verbs, ""},
			{"knobs", "kn,kb", testGroup + "/v1", "true", "Knob", verbs, knobCategory},
		}},
		{"category", []string{"--categories", knobCategory}, [][]string{
			{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"},
			{"knobs", "kn,kb", testGroup + "/v1", "true", "Knob"},
		}},
		{"namespaced", []string{"--namespaced=true", "--api-group", testGroup}, [][]string{
			{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"},
			{"knobs", "kn,kb", testGroup + "/v1", "true", "Knob"},
		}},
		{"cluster-scoped", []string{"--namespaced=false", "--sort-by", "name"}, [][]string{
			{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"},
			{"customresourcedefinitions", "crd,crds", "apiextensions.k8s.io/v1", "false", "CustomResourceDefinition"},
			{"gadgets", "", testGroup + "/v1", "false", "Gadget"},
			{"namespaces", "ns", "v1", "false", "Namespace"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := kubectlTable(e.run(t, append([]string{"api-resources"}, tc.args...)...))
			// Other helpers' built-in types may be served too; only the
			// rows named in want are compared.
			got = slices.DeleteFunc(got, func(row []string) bool {
				return !slices.ContainsFunc(tc.want, func(w []string) bool { return w[0] == row[0] })
			})
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("kubectl api-resources %s printed %q, want %q", strings.Join(tc.args, " "), got, tc.want)
			}
		})
	}
	t.Run("not-served", func(t *testing.T) {
		// Pods and other workload types are deliberately not served.
		wantOutput(t, e.fail(t, "get", "pods"), `the server doesn't have a resource type "pods"`)
	})
	t.Run("api-versions", func(t *testing.T) {
		got := strings.Fields(e.run(t, "api-versions"))
		for _, want := range []string{"v1", "apiextensions.k8s.io/v1", testGroup + "/" + testVersion} {
			if !slices.Contains(got, want) {
				t.Errorf("kubectl api-versions printed %q, want %s among them", got, want)
			}
		}
		if !slices.IsSorted(got) {
			t.Errorf("kubectl api-versions printed %q, want them sorted", got)
		}
	})
}

// TestKubectlGetRaw reads /version, /apis and an object's path with kubectl
// get --raw and decodes what it prints.
func TestKubectlGetRaw(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	k1 := e.createKnob(t, "k1", nil, map[string]any{"position": int64(10)})
	decode := func(t *testing.T, path string, into any) {
		t.Helper()
		if err := json.Unmarshal([]byte(e.run(t, "get", "--raw", path)), into); err != nil {
			t.Fatalf("kubectl get --raw %s: %v", path, err)
		}
	}
	t.Run("version", func(t *testing.T) {
		var info version.Info
		decode(t, "/version", &info)
		if !strings.HasPrefix(info.GitVersion, "v") || info.Major == "" || info.Platform == "" {
			t.Errorf("/version %+v, want a gitVersion, a major version and a platform", info)
		}
	})
	t.Run("apis", func(t *testing.T) {
		var groups metav1.APIGroupList
		decode(t, "/apis", &groups)
		i := slices.IndexFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == testGroup })
		if groups.Kind != "APIGroupList" || i < 0 || groups.Groups[i].PreferredVersion.GroupVersion != testGroup+"/"+testVersion {
			t.Errorf("/apis: %+v, want an APIGroupList with %s preferring %s", groups, testGroup, testVersion)
		}
	})
	t.Run("group-version", func(t *testing.T) {
		var list metav1.APIResourceList
		decode(t, "/apis/"+testGroup+"/"+testVersion, &list)
		i := slices.IndexFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == "knobs" })
		if i < 0 || !list.APIResources[i].Namespaced || list.APIResources[i].Kind != "Knob" || !slices.Equal(list.APIResources[i].Categories, []string{knobCategory}) {
			t.Errorf("/apis/%s/%s: %+v, want knobs, namespaced, kind Knob, category %s", testGroup, testVersion, list.APIResources, knobCategory)
		}
		if !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == "knobs/status" }) {
			t.Errorf("/apis/%s/%s lists no knobs/status subresource: %+v", testGroup, testVersion, list.APIResources)
		}
	})
	t.Run("object", func(t *testing.T) {
		var got unstructured.Unstructured
		decode(t, "/apis/"+testGroup+"/"+testVersion+"/namespaces/"+e.ns+"/knobs/k1", &got.Object)
		if got.GetUID() != k1.GetUID() || got.GetResourceVersion() != k1.GetResourceVersion() || got.GetKind() != "Knob" {
			t.Errorf("kubectl get --raw of k1: %s uid %s rv %s, want Knob uid %s rv %s", got.GetKind(), got.GetUID(), got.GetResourceVersion(), k1.GetUID(), k1.GetResourceVersion())
		}
	})
	t.Run("not-found", func(t *testing.T) {
		wantOutput(t, e.fail(t, "get", "--raw", "/apis/"+testGroup+"/"+testVersion+"/namespaces/"+e.ns+"/knobs/nope"), "NotFound")
	})
}

// TestKubectlDescribe describes a knob: its metadata, its nested spec and
// status fields and an Events section.
func TestKubectlDescribe(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	u := knob(e.ns, "k1", map[string]any{"position": int64(10), "label": "volume", "limits": map[string]any{"min": int64(1), "max": int64(90)}})
	u.SetLabels(map[string]string{"app": "dial"})
	u.SetAnnotations(map[string]string{"note": "hi"})
	k1 := mustCreate(t, t.Context(), e.knobs, u)
	status := knobReadyStatus("True")
	status["phase"] = "Turning"
	e.setKnobStatus(t, "k1", status)

	got := kubectlDescribeLines(e.kn(t, "describe", "knob", "k1"))
	want := []string{
		"Name: k1",
		"Namespace: " + e.ns,
		"Labels: app=dial",
		"Annotations: note: hi",
		"API Version: " + testGroup + "/" + testVersion,
		"Kind: Knob",
		"Metadata:",
		"  UID: " + string(k1.GetUID()),
		"Spec:",
		"  Label: volume",
		"  Limits:",
		"    Max: 90",
		"    Min: 1",
		"  Mode: manual",
		"  Position: 10",
		"Status:",
		"  Conditions:",
		"    Message: set by the test",
		"    Status: True",
		"    Type: Ready",
		"  Phase: Turning",
		"Events: <none>",
	}
	// want is in order; other lines may come between.
	i := 0
	for _, line := range got {
		if i < len(want) && line == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("kubectl describe lacks %q (or has it out of order):\n%s", want[i], strings.Join(got, "\n"))
	}
	wantOutput(t, e.kn(t, "describe", "knobs", "-l", "app=dial"), "Name:         k1")
}

// kubectlDescribeLines returns kubectl describe's lines with their indentation
// kept and the runs of spaces after it collapsed.
func kubectlDescribeLines(out string) []string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
		lines = append(lines, indent+strings.Join(strings.Fields(line), " "))
	}
	return lines
}

// TestKubectlCRDUpdate changes the knob CRD with kubectl apply after
// kubectl has cached discovery and OpenAPI: a new documented field, a
// printer column and a short name are seen by the next kubectl commands.
func TestKubectlCRDUpdate(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	wantOutput(t, e.fail(t, "explain", "knobs.spec.hue"), `field "hue" does not exist`)
	wantOutput(t, e.fail(t, "-n", e.ns, "get", "kh"), `the server doesn't have a resource type "kh"`)

	crd := knobCRD()
	v := &crd.Spec.Versions[0]
	spec := v.Schema.OpenAPIV3Schema.Properties["spec"]
	spec.Properties["hue"] = apiextv1.JSONSchemaProps{Type: "string", Description: "Hue is the colour of the knob's cap."}
	v.Schema.OpenAPIV3Schema.Properties["spec"] = spec
	v.AdditionalPrinterColumns = append(v.AdditionalPrinterColumns, apiextv1.CustomResourceColumnDefinition{Name: "Hue", Type: "string", JSONPath: ".spec.hue"})
	crd.Spec.Names.ShortNames = append(crd.Spec.Names.ShortNames, "kh")
	e.write(t, "crd.yaml", crdManifest(t, crd))
	wantOutput(t, e.run(t, "apply", "-f", "crd.yaml"), "customresourcedefinition.apiextensions.k8s.io/"+knobsCRD+" configured")

	wantOutput(t, e.run(t, "explain", "knobs.spec.hue"), "FIELD: hue <string>", "Hue is the colour of the knob's cap.")
	e.write(t, "k1.yaml", "apiVersion: e2e.setpoint.dev/v1\nkind: Knob\nmetadata:\n  name: k1\nspec:\n  position: 1\n  hue: teal\n")
	wantOutput(t, e.kn(t, "apply", "-f", "k1.yaml"), knobsResource+"/k1 created")
	if got := nested[string](t, mustGet(t, t.Context(), e.knobs, "k1"), "spec", "hue"); got != "teal" {
		t.Errorf("spec.hue %q, want teal", got)
	}
	want := [][]string{{"NAME", "POSITION", "PHASE", "HUE"}, {"k1", "1", "", "teal"}}
	if got := kubectlTable(e.kn(t, "get", "kh")); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("kubectl get kh printed %q, want %q", got, want)
	}
}
