package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/setpoint/setpoint/internal/storage"
)

// Get returns the current object.
func (r *Registry) Get(ctx context.Context, res *Resource, namespace, name string) (*unstructured.Unstructured, error) {
	o, err := r.store.Get(ctx, r.key(res, namespace, name))
	if err != nil {
		return nil, storageError(err, res, name)
	}
	return r.output(res, o)
}

func (r *Registry) key(res *Resource, namespace, name string) storage.Key {
	if !res.Namespaced {
		namespace = ""
	}
	return storage.Key{Resource: res.StorageKey, Namespace: namespace, Name: name}
}

// fieldFilter is a parsed field selector: equalities on metadata.name and
// metadata.namespace go to the store, the rest is checked per object.
type fieldFilter struct {
	name, namespace       string
	notName, notNamespace []string
	// terms are the requirements on the resource's SelectableFields.
	terms []fieldTerm
	// none is set when contradicting equalities select nothing.
	none bool
}

// parseFields splits sel into what the store answers and what is checked
// per object. metadata.name, metadata.namespace and the resource's
// SelectableFields are supported.
func parseFields(res *Resource, namespace string, sel fields.Selector) (fieldFilter, error) {
	f := fieldFilter{namespace: namespace}
	if sel == nil {
		return f, nil
	}
	for _, req := range sel.Requirements() {
		var eq *string
		var ne *[]string
		switch req.Field {
		case "metadata.name":
			eq, ne = &f.name, &f.notName
		case "metadata.namespace":
			if !res.Namespaced {
				// Cluster-scoped objects have an empty namespace.
				eq, ne = new(string), new([]string)
			} else {
				eq, ne = &f.namespace, &f.notNamespace
			}
		default:
			t, ok := selectableTerm(res, req.Field, req.Operator, req.Value)
			if !ok {
				return f, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
			f.terms = append(f.terms, t)
			continue
		}
		switch req.Operator {
		case selection.Equals, selection.DoubleEquals:
			if *eq != "" && *eq != req.Value {
				f.none = true
			}
			*eq = req.Value
			if req.Field == "metadata.namespace" && !res.Namespaced && req.Value != "" {
				f.none = true
			}
		case selection.NotEquals:
			*ne = append(*ne, req.Value)
			if req.Field == "metadata.namespace" && !res.Namespaced && req.Value == "" {
				f.none = true
			}
		default:
			return f, apierrors.NewBadRequest(fmt.Sprintf("operator %q is not supported for field selectors", req.Operator))
		}
	}
	return f, nil
}

// match checks what the store did not: the inequalities on name and
// namespace and the terms on selectable fields.
func (f fieldFilter) match(o storage.Object) bool {
	return f.matchKey(o) && matchTerms(f.terms, o)
}

// matchKey checks the inequalities on name and namespace, which no update
// changes.
func (f fieldFilter) matchKey(o storage.Object) bool {
	for _, n := range f.notName {
		if o.Name == n {
			return false
		}
	}
	for _, n := range f.notNamespace {
		if o.Namespace == n {
			return false
		}
	}
	return true
}

// continueToken is the decoded form of a list continue parameter.
type continueToken struct {
	Rev       int64  `json:"rev"`
	Namespace string `json:"ns,omitempty"`
	Name      string `json:"name"`
}

func encodeContinue(t continueToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Rev <= 0 || t.Name == "" {
		return t, apierrors.NewBadRequest(fmt.Sprintf("invalid continue token: %q", s))
	}
	return t, nil
}

// parseRV parses a resourceVersion parameter ("" is 0).
func parseRV(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	rv, err := strconv.ParseInt(s, 10, 64)
	if err != nil || rv < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", s))
	}
	return rv, nil
}

// listRevision decides which revision a list reads (0 = latest) from the
// resourceVersion parameters, as Kubernetes interprets them.
func (r *Registry) listRevision(ctx context.Context, opts ListOptions) (int64, error) {
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return 0, err
	}
	match := opts.ResourceVersionMatch
	if match != "" && opts.ResourceVersion == "" {
		return 0, apierrors.NewBadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
	}
	switch match {
	case "", metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact:
	default:
		return 0, apierrors.NewBadRequest(fmt.Sprintf("unsupported resourceVersionMatch %q", match))
	}
	if rv == 0 {
		if match == metav1.ResourceVersionMatchExact {
			return 0, apierrors.NewBadRequest("resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"")
		}
		return 0, nil
	}
	cur, err := r.store.CurrentRevision(ctx)
	if err != nil {
		return 0, storageError(err, &Resource{}, "")
	}
	if rv > cur {
		return 0, tooLargeRV(rv, cur)
	}
	if match == metav1.ResourceVersionMatchExact || (match == "" && opts.Limit > 0) {
		return rv, nil
	}
	return 0, nil
}

func tooLargeRV(rv, cur int64) error {
	e := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", rv, cur), 1)
	e.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
	return e
}

// tooOldRV is the 410 answer for a compacted revision.
func (r *Registry) tooOldRV(ctx context.Context, rv int64) error {
	compacted, _ := r.store.CompactedRevision(ctx)
	return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, compacted))
}

// continueExpiredMessage is Kubernetes' text for a compacted continue token.
const continueExpiredMessage = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."

// List returns a consistent page of objects (kind <Kind>List with
// metadata.resourceVersion and continue).
func (r *Registry) List(ctx context.Context, res *Resource, namespace string, opts ListOptions) (*unstructured.UnstructuredList, error) {
	objs, rev, cont, err := r.list(ctx, res, namespace, opts, nil)
	if err != nil {
		return nil, err
	}
	out := listHead(res, rev, cont)
	out.Items = make([]unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		u, err := r.output(res, o)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, *u)
	}
	return out, nil
}

// ListJSON is List for callers that write the JSON themselves: the list
// without items, and the items, which the caller encodes one at a time
// (see JSONItems).
func (r *Registry) ListJSON(ctx context.Context, res *Resource, namespace string, opts ListOptions) (*unstructured.UnstructuredList, JSONItems, error) {
	var release []func()
	objs, rev, cont, err := r.list(ctx, res, namespace, opts, &release)
	if err != nil {
		for _, f := range release {
			f()
		}
		return nil, JSONItems{}, err
	}
	return listHead(res, rev, cont), JSONItems{r: r, res: res, objs: objs, release: release}, nil
}

// JSONItems are the items of a list read by ListJSON, each encoded when
// it is written, so that a large list never exists whole as JSON.
type JSONItems struct {
	r       *Registry
	res     *Resource
	objs    []storage.Object
	release []func()
}

// Release lets the store reuse the memory of the items' stored values
// (see storage.ListResult.Release): call it once, after the last
// AppendJSON. Not calling it is safe.
func (it JSONItems) Release() {
	for _, f := range it.release {
		f()
	}
}

// Len returns the number of items.
func (it JSONItems) Len() int { return len(it.objs) }

// AppendJSON appends item i to dst as encoding/json renders the object
// List returns (HTML escaping off, no trailing newline), byte for byte.
// Items stored as this registry writes them are made from the stored
// bytes without decoding them. On error dst comes back unchanged.
func (it JSONItems) AppendJSON(dst []byte, i int) ([]byte, error) {
	return it.r.appendServedJSON(dst, it.res, it.objs[i])
}

// listHead is a list of res at rev, without items.
func listHead(res *Resource, rev int64, cont string) *unstructured.UnstructuredList {
	out := &unstructured.UnstructuredList{Object: map[string]any{
		"apiVersion": res.apiVersion(), "kind": res.ListKind,
	}}
	out.SetResourceVersion(strconv.FormatInt(rev, 10))
	out.SetContinue(cont)
	return out
}

// list reads one page of stored objects and returns it with the snapshot
// revision and the continue token for the next page. When release is not
// nil, the store's Release funcs of the pages read are appended to it.
func (r *Registry) list(ctx context.Context, res *Resource, namespace string, opts ListOptions, release *[]func()) ([]storage.Object, int64, string, error) {
	if !res.Namespaced {
		namespace = ""
	}
	ff, err := parseFields(res, namespace, opts.Fields)
	if err != nil {
		return nil, 0, "", err
	}
	if namespace != "" && ff.namespace != namespace {
		ff.none = true
	}
	sopts := storage.ListOptions{
		Resource: res.StorageKey, Namespace: ff.namespace, Name: ff.name,
		Labels: opts.Labels, Limit: int(max(opts.Limit, 0)),
		// Objects are served from their values.
		OmitLabels: true,
	}
	if opts.Continue != "" {
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			return nil, 0, "", apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, 0, "", err
		}
		sopts.Revision = tok.Rev
		sopts.After = &storage.Key{Resource: res.StorageKey, Namespace: tok.Namespace, Name: tok.Name}
	} else if sopts.Revision, err = r.listRevision(ctx, opts); err != nil {
		return nil, 0, "", err
	}
	if ff.none {
		rev, err := r.store.CurrentRevision(ctx)
		return nil, rev, "", storageError(err, res, "")
	}
	var objs []storage.Object
	limit := sopts.Limit
	for {
		page, err := r.store.List(ctx, sopts)
		switch {
		case errors.Is(err, storage.ErrCompacted) && opts.Continue != "":
			return nil, 0, "", apierrors.NewResourceExpired(continueExpiredMessage)
		case errors.Is(err, storage.ErrCompacted):
			return nil, 0, "", r.tooOldRV(ctx, sopts.Revision)
		case errors.Is(err, storage.ErrFutureRevision):
			cur, _ := r.store.CurrentRevision(ctx)
			return nil, 0, "", tooLargeRV(sopts.Revision, cur)
		case err != nil:
			return nil, 0, "", storageError(err, res, "")
		}
		if release != nil && page.Release != nil {
			*release = append(*release, page.Release)
		}
		if !page.More || len(page.Objects) == 0 {
			return appendMatching(objs, page.Objects, ff), page.Revision, "", nil
		}
		last := page.Objects[len(page.Objects)-1]
		objs = appendMatching(objs, page.Objects, ff)
		if limit == 0 || len(objs) >= limit {
			return objs, page.Revision, encodeContinue(continueToken{Rev: page.Revision, Namespace: last.Namespace, Name: last.Name}), nil
		}
		// Filters removed objects: fill the page on the same snapshot.
		sopts.Revision = page.Revision
		sopts.After = &last.Key
		sopts.Limit = limit - len(objs)
	}
}

// appendMatching appends the objects of page that ff matches to objs,
// filtering page in place; the first page becomes objs without a copy.
func appendMatching(objs, page []storage.Object, ff fieldFilter) []storage.Object {
	page = slices.DeleteFunc(page, func(o storage.Object) bool { return !ff.match(o) })
	if objs == nil {
		return page
	}
	return append(objs, page...)
}
