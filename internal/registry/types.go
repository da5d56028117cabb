package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/setpoint/setpoint/internal/feed"
	"github.com/setpoint/setpoint/internal/storage"
)

// Registry serves resources over a Store.
type Registry struct {
	store    storage.Store
	feed     *feed.Feed
	now      func() time.Time
	eventTTL time.Duration
	// webhooks runs admission webhooks (nil: none); webhookConfigs
	// mirrors the configurations it is given.
	webhooks       WebhookAdmission
	webhookConfigs webhookConfigs
	// maxObjectBytes is Options.MaxObjectBytes with its default.
	maxObjectBytes int

	mu sync.RWMutex
	// crds holds the latest known state of every CRD by name, with the
	// revision it was read at, so that feed events and local writes can be
	// applied in any order.
	crds map[string]crdEntry
	// namespaces is nil without a feed, which would keep it current.
	namespaces *namespaceCache
	// mirrors are the local views of stored resources Start loads and
	// keeps current (CRDs, namespaces, and those added by Follow); their
	// progress, nil without a feed, tells Sync how far they applied it.
	// Set by New and Follow, before Start; read-only after.
	mirrors []mirror
	// reviewer answers the review resources; nil leaves them unserved.
	// Set by ServeReviews, before Start.
	reviewer Reviewer
	// escalation guards writes of RBAC objects; nil lets them all
	// through. Set by GuardEscalation, before Start.
	escalation EscalationGuard
	// served maps group/version/resource to the served Resource.
	served map[gvr]*Resource
	groups []GroupVersions
	// managers caches the FieldManagers of served resources
	// (fieldManagerKey to *fieldManagers).
	managers sync.Map

	// kick wakes the cleanup worker.
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// spawnMu guards stopped and wg.Go, so no goroutine starts once Close
	// waits.
	spawnMu sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

type gvr struct{ group, version, resource string }

// crdEntry is one CRD as last seen; crd is nil once it is deleted.
type crdEntry struct {
	rev       int64
	crd       *apiextensionsv1.CustomResourceDefinition
	resources []*Resource
}

// standardVerbs are the verbs of every resource that supports collections.
var standardVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// builtin describes one built-in resource. Adding a type is one entry here
// plus, when it needs them, prepare/validate hooks.
type builtin struct {
	Resource
	// review marks a review resource: create-only, answered by the
	// Reviewer, never stored.
	review bool
	// validName checks metadata.name; nil means a DNS subdomain.
	validName apivalidation.ValidateNameFunc
	// decodes checks that a body decodes into the Go type of the
	// resource, before prepare or prepareUpdate (may be nil).
	decodes func(obj map[string]any) error
	// prepare checks and completes the body of a create before admission:
	// defaults, and fields merged into others (may be nil).
	prepare func(r *Registry, obj map[string]any) error
	// prepareUpdate does the same for an update, once obj carries what it
	// keeps of old, the stored object in the served form (may be nil).
	prepareUpdate func(obj, old map[string]any) error
	// validate checks an object after admission, and on update (old not
	// nil, in the served form) its change from old (may be nil).
	validate func(obj, old map[string]any) field.ErrorList
}

// builtins are the resources served without a CRD.
var builtins = []*builtin{
	{
		Resource: Resource{
			Version: "v1", Resource: "namespaces", SingularName: "namespace",
			Kind: "Namespace", ListKind: "NamespaceList", ShortNames: []string{"ns"},
			Verbs: []string{"create", "delete", "get", "list", "patch", "update", "watch"}, HasStatus: true,
			StorageKey: "/namespaces",
			// As Kubernetes: kubectl get ns --field-selector status.phase=Active.
			SelectableFields: []string{"status.phase"},
		},
		validName: apivalidation.NameIsDNSLabel,
		prepare:   prepareNamespace,
	},
	{
		Resource: Resource{
			Group: crdGroup, Version: "v1", Resource: "customresourcedefinitions",
			SingularName: "customresourcedefinition", Kind: "CustomResourceDefinition",
			ListKind: "CustomResourceDefinitionList", ShortNames: []string{"crd", "crds"},
			Categories: []string{"api-extensions"}, Verbs: standardVerbs, HasStatus: true,
			StorageKey: crdStorageKey,
		},
	},
	configMapBuiltin,
	secretBuiltin,
	leaseBuiltin,
	eventBuiltin,
	eventsV1Builtin,
	roleBuiltin,
	clusterRoleBuiltin,
	roleBindingBuiltin,
	clusterRoleBindingBuiltin,
	selfSubjectAccessReviewBuiltin,
	selfSubjectRulesReviewBuiltin,
	selfSubjectReviewBuiltin,
	validatingWebhookBuiltin,
	mutatingWebhookBuiltin,
}

// builtinFor returns the built-in entry of res, or nil for custom resources.
func builtinFor(res *Resource) *builtin {
	for _, b := range builtins {
		if b.Group == res.Group && b.Resource.Resource == res.Resource {
			return b
		}
	}
	return nil
}

// BuiltIn reports whether res is served without a CRD (a Kubernetes type).
func (res *Resource) BuiltIn() bool { return builtinFor(res) != nil }

// prepareBuiltin runs the hooks of res, if any, on an object being
// written: the decode check, then prepare on a create (old nil) or
// prepareUpdate on an update (old is the stored object).
func prepareBuiltin(r *Registry, res *Resource, obj, old map[string]any) error {
	b := builtinFor(res)
	if b == nil {
		return nil
	}
	if b.decodes != nil {
		if err := b.decodes(obj); err != nil {
			return err
		}
	}
	switch {
	case old == nil && b.prepare != nil:
		return b.prepare(r, obj)
	case old != nil && b.prepareUpdate != nil:
		return b.prepareUpdate(obj, servedForm(res, old))
	}
	return nil
}

// validateBuiltin runs the validate hook of res, if any; old is the stored
// object or nil on create.
func validateBuiltin(res *Resource, obj, old map[string]any) field.ErrorList {
	b := builtinFor(res)
	if b == nil || b.validate == nil {
		return nil
	}
	if old != nil {
		old = servedForm(res, old)
	}
	return b.validate(obj, old)
}

// servedForm returns the stored object old as res serves it: old itself,
// or a converted copy for a resource stored in another form.
func servedForm(res *Resource, old map[string]any) map[string]any {
	if res.conv == nil || old["apiVersion"] != res.conv.storedAPIVersion {
		return old
	}
	cp := deepCopy(old)
	res.conv.toServed(cp)
	cp["apiVersion"] = res.apiVersion()
	return cp
}

// New builds a Registry. Start must be called before serving.
func New(opts Options) (*Registry, error) {
	if opts.Store == nil {
		return nil, errors.New("registry: Options.Store is required")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	r := &Registry{
		store:          opts.Store,
		feed:           opts.Feed,
		now:            now,
		eventTTL:       opts.EventTTL,
		webhooks:       opts.Webhooks,
		maxObjectBytes: cmp.Or(opts.MaxObjectBytes, DefaultMaxObjectBytes),
		crds:           map[string]crdEntry{},
		kick:           make(chan struct{}, 1),
		done:           make(chan struct{}),
	}
	r.mirrors = []mirror{r.crdMirror()}
	if opts.Feed != nil {
		r.namespaces = &namespaceCache{byName: map[string]namespaceEntry{}}
		r.mirrors = append(r.mirrors, r.namespaceMirror())
		if r.webhooks != nil {
			r.webhookConfigs.progress = [2]*mirrorProgress{newMirrorProgress(), newMirrorProgress()}
		}
	}
	r.webhookConfigs.entries = map[webhookConfigKey]webhookConfigEntry{}
	if r.webhooks != nil {
		r.mirrors = append(r.mirrors, r.webhookMirrors()...)
	}
	r.rebuildLocked()
	return r, nil
}

// Lookup returns the resource served at group/version/resource. The core
// group is "". It returns false if it is not served.
func (r *Registry) Lookup(group, version, resource string) (*Resource, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	res, ok := r.served[gvr{group, version, resource}]
	return res, ok
}

// Groups returns every served group, the core group ("") first, then the
// others sorted by name. The result is a snapshot the caller may keep.
func (r *Registry) Groups() []GroupVersions {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.groups
}

// resources returns every served resource once per storage key (the
// first served version), for cleanup.
func (r *Registry) storageKeys(namespaced bool) []*Resource {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seen := map[string]bool{}
	var out []*Resource
	for _, g := range r.groups {
		for _, v := range g.Versions {
			for _, res := range g.Resources[v] {
				if res.Namespaced == namespaced && !seen[res.StorageKey] {
					seen[res.StorageKey] = true
					out = append(out, res)
				}
			}
		}
	}
	return out
}

// applyCRD records the state of CRD name as of rev (obj nil = deleted) and
// rebuilds the served type set if it is newer than what is known.
func (r *Registry) applyCRD(name string, rev int64, obj map[string]any) {
	e := crdEntry{rev: rev}
	if obj != nil {
		crd, err := toCRD(obj)
		if err != nil {
			return
		}
		e.crd = crd
		e.resources = crdResources(crd)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyCRDLocked(name, e)
}

// applyCRDLocked is applyCRD for a decoded entry, r.mu held.
func (r *Registry) applyCRDLocked(name string, e crdEntry) {
	if cur, ok := r.crds[name]; ok && cur.rev >= e.rev {
		return
	}
	r.crds[name] = e
	r.rebuildLocked()
	if e.crd != nil && e.crd.DeletionTimestamp != nil {
		r.wake()
	}
}

// deleteStoredCRD deletes the stored CRD cur, if still at its revision, and
// stops serving its types. r.mu is held across both, so that a Lookup made
// after any read that saw the CRD gone (a get, a watch event) finds its
// types gone too: without that, the cleanup worker, whose deletion no
// client waits for, left a window in which a client saw a deleted CRD's
// types still served.
func (r *Registry) deleteStoredCRD(ctx context.Context, cur storage.Object) (storage.Object, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	del, err := r.store.Delete(ctx, cur.Key, storage.Precondition{Revision: cur.Revision})
	if err != nil {
		return del, err
	}
	r.applyCRDLocked(cur.Name, crdEntry{rev: del.Revision})
	return del, nil
}

// rebuildLocked recomputes served and groups from builtins and crds.
func (r *Registry) rebuildLocked() {
	served := map[gvr]*Resource{}
	byGroup := map[string]map[string][]*Resource{}
	add := func(res *Resource) {
		served[gvr{res.Group, res.Version, res.Resource}] = res
		if byGroup[res.Group] == nil {
			byGroup[res.Group] = map[string][]*Resource{}
		}
		byGroup[res.Group][res.Version] = append(byGroup[res.Group][res.Version], res)
	}
	for _, b := range builtins {
		if b.review && r.reviewer == nil {
			continue
		}
		res := b.Resource
		add(&res)
	}
	names := make([]string, 0, len(r.crds))
	for n, e := range r.crds {
		if e.crd != nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		for _, res := range r.crds[n].resources {
			if _, taken := served[gvr{res.Group, res.Version, res.Resource}]; !taken {
				add(res)
			}
		}
	}
	groups := make([]GroupVersions, 0, len(byGroup))
	for g, vs := range byGroup {
		gv := GroupVersions{Group: g, Resources: vs}
		for v, list := range vs {
			slices.SortFunc(list, func(a, b *Resource) int { return cmp.Compare(a.Resource, b.Resource) })
			gv.Versions = append(gv.Versions, v)
		}
		slices.SortFunc(gv.Versions, compareVersions)
		groups = append(groups, gv)
	}
	slices.SortFunc(groups, func(a, b GroupVersions) int { return cmp.Compare(a.Group, b.Group) })
	r.served = served
	r.groups = groups
	r.pruneFieldManagersLocked()
}

// compareVersions orders Kubernetes versions by priority: GA before beta
// before alpha, higher numbers first, non-Kubernetes versions last by name.
func compareVersions(a, b string) int {
	ka, ma, ra, oka := parseKubeVersion(a)
	kb, mb, rb, okb := parseKubeVersion(b)
	switch {
	case oka && okb:
		if ka != kb {
			return cmp.Compare(kb, ka)
		}
		if ma != mb {
			return cmp.Compare(mb, ma)
		}
		return cmp.Compare(rb, ra)
	case oka:
		return -1
	case okb:
		return 1
	}
	return cmp.Compare(a, b)
}

// parseKubeVersion splits "v2beta3" into rank (2 GA, 1 beta, 0 alpha),
// major and minor.
func parseKubeVersion(v string) (rank, major, minor int, ok bool) {
	rest, found := strings.CutPrefix(v, "v")
	if !found {
		return 0, 0, 0, false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	major, err := strconv.Atoi(rest[:i])
	if err != nil || major == 0 || rest[0] == '0' {
		return 0, 0, 0, false
	}
	suffix := rest[i:]
	if suffix == "" {
		return 2, major, 0, true
	}
	for r, pre := range []string{"alpha", "beta"} {
		if num, found := strings.CutPrefix(suffix, pre); found {
			minor, err = strconv.Atoi(num)
			if err != nil || minor <= 0 || num[0] == '0' {
				return 0, 0, 0, false
			}
			return r, major, minor, true
		}
	}
	return 0, 0, 0, false
}

// wake nudges the cleanup worker without blocking.
func (r *Registry) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Start creates the default namespaces ("default", "kube-system",
// "kube-public") if missing, loads the stored CRDs, and starts background
// work (CRD cleanup). It returns once the registry can serve.
func (r *Registry) Start(ctx context.Context) error {
	for _, ns := range protectedNamespaces {
		obj := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}
		_, err := r.create(ctx, namespaceResource(), "", obj, WriteOptions{}, false)
		if err != nil && !isReason(err, reasonAlreadyExists) {
			return fmt.Errorf("registry: create namespace %s: %w", ns, err)
		}
	}
	mirrors := r.mirrors
	watchers := make([]*feed.Watcher, len(mirrors))
	for i, m := range mirrors {
		w, err := r.load(ctx, m)
		if err != nil {
			for _, w := range watchers[:i] {
				if w != nil {
					w.Stop()
				}
			}
			return err
		}
		watchers[i] = w
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	for i, m := range mirrors {
		if w := watchers[i]; w != nil && !r.spawn(func() { r.follow(bg, m, w) }) {
			w.Stop()
		}
	}
	r.spawn(func() { r.cleanupLoop(bg) })
	if r.eventTTL > 0 {
		r.spawn(func() { r.expireEventsLoop(bg) })
	}
	r.wake()
	return nil
}

// newProgress returns the progress record of a mirror: nil without a
// feed, which would advance it.
func (r *Registry) newProgress() *mirrorProgress {
	if r.feed == nil {
		return nil
	}
	return newMirrorProgress()
}

// mirror keeps a local view of one stored resource current: reset receives
// every stored object and the revision of that list, apply each later event
// the feed delivers (written by any replica). progress, nil without a
// feed, records how far the view is current.
type mirror struct {
	resource string
	// view marks a mirror added by Follow.
	view     bool
	reset    func(objs []storage.Object, rev int64) error
	apply    func(ev *feed.Event)
	progress *mirrorProgress
}

// load resets m from the store and, with a feed, returns a watcher for the
// changes after the load.
func (r *Registry) load(ctx context.Context, m mirror) (*feed.Watcher, error) {
	list, err := r.store.List(ctx, storage.ListOptions{Resource: m.resource})
	if err != nil {
		return nil, fmt.Errorf("registry: load %s: %w", m.resource, err)
	}
	if err := m.reset(list.Objects, list.Revision); err != nil {
		return nil, err
	}
	if r.feed == nil {
		return nil, nil
	}
	w, err := r.feed.Watch(ctx, feed.WatchOptions{Resource: m.resource, After: list.Revision})
	if err != nil {
		return nil, fmt.Errorf("registry: watch %s: %w", m.resource, err)
	}
	m.progress.reset(list.Revision, w)
	return w, nil
}

// resyncDelay is the pause before reloading a mirror after its watch
// failed.
const resyncDelay = 100 * time.Millisecond

// follow applies the events of w to m; when the watch ends early (it fell
// behind compaction) it reloads and watches again, until ctx ends.
func (r *Registry) follow(ctx context.Context, m mirror, w *feed.Watcher) {
	for {
		consume(ctx, m, w)
		w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(resyncDelay):
			}
			var err error
			if w, err = r.load(ctx, m); err == nil {
				break
			}
		}
	}
}

// consume applies the events of w to m until w ends or ctx is done.
func consume(ctx context.Context, m mirror, w *feed.Watcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events():
			if !ok {
				return
			}
			m.apply(ev)
			// Progress events too: they say nothing more is due up to
			// their revision.
			m.progress.applied(ev.Revision)
		}
	}
}

// crdMirror keeps the served CRDs current.
func (r *Registry) crdMirror() mirror {
	return mirror{resource: crdStorageKey, reset: r.resetCRDs, progress: r.newProgress(), apply: func(ev *feed.Event) {
		switch ev.Type {
		case storage.Deleted:
			r.applyCRD(ev.Object.Name, ev.Revision, nil)
		case storage.Added, storage.Modified:
			if m, err := decodeValue(ev.Object.Value); err == nil {
				r.applyCRD(ev.Object.Name, ev.Revision, m)
			}
		}
	}}
}

// resetCRDs applies every stored CRD of a list at rev and forgets the
// CRDs it does not hold.
func (r *Registry) resetCRDs(objs []storage.Object, rev int64) error {
	present := map[string]bool{}
	for _, o := range objs {
		m, err := decodeValue(o.Value)
		if err != nil {
			return fmt.Errorf("registry: load CRD %s: %w", o.Name, err)
		}
		present[o.Name] = true
		r.applyCRD(o.Name, o.Revision, m)
	}
	r.mu.RLock()
	var gone []string
	for name := range r.crds {
		if !present[name] {
			gone = append(gone, name)
		}
	}
	r.mu.RUnlock()
	for _, name := range gone {
		r.applyCRD(name, rev, nil)
	}
	return nil
}

// Close stops background work and waits for it, and closes the idle
// connections of the WebhookAdmission when it has a CloseIdleConnections
// method.
func (r *Registry) Close() error {
	r.spawnMu.Lock()
	if !r.stopped {
		r.stopped = true
		close(r.done)
		if r.cancel != nil {
			r.cancel()
		}
	}
	r.spawnMu.Unlock()
	r.wg.Wait()
	if c, ok := r.webhooks.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return nil
}

// spawn runs f in a goroutine that Close waits for; it reports false (and
// does not run f) once Close has been called.
func (r *Registry) spawn(f func()) bool {
	r.spawnMu.Lock()
	defer r.spawnMu.Unlock()
	if r.stopped {
		return false
	}
	r.wg.Go(f)
	return true
}
