package discovery

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/setpoint/setpoint/internal/registry"
)

// openAPIDocs are the OpenAPI v3 documents of one snapshot.
type openAPIDocs struct {
	index []byte
	// byPath is keyed by path ("api/v1", "apis/<group>/<version>").
	byPath map[string]*gvDoc
}

// gvDoc is the OpenAPI v3 document of one group version.
type gvDoc struct {
	// resources are those the document was built from.
	resources []*registry.Resource
	doc       []byte
	hash      string
}

// openAPIIndex is the document at /openapi/v3, in the shape client-go's
// OpenAPI client decodes (k8s.io/kube-openapi/pkg/handler3's
// OpenAPIV3Discovery, not imported to keep its dependencies out of the
// server).
type openAPIIndex struct {
	Paths map[string]openAPIIndexEntry `json:"paths"`
}

// openAPIIndexEntry locates the document of one group version.
type openAPIIndexEntry struct {
	ServerRelativeURL string `json:"serverRelativeURL"`
}

// openAPIPath is the OpenAPI v3 path of a group version.
func openAPIPath(group, version string) string {
	if group == "" {
		return "api/" + version
	}
	return "apis/" + group + "/" + version
}

// buildOpenAPI builds the document of every served group version, reusing
// those of base (the documents of an earlier snapshot, may be nil) whose
// resources did not change, and the index listing them. Each URL in the
// index carries the hash of its document, so clients (client-go's cached
// OpenAPI client) fetch a document again exactly when it changed.
func buildOpenAPI(groups []registry.GroupVersions, base *openAPIDocs) *openAPIDocs {
	d := &openAPIDocs{byPath: map[string]*gvDoc{}}
	index := openAPIIndex{Paths: map[string]openAPIIndexEntry{}}
	for _, g := range groups {
		for _, v := range g.Versions {
			path := openAPIPath(g.Group, v)
			resources := g.Resources[v]
			var gd *gvDoc
			if base != nil {
				if old, ok := base.byPath[path]; ok && sameResources(old.resources, resources) {
					gd = old
				}
			}
			if gd == nil {
				doc, err := groupVersionDoc(g.Group, v, resources)
				if err != nil {
					// Unreachable: documents hold only JSON-decoded values
					// and generated models.
					continue
				}
				gd = &gvDoc{resources: resources, doc: doc, hash: fmt.Sprintf("%X", sha512.Sum512(doc))}
			}
			d.byPath[path] = gd
			index.Paths[path] = openAPIIndexEntry{
				ServerRelativeURL: "/openapi/v3/" + path + "?hash=" + gd.hash,
			}
		}
	}
	d.index, _ = json.Marshal(index) // a map of strings always encodes
	return d
}

// sameResources reports whether a and b describe the same resources for
// the OpenAPI documents. The registry keeps the Resource of an unchanged
// CRD but copies the built-in ones whenever it rebuilds its set, so those
// are compared by the fields the documents use.
func sameResources(a, b []*registry.Resource) bool {
	return slices.EqualFunc(a, b, func(x, y *registry.Resource) bool {
		return x == y || x.Group == y.Group && x.Version == y.Version && x.Resource == y.Resource &&
			x.Kind == y.Kind && x.ListKind == y.ListKind && x.Namespaced == y.Namespaced &&
			x.HasStatus == y.HasStatus && slices.Equal(x.Verbs, y.Verbs) && x.OpenAPISchema == y.OpenAPISchema
	})
}

// OpenAPIHash is the hash of the OpenAPI v3 document at path, as carried
// by its URL in OpenAPIIndex; false if not served. Kubernetes answers a
// request whose hash matches with immutable caching headers and redirects
// one whose hash is stale to the current URL.
func OpenAPIHash(reg *registry.Registry, path string) (string, bool) {
	d, ok := docsFor(reg).openAPI().byPath[path]
	if !ok {
		return "", false
	}
	return d.hash, true
}

// docHead and docTail frame every document: the OpenAPI version, the info
// object and the bearer token security scheme are the same in all.
var docHead, docTail = func() (string, string) {
	info, err := json.Marshal(spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: gitVersion}})
	if err != nil {
		panic(fmt.Sprintf("discovery: encode info: %v", err))
	}
	security, err := json.Marshal(spec3.SecuritySchemes{"BearerToken": &spec3.SecurityScheme{
		SecuritySchemeProps: spec3.SecuritySchemeProps{
			Type: "apiKey", Name: "authorization", In: "header",
			Description: "A bearer token in the Authorization header.",
		},
	}})
	if err != nil {
		panic(fmt.Sprintf("discovery: encode security schemes: %v", err))
	}
	return `{"openapi":"3.0.0","info":` + string(info),
		`},"securitySchemes":` + string(security) + `},"security":[{"BearerToken":[]}]}`
}()

// groupVersionDoc is the encoded OpenAPI v3 document of one group version.
// The document is assembled from separately encoded parts (each compact
// JSON) rather than encoded as one spec3.OpenAPI, so the models every
// document shares are encoded once per process and no part is re-scanned.
func groupVersionDoc(group, version string, resources []*registry.Resource) ([]byte, error) {
	schemas := newSchemaSet()
	for _, model := range []string{objectMetaModel, listMetaModel, statusModel, deleteOptionsModel, patchModel} {
		schemas.addModel(model)
	}
	paths := map[string]*spec3.Path{}
	for _, res := range resources {
		kindModel, listModel := schemas.kindModels(res)
		ops := operations{res: res, kindModel: kindModel, listModel: listModel}
		ops.addPaths(paths)
	}
	encoded, err := schemas.encode()
	if err != nil {
		return nil, err
	}
	encodedPaths, err := (&spec3.Paths{Paths: paths}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("discovery: encode OpenAPI paths of %s: %w", openAPIPath(group, version), err)
	}
	size := len(docHead) + len(encodedPaths) + len(docTail) + 64
	for model, schema := range encoded {
		size += len(model) + len(schema) + 4
	}
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(docHead)
	b.WriteString(`,"paths":`)
	b.Write(encodedPaths)
	b.WriteString(`,"components":{"schemas":{`)
	for i, model := range slices.Sorted(maps.Keys(encoded)) {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(model) // a string always encodes
		b.Write(name)
		b.WriteByte(':')
		b.Write(encoded[model])
	}
	b.WriteString(docTail)
	return b.Bytes(), nil
}

// operations builds the paths of one resource.
type operations struct {
	res                  *registry.Resource
	kindModel, listModel string
}

// addPaths adds the collection, object and status paths of the resource
// with one operation per verb it supports, and for namespaced resources
// the list across all namespaces.
func (o operations) addPaths(paths map[string]*spec3.Path) {
	res := o.res
	prefix := "/" + openAPIPath(res.Group, res.Version)
	collection := prefix + "/" + res.Resource
	var scope []*spec3.Parameter
	if res.Namespaced {
		collection = prefix + "/namespaces/{namespace}/" + res.Resource
		scope = []*spec3.Parameter{namespaceParam}
	}
	has := map[string]bool{}
	for _, v := range res.Verbs {
		has[v] = true
	}
	add := func(path string, params []*spec3.Parameter, ops map[string]*spec3.Operation) {
		if len(ops) == 0 {
			return
		}
		p := &spec3.Path{PathProps: spec3.PathProps{Parameters: slices.Concat(params, []*spec3.Parameter{prettyParam})}}
		p.Get, p.Post, p.Put, p.Patch, p.Delete = ops[http.MethodGet], ops[http.MethodPost], ops[http.MethodPut], ops[http.MethodPatch], ops[http.MethodDelete]
		paths[path] = p
	}
	ops := map[string]*spec3.Operation{}
	if has["list"] {
		ops[http.MethodGet] = o.op(opSpec{action: "list", verb: "list", namespaced: true,
			description: "List or watch " + res.Kind + " objects", params: listParams,
			responses: o.responses(o.listModel, http.StatusOK)})
	}
	if has["create"] {
		ops[http.MethodPost] = o.op(opSpec{action: "post", verb: "create", namespaced: true,
			description: "Create " + a(res.Kind), params: writeParams, body: o.body(o.kindModel),
			responses: o.responses(o.kindModel, http.StatusOK, http.StatusCreated, http.StatusAccepted)})
	}
	if has["deletecollection"] {
		ops[http.MethodDelete] = o.op(opSpec{action: "deletecollection", verb: "delete", infix: "Collection", namespaced: true,
			description: "Delete a collection of " + res.Kind + " objects", params: deleteCollectionParams, body: o.body(deleteOptionsModel),
			responses: o.responses(statusModel, http.StatusOK)})
	}
	add(collection, scope, ops)

	item := append(scope[:len(scope):len(scope)], nameParam(res.Kind))
	ops = map[string]*spec3.Operation{}
	if has["get"] {
		ops[http.MethodGet] = o.op(opSpec{action: "get", verb: "read", namespaced: true,
			description: "Read " + a(res.Kind), params: getParams,
			responses: o.responses(o.kindModel, http.StatusOK)})
	}
	if has["update"] {
		ops[http.MethodPut] = o.op(opSpec{action: "put", verb: "replace", namespaced: true,
			description: "Replace " + a(res.Kind), params: writeParams, body: o.body(o.kindModel),
			responses: o.responses(o.kindModel, http.StatusOK, http.StatusCreated)})
	}
	if has["patch"] {
		ops[http.MethodPatch] = o.op(opSpec{action: "patch", verb: "patch", namespaced: true,
			description: "Patch " + a(res.Kind), params: patchParams, body: o.patchBody(),
			responses: o.responses(o.kindModel, http.StatusOK, http.StatusCreated)})
	}
	if has["delete"] {
		ops[http.MethodDelete] = o.op(opSpec{action: "delete", verb: "delete", namespaced: true,
			description: "Delete " + a(res.Kind), params: deleteParams, body: o.body(deleteOptionsModel),
			responses: o.responses(statusModel, http.StatusOK, http.StatusAccepted)})
	}
	add(collection+"/{name}", item, ops)

	if res.HasStatus {
		add(collection+"/{name}/status", item, map[string]*spec3.Operation{
			http.MethodGet: o.op(opSpec{action: "get", verb: "read", namespaced: true, suffix: "Status",
				description: "Read the status of " + a(res.Kind), params: getParams,
				responses: o.responses(o.kindModel, http.StatusOK)}),
			http.MethodPut: o.op(opSpec{action: "put", verb: "replace", namespaced: true, suffix: "Status",
				description: "Replace the status of " + a(res.Kind), params: writeParams, body: o.body(o.kindModel),
				responses: o.responses(o.kindModel, http.StatusOK, http.StatusCreated)}),
			http.MethodPatch: o.op(opSpec{action: "patch", verb: "patch", namespaced: true, suffix: "Status",
				description: "Patch the status of " + a(res.Kind), params: patchParams, body: o.patchBody(),
				responses: o.responses(o.kindModel, http.StatusOK, http.StatusCreated)}),
		})
	}
	if res.Namespaced && has["list"] {
		add(prefix+"/"+res.Resource, nil, map[string]*spec3.Operation{
			http.MethodGet: o.op(opSpec{action: "list", verb: "list", suffix: "ForAllNamespaces",
				description: "List or watch " + res.Kind + " objects in every namespace", params: listParams,
				responses: o.responses(o.listModel, http.StatusOK)}),
		})
	}
}

// a prefixes a kind with its indefinite article.
func a(kind string) string {
	if kind != "" && strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// opSpec describes one operation.
type opSpec struct {
	// action is Kubernetes' x-kubernetes-action (list, post, get, ...).
	action string
	// verb, infix and suffix make the operation ID; namespaced adds
	// "Namespaced" for namespaced resources.
	verb, infix, suffix string
	namespaced          bool
	description         string
	params              []*spec3.Parameter
	body                *spec3.RequestBody
	responses           *spec3.Responses
}

// op is one operation. Its ID follows Kubernetes' pattern (verb, group
// version, kind, suffix: listExampleComV1NamespacedWidget). The
// group-version-kind extension is what kubectl uses to find the
// operations of a kind.
func (o operations) op(s opSpec) *spec3.Operation {
	res := o.res
	gv := camel(res.Group) + camel(res.Version)
	if res.Group == "" {
		gv = "Core" + camel(res.Version)
	}
	id := s.verb + gv + s.infix
	if s.namespaced && res.Namespaced {
		id += "Namespaced"
	}
	return &spec3.Operation{
		OperationProps: spec3.OperationProps{
			Tags:        []string{lowerFirst(gv)},
			Description: s.description,
			OperationId: id + res.Kind + s.suffix,
			Parameters:  s.params,
			RequestBody: s.body,
			Responses:   s.responses,
		},
		VendorExtensible: spec.VendorExtensible{Extensions: spec.Extensions{
			"x-kubernetes-action": s.action,
			gvkExtension:          gvkValue(res.Group, res.Version, res.Kind),
		}},
	}
}

// camel turns "example.com" into "ExampleCom" and "v1beta1" into "V1beta1".
func camel(s string) string {
	var b strings.Builder
	upper := true
	for _, r := range s {
		if r == '.' || r == '-' {
			upper = true
			continue
		}
		if upper {
			r = unicode.ToUpper(r)
			upper = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// lowerFirst lower-cases the first letter of s.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// jsonContent is the content of a JSON request or response of model.
func jsonContent(model string) map[string]*spec3.MediaType {
	return map[string]*spec3.MediaType{
		"application/json": {MediaTypeProps: spec3.MediaTypeProps{Schema: refSchema(model)}},
	}
}

// responses answers each of codes with model, and 401 without a body.
func (o operations) responses(model string, codes ...int) *spec3.Responses {
	r := &spec3.Responses{ResponsesProps: spec3.ResponsesProps{StatusCodeResponses: map[int]*spec3.Response{
		http.StatusUnauthorized: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}},
	}}}
	for _, c := range codes {
		r.StatusCodeResponses[c] = &spec3.Response{ResponseProps: spec3.ResponseProps{
			Description: http.StatusText(c), Content: jsonContent(model),
		}}
	}
	return r
}

// body is a required JSON request body of model.
func (o operations) body(model string) *spec3.RequestBody {
	return &spec3.RequestBody{RequestBodyProps: spec3.RequestBodyProps{Content: jsonContent(model), Required: model != deleteOptionsModel}}
}

// patchBody lists the patch formats the server applies: server-side
// apply, JSON patch and JSON merge patch, plus strategic merge patch for built-in kinds (which
// have no merge keys kubectl relies on, so it acts as a merge patch).
func (o operations) patchBody() *spec3.RequestBody {
	types := []string{"application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"}
	if _, builtin := builtinModels[groupVersion(o.res.Group, o.res.Version)+"/"+o.res.Kind]; builtin {
		types = append(types, "application/strategic-merge-patch+json")
	}
	content := map[string]*spec3.MediaType{}
	for _, t := range types {
		content[t] = &spec3.MediaType{MediaTypeProps: spec3.MediaTypeProps{Schema: refSchema(patchModel)}}
	}
	return &spec3.RequestBody{RequestBodyProps: spec3.RequestBodyProps{Content: content, Required: true}}
}
