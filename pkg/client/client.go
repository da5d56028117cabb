package client

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	kjson "sigs.k8s.io/json"
)

// Object is what the typed client works with: a pointer to a Go struct
// that embeds metav1.TypeMeta (json:",inline") and metav1.ObjectMeta
// (json:"metadata"). *unstructured.Unstructured satisfies it too.
type Object interface {
	metav1.Object
	GetObjectKind() schema.ObjectKind
}

// Resource names a served resource.
type Resource struct {
	// Group is the API group; "" is the core group (ConfigMaps, Secrets).
	Group string
	// Version is the API version, such as "v1".
	Version string
	// Resource is the plural lower-case name in URLs, such as "configmaps".
	Resource string
	// Kind is the object kind, such as "ConfigMap".
	Kind string
	// Namespaced says whether objects live in namespaces.
	Namespaced bool
}

// GroupVersionKind returns the apiVersion and kind of the resource's
// objects.
func (r Resource) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// GroupVersionResource returns the group, version and resource name.
func (r Resource) GroupVersionResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource}
}

// Client reads and writes the objects of one resource as values of T.
// It is safe for concurrent use. Objects it returns belong to the caller;
// objects passed to it are not modified.
//
// Create and Update send all of T, so a T that leaves out fields of the
// resource clears them on Update; change such objects with Patch. With T
// metav1.PartialObjectMetadata the client asks the server for metadata
// alone (as client-go's metadata client does), which makes lists and
// watches of large objects cheap; returned objects carry the resource's
// apiVersion and kind.
type Client[T any, PT interface {
	*T
	Object
}] struct {
	conn *conn
	res  Resource
	gvk  schema.GroupVersionKind
	// unstructured is set when T is unstructured.Unstructured, whose
	// objects are decoded as maps.
	unstructured bool
	// metadataOnly is set when T is metav1.PartialObjectMetadata: the
	// server is asked for metadata alone.
	metadataOnly bool
}

// Unstructured is the client for a resource without a Go type: objects
// are *unstructured.Unstructured.
type Unstructured = Client[unstructured.Unstructured, *unstructured.Unstructured]

// New returns a client for res on the server cfg points at. Requests use
// cfg's transport (TLS, authentication, Timeout, UserAgent) and its rate
// limit: cfg.RateLimiter, else QPS and Burst with client-go's defaults (5
// and 10) when zero; a negative QPS sends without a client-side limit.
func New[T any, PT interface {
	*T
	Object
}](cfg *rest.Config, res Resource) (*Client[T, PT], error) {
	if res.Version == "" || res.Resource == "" || res.Kind == "" {
		return nil, fmt.Errorf("client: resource %+v needs Version, Resource and Kind", res)
	}
	c, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	_, isUnstructured := any(new(T)).(*unstructured.Unstructured)
	_, isMetadata := any(new(T)).(*metav1.PartialObjectMetadata)
	return &Client[T, PT]{conn: c, res: res, gvk: res.GroupVersionKind(), unstructured: isUnstructured, metadataOnly: isMetadata}, nil
}

// NewUnstructured returns a client for res whose objects are
// *unstructured.Unstructured; it is New for that type.
func NewUnstructured(cfg *rest.Config, res Resource) (*Unstructured, error) {
	return New[unstructured.Unstructured](cfg, res)
}

// Resource returns the resource the client serves.
func (c *Client[T, PT]) Resource() Resource { return c.res }

// List is one answer to a list: the objects, the resourceVersion the list
// was read at, and the token for the next page ("" on the last page).
type List[T any] struct {
	// Items are the objects, with apiVersion and kind set.
	Items []T
	// ResourceVersion is the version the list was read at; watch from
	// it to see every later change.
	ResourceVersion string
	// Continue is the token for the next page, "" on the last page.
	Continue string
}

// Get returns the object namespace/name (namespace is ignored for
// cluster-scoped resources). A missing object is an error for which
// IsNotFound is true.
func (c *Client[T, PT]) Get(ctx context.Context, namespace, name string) (PT, error) {
	path, err := c.objectPath(namespace, name)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, request{method: http.MethodGet, path: path, verb: "get", name: name})
}

// List returns one page of the objects in namespace ("" lists all
// namespaces) that match opts' selectors. opts.Limit asks for a page of
// at most that many objects; pass List.Continue as opts.Continue for the
// next. opts.Watch is ignored.
func (c *Client[T, PT]) List(ctx context.Context, namespace string, opts metav1.ListOptions) (*List[T], error) {
	opts.Watch = false
	q, err := encodeParams(&opts)
	if err != nil {
		return nil, err
	}
	data, err := c.conn.do(ctx, request{method: http.MethodGet, path: c.collectionPath(namespace), query: q, verb: "list", resource: c.groupResource(), accept: c.accept()}, c.conn.maxListBytes)
	if err != nil {
		return nil, err
	}
	return c.decodeList(data)
}

// defaultPageSize is the page size of ListAll when opts.Limit is zero.
const defaultPageSize = 500

// ListAll lists every matching object, following continue tokens in
// pages of opts.Limit (default 500). The pages are one consistent
// snapshot; its resourceVersion is returned. When a continue token
// expires mid-way (410), ListAll lists once more without pages, as
// client-go's pager does.
func (c *Client[T, PT]) ListAll(ctx context.Context, namespace string, opts metav1.ListOptions) (*List[T], error) {
	if opts.Limit == 0 {
		opts.Limit = defaultPageSize
	}
	all := &List[T]{}
	for {
		page, err := c.List(ctx, namespace, opts)
		if err != nil {
			if opts.Continue != "" && IsGone(err) {
				opts.Limit, opts.Continue = 0, ""
				return c.List(ctx, namespace, opts)
			}
			return nil, err
		}
		if all.Items == nil {
			all.Items = page.Items
		} else {
			all.Items = append(all.Items, page.Items...)
		}
		all.ResourceVersion = page.ResourceVersion
		if page.Continue == "" {
			return all, nil
		}
		// A continue token carries its own resourceVersion; Kubernetes
		// rejects both together.
		opts.Continue, opts.ResourceVersion, opts.ResourceVersionMatch = page.Continue, "", ""
	}
}

// Create creates obj in its namespace and returns the object as stored.
// apiVersion and kind are sent from the client's Resource. A taken name is
// an error for which IsAlreadyExists is true.
func (c *Client[T, PT]) Create(ctx context.Context, obj PT, opts metav1.CreateOptions) (PT, error) {
	body, err := c.encode(obj)
	if err != nil {
		return nil, err
	}
	if c.res.Namespaced && obj.GetNamespace() == "" {
		return nil, fmt.Errorf("create %s %q: %w", c.res.Kind, obj.GetName(), ErrNoNamespace)
	}
	q, err := encodeParams(&opts)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, request{method: http.MethodPost, path: c.collectionPath(obj.GetNamespace()), query: q, contentType: "application/json", body: body, verb: "create", name: obj.GetName()})
}

// Update replaces obj (found by its namespace and name) and returns the
// object as stored. A resourceVersion in obj makes the update conditional:
// a stale one is an error for which IsConflict is true. The status
// subresource, when the resource has one, is not changed.
func (c *Client[T, PT]) Update(ctx context.Context, obj PT, opts metav1.UpdateOptions) (PT, error) {
	return c.put(ctx, obj, opts, "update")
}

// UpdateStatus replaces the status of obj through the status subresource
// and returns the object as stored; the rest of obj is not changed.
func (c *Client[T, PT]) UpdateStatus(ctx context.Context, obj PT, opts metav1.UpdateOptions) (PT, error) {
	return c.put(ctx, obj, opts, "update", "status")
}

func (c *Client[T, PT]) put(ctx context.Context, obj PT, opts metav1.UpdateOptions, verb string, sub ...string) (PT, error) {
	body, err := c.encode(obj)
	if err != nil {
		return nil, err
	}
	path, err := c.objectPath(obj.GetNamespace(), obj.GetName(), sub...)
	if err != nil {
		return nil, err
	}
	q, err := encodeParams(&opts)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, request{method: http.MethodPut, path: path, query: q, contentType: "application/json", body: body, verb: verb, name: obj.GetName()})
}

// Patch applies data, a patch of type pt, to the object namespace/name, or
// to its subresource (such as "status" or "scale") when one is named, and
// returns the object as stored. types.ApplyPatchType patches (server-side
// apply, YAML or JSON) need opts.FieldManager; opts.Force takes over fields
// other managers own. An apply patch creates a missing object.
func (c *Client[T, PT]) Patch(ctx context.Context, namespace, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresource ...string) (PT, error) {
	path, err := c.objectPath(namespace, name, subresource...)
	if err != nil {
		return nil, err
	}
	q, err := encodeParams(&opts)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, request{method: http.MethodPatch, path: path, query: q, contentType: string(pt), body: data, verb: "patch", name: name})
}

// Delete deletes the object namespace/name. opts.Preconditions make it
// conditional (IsConflict when they fail), opts.PropagationPolicy says
// what happens to dependents. An object with finalizers is only marked
// for deletion; Delete returns once the server accepted the request.
func (c *Client[T, PT]) Delete(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
	path, err := c.objectPath(namespace, name)
	if err != nil {
		return err
	}
	opts.TypeMeta = metav1.TypeMeta{APIVersion: metav1.SchemeGroupVersion.String(), Kind: "DeleteOptions"}
	body, err := json.Marshal(&opts)
	if err != nil {
		return fmt.Errorf("client: encode DeleteOptions: %w", err)
	}
	_, err = c.conn.do(ctx, request{method: http.MethodDelete, path: path, contentType: "application/json", body: body, verb: "delete", resource: c.groupResource(), name: name}, c.conn.maxObjectBytes)
	return err
}

// call makes a request whose answer is one object.
func (c *Client[T, PT]) call(ctx context.Context, r request) (PT, error) {
	r.resource, r.accept = c.groupResource(), c.accept()
	data, err := c.conn.do(ctx, r, c.conn.maxObjectBytes)
	if err != nil {
		return nil, err
	}
	return c.decode(data)
}

// metadataAccept asks for PartialObjectMetadata (or its list, whichever
// fits the verb), else the full object.
const metadataAccept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1," +
	"application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

// accept is the Accept header of the client's requests.
func (c *Client[T, PT]) accept() string {
	if c.metadataOnly {
		return metadataAccept
	}
	return ""
}

func (c *Client[T, PT]) groupResource() schema.GroupResource {
	return schema.GroupResource{Group: c.res.Group, Resource: c.res.Resource}
}

// collectionPath is the URL path of the resource in namespace, or in all
// namespaces when namespace is "" or the resource is cluster-scoped.
func (c *Client[T, PT]) collectionPath(namespace string) string {
	p := "/apis/" + c.res.Group + "/" + c.res.Version
	if c.res.Group == "" {
		p = "/api/" + c.res.Version
	}
	if c.res.Namespaced && namespace != "" {
		p += "/namespaces/" + url.PathEscape(namespace)
	}
	return p + "/" + c.res.Resource
}

// objectPath is the URL path of one object or its subresource.
func (c *Client[T, PT]) objectPath(namespace, name string, sub ...string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%s: %w", c.res.Kind, ErrNoName)
	}
	if c.res.Namespaced && namespace == "" {
		return "", fmt.Errorf("%s %q: %w", c.res.Kind, name, ErrNoNamespace)
	}
	p := c.collectionPath(namespace) + "/" + url.PathEscape(name)
	for _, s := range sub {
		p += "/" + url.PathEscape(s)
	}
	return p, nil
}

// encode returns the JSON of obj with the client's apiVersion and kind,
// leaving obj unchanged.
func (c *Client[T, PT]) encode(obj PT) ([]byte, error) {
	if obj == nil {
		return nil, ErrNilObject
	}
	var v any = obj
	if obj.GetObjectKind().GroupVersionKind() != c.gvk {
		if c.unstructured {
			m := maps.Clone(any(obj).(*unstructured.Unstructured).Object)
			if m == nil {
				m = map[string]any{}
			}
			m["apiVersion"], m["kind"] = c.gvk.GroupVersion().String(), c.gvk.Kind
			v = m
		} else {
			cp := *obj
			PT(&cp).GetObjectKind().SetGroupVersionKind(c.gvk)
			v = PT(&cp)
		}
	} else if c.unstructured {
		v = any(obj).(*unstructured.Unstructured).Object
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s %q: %w", c.res.Kind, obj.GetName(), err)
	}
	return data, nil
}

// decode decodes one object and fills in apiVersion and kind when the
// server left them out.
func (c *Client[T, PT]) decode(data []byte) (PT, error) {
	obj := PT(new(T))
	if c.unstructured {
		var m map[string]any
		if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &m); err != nil {
			return nil, fmt.Errorf("client: decode %s: %w", c.res.Kind, err)
		}
		any(obj).(*unstructured.Unstructured).Object = m
	} else if err := kjson.UnmarshalCaseSensitivePreserveInts(data, obj); err != nil {
		return nil, fmt.Errorf("client: decode %s: %w", c.res.Kind, err)
	}
	c.setKind(obj)
	return obj, nil
}

// setKind sets the resource's apiVersion and kind on obj when the server
// left them out, or sent those of PartialObjectMetadata.
func (c *Client[T, PT]) setKind(obj PT) {
	if c.metadataOnly || obj.GetObjectKind().GroupVersionKind().Empty() {
		obj.GetObjectKind().SetGroupVersionKind(c.gvk)
	}
}

// listBody is the JSON of a list answer.
type listBody[T any] struct {
	Metadata metav1.ListMeta `json:"metadata"`
	Items    []T             `json:"items"`
}

// decodeList decodes a list answer; items get apiVersion and kind, which
// Kubernetes leaves out of built-in types' list items.
func (c *Client[T, PT]) decodeList(data []byte) (*List[T], error) {
	var items []T
	var meta metav1.ListMeta
	if c.unstructured {
		var body listBody[map[string]any]
		if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &body); err != nil {
			return nil, fmt.Errorf("client: decode %s list: %w", c.res.Kind, err)
		}
		meta = body.Metadata
		items = make([]T, len(body.Items))
		for i, m := range body.Items {
			any(&items[i]).(*unstructured.Unstructured).Object = m
		}
	} else {
		var body listBody[T]
		if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &body); err != nil {
			return nil, fmt.Errorf("client: decode %s list: %w", c.res.Kind, err)
		}
		meta, items = body.Metadata, body.Items
	}
	for i := range items {
		c.setKind(PT(&items[i]))
	}
	return &List[T]{Items: items, ResourceVersion: meta.ResourceVersion, Continue: meta.Continue}, nil
}

// encodeParams turns options (ListOptions, CreateOptions and so on) into
// query parameters.
func encodeParams(opts runtime.Object) (url.Values, error) {
	q, err := metav1.ParameterCodec.EncodeParameters(opts, metav1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("client: encode %T: %w", opts, err)
	}
	return q, nil
}
