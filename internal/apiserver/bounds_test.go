package apiserver_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"

	"github.com/setpoint/setpoint/internal/apiserver"
	"github.com/setpoint/setpoint/internal/registry"
)

// blobCRD is a CRD whose spec keeps any fields, so objects of it may nest
// as deep as a client sends.
const blobCRD = `{
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "blobs.example.com"},
  "spec": {
    "group": "example.com", "scope": "Namespaced",
    "names": {"plural": "blobs", "singular": "blob", "kind": "Blob", "listKind": "BlobList"},
    "versions": [{"name": "v1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]
  }
}`

const blobsPath = "/apis/example.com/v1/namespaces/default/blobs"

// nested returns a JSON value of depth levels: objects {"a": ...} around 1.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

// blob returns a Blob body whose spec is spec.
func blob(name, spec string) string {
	return `{"apiVersion":"example.com/v1","kind":"Blob","metadata":{"name":"` + name + `"},"spec":` + spec + `}`
}

func newBlobEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.expect(t, http.StatusCreated, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", blobCRD)
	e.waitServed(t, blobsPath)
	return e
}

// waitServed waits until path is served after its CRD was created.
func (e *env) waitServed(t *testing.T, path string) {
	t.Helper()
	deadline := timeout()
	for e.do(t, "GET", path, "").code != http.StatusOK {
		select {
		case <-deadline:
			t.Fatalf("%s never served", path)
		default:
		}
	}
}

// TestDepthBound sends bodies and patches one level deeper than allowed,
// as JSON, YAML and patches of every kind: each answers 400 and nothing
// changes, while the deepest allowed body is accepted.
func TestDepthBound(t *testing.T) {
	e := newBlobEnv(t)
	// The body nests one level, the object, around spec's value.
	deepest := nested(registry.MaxDepth - 1)
	tooDeep := nested(registry.MaxDepth)
	e.expect(t, http.StatusCreated, "POST", blobsPath, blob("ok", deepest))
	rv := resourceVersion(t, e.expect(t, http.StatusOK, "GET", blobsPath+"/ok", ""))

	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "POST", blobsPath, blob("deep", tooDeep))
	yamlDeep := "apiVersion: example.com/v1\nkind: Blob\nmetadata:\n  name: deep\nspec:\n"
	for i := range registry.MaxDepth {
		yamlDeep += strings.Repeat("  ", i+1) + "a:\n"
	}
	yamlDeep += strings.Repeat("  ", registry.MaxDepth+1) + "b: 1\n"
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "POST", blobsPath, yamlDeep, "Content-Type", "application/yaml")
	flow := "apiVersion: example.com/v1\nkind: Blob\nmetadata: {name: deep}\nspec: " + strings.Repeat("{a: ", registry.MaxDepth) + "1" + strings.Repeat("}", registry.MaxDepth) + "\n"
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "POST", blobsPath, flow, "Content-Type", "application/yaml")
	// Aliases nest deep documents in a few bytes.
	aliases := "apiVersion: example.com/v1\nkind: Blob\nmetadata: {name: deep}\nx0: &x0 [1]\n"
	for i := 1; i <= 2*registry.MaxDepth; i++ {
		aliases += fmt.Sprintf("x%d: &x%d [*x%d]\n", i, i, i-1)
	}
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "POST", blobsPath, aliases, "Content-Type", "application/yaml")
	e.expect(t, http.StatusNotFound, "GET", blobsPath+"/deep", "")

	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "PUT", blobsPath+"/ok",
		`{"apiVersion":"example.com/v1","kind":"Blob","metadata":{"name":"ok","resourceVersion":"`+rv+`"},"spec":`+tooDeep+`}`)
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "PATCH", blobsPath+"/ok", `{"spec":`+tooDeep+`}`,
		"Content-Type", "application/merge-patch+json")
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "PATCH", blobsPath+"/ok", `[{"op":"add","path":"/spec/b","value":`+tooDeep+`}]`,
		"Content-Type", "application/json-patch+json")
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "PATCH", blobsPath+"/ok?fieldManager=t", blob("ok", tooDeep),
		"Content-Type", "application/apply-patch+yaml")
	// A patch within the bound that would make the object deeper than
	// any body may: it replaces the deepest field.
	path := "/spec" + strings.Repeat("/a", registry.MaxDepth-1)
	e.expectStatus(t, http.StatusBadRequest, "BadRequest", "PATCH", blobsPath+"/ok", `[{"op":"replace","path":"`+path+`","value":`+nested(registry.MaxDepth-2)+`}]`,
		"Content-Type", "application/json-patch+json")
	if got := resourceVersion(t, e.expect(t, http.StatusOK, "GET", blobsPath+"/ok", "")); got != rv {
		t.Fatalf("a rejected write changed the object: resourceVersion %s, was %s", got, rv)
	}
}

// TestObjectSizeBound writes objects larger than the stored bound, within
// the body bound: create, dry run, update and patch answer 413 and nothing
// changes.
func TestObjectSizeBound(t *testing.T) {
	e := newBlobEnv(t)
	big := `{"data":"` + strings.Repeat("x", registry.DefaultMaxObjectBytes) + `"}`
	e.expectStatus(t, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "POST", blobsPath, blob("big", big))
	e.expectStatus(t, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "POST", blobsPath+"?dryRun=All", blob("big", big))
	e.expect(t, http.StatusNotFound, "GET", blobsPath+"/big", "")

	half := `"` + strings.Repeat("y", registry.DefaultMaxObjectBytes/2) + `"`
	e.expect(t, http.StatusCreated, "POST", blobsPath, blob("b", `{"one":`+half+`}`))
	rv := resourceVersion(t, e.expect(t, http.StatusOK, "GET", blobsPath+"/b", ""))
	e.expectStatus(t, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "PATCH", blobsPath+"/b", `{"spec":{"two":`+half+`,"three":"z"}}`,
		"Content-Type", "application/merge-patch+json")
	e.expectStatus(t, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "PUT", blobsPath+"/b",
		`{"apiVersion":"example.com/v1","kind":"Blob","metadata":{"name":"b","resourceVersion":"`+rv+`"},"spec":{"one":`+half+`,"two":`+half+`}}`)
	if got := resourceVersion(t, e.expect(t, http.StatusOK, "GET", blobsPath+"/b", "")); got != rv {
		t.Fatalf("a rejected write changed the object: resourceVersion %s, was %s", got, rv)
	}
}

// TestListLimitClamped checks that a limit over the cap is served as the
// cap, with a continue token that reaches the rest.
func TestListLimitClamped(t *testing.T) {
	defer apiserver.SetMaxListLimit(2)()
	e := newBlobEnv(t)
	for i := range 3 {
		e.expect(t, http.StatusCreated, "POST", blobsPath, blob(fmt.Sprint("b", i), "{}"))
	}
	page := e.expect(t, http.StatusOK, "GET", blobsPath+"?limit=500", "").json(t)
	cont, _ := page["metadata"].(map[string]any)["continue"].(string)
	if n := len(page["items"].([]any)); n != 2 || cont == "" {
		t.Fatalf("limit=500 over a cap of 2: %d items, continue %q", n, cont)
	}
	rest := e.expect(t, http.StatusOK, "GET", blobsPath+"?limit=500&continue="+url.QueryEscape(cont), "").json(t)
	if n := len(rest["items"].([]any)); n != 1 {
		t.Fatalf("second page: %d items, want 1", n)
	}
	if all := e.expect(t, http.StatusOK, "GET", blobsPath, "").json(t); len(all["items"].([]any)) != 3 {
		t.Fatalf("a list without limit was cut: %d items", len(all["items"].([]any)))
	}
}

// TestSelectorBounds sends selectors over each bound: 400.
func TestSelectorBounds(t *testing.T) {
	e := newEnv(t)
	values := make([]string, 1001)
	for i := range values {
		values[i] = fmt.Sprint("v", i)
	}
	terms := make([]string, 101)
	for i := range terms {
		terms[i] = fmt.Sprint("k", i)
	}
	for name, q := range map[string]string{
		"long":       "labelSelector=a%3D" + strings.Repeat("b", 16<<10),
		"terms":      "labelSelector=" + url.QueryEscape(strings.Join(terms, ",")),
		"values":     "labelSelector=" + url.QueryEscape("a in ("+strings.Join(values, ",")+")"),
		"fieldsLong": "fieldSelector=metadata.name%3D" + strings.Repeat("b", 16<<10),
	} {
		t.Run(name, func(t *testing.T) {
			e.expectStatus(t, http.StatusBadRequest, "BadRequest", "GET", "/api/v1/namespaces/default/configmaps?"+q, "")
			e.expectStatus(t, http.StatusBadRequest, "BadRequest", "GET", "/api/v1/namespaces/default/configmaps?watch=true&"+q, "")
		})
	}
	e.expect(t, http.StatusOK, "GET", "/api/v1/namespaces/default/configmaps?labelSelector="+url.QueryEscape(strings.Join(terms[:100], ",")), "")
}

// resourceVersion reads an object answer's metadata.resourceVersion.
func resourceVersion(t *testing.T, r response) string {
	t.Helper()
	rv, _ := r.json(t)["metadata"].(map[string]any)["resourceVersion"].(string)
	return rv
}

// TestProtobufSchemaDepthBound posts CRDs in protobuf whose schema nests
// items in items: one deeper than a JSON body may be answers 400 before
// it is converted (which costs time quadratic in the depth), a shallow
// one is created.
func TestProtobufSchemaDepthBound(t *testing.T) {
	e := newEnv(t)
	scheme := runtime.NewScheme()
	scheme.AddKnownTypes(apiextensionsv1.SchemeGroupVersion, &apiextensionsv1.CustomResourceDefinition{})
	encoder := protobuf.NewSerializer(scheme, scheme)
	crd := func(name string, depth int) string {
		schema := &apiextensionsv1.JSONSchemaProps{Type: "string"}
		for range depth {
			schema = &apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: schema}}
		}
		obj := &apiextensionsv1.CustomResourceDefinition{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
			ObjectMeta: metav1.ObjectMeta{Name: name + ".example.com"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: name, Kind: "Deep", ListKind: "DeepList"},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": *schema}}}}},
			},
		}
		var b strings.Builder
		if err := encoder.Encode(obj, &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	const path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	st := e.expectStatus(t, http.StatusBadRequest, "BadRequest", "POST", path, crd("deeps", 10*registry.MaxDepth), "Content-Type", "application/vnd.kubernetes.protobuf")
	if msg, _ := st["message"].(string); !strings.Contains(msg, "nests schemas") {
		t.Errorf("deep protobuf CRD answered %q, not the check made before conversion", msg)
	}
	e.expect(t, http.StatusNotFound, "GET", path+"/deeps.example.com", "")
	e.expect(t, http.StatusCreated, "POST", path, crd("shallows", 10), "Content-Type", "application/vnd.kubernetes.protobuf")
}
