package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
)

const (
	// GroupLabel labels every member Lease with its Options.Name, so members
	// list only their own group's Leases.
	GroupLabel = "shard.setpoint.dev/group"
	// DrainedAnnotation holds, in a member's Lease, the hash of the last
	// view that member has drained to.
	DrainedAnnotation = "shard.setpoint.dev/drained"
)

// staleLeases is how many LeaseDurations a member's Lease must stay
// unchanged before the others delete it: a replica killed without leaving
// leaves its Lease behind.
const staleLeases = 10

// ErrLost is returned by Member.Run when the member could not renew its
// Lease within RenewDeadline: the others may already own its keys, so it
// stopped starting any. Exit the process, or run a new Member.
var ErrLost = errors.New("shard: membership lease lost")

// Options configure a Member.
type Options struct {
	// Config reaches the server holding the Leases. Required.
	Config *rest.Config
	// Namespace holds the member Leases. Required.
	Namespace string
	// Name names the group of replicas sharing work, usually the
	// controller's name; Leases are named "<Name>-shard-<Identity>".
	// Required.
	Name string
	// Identity names this replica; replicas need distinct identities, made
	// of lowercase letters, digits and '-'. Default: the host name, cleaned
	// up, and a random suffix.
	Identity string
	// LeaseDuration is how long others wait, after they last saw this
	// member's Lease change, before they drop it. Whole seconds. Default 15s.
	LeaseDuration time.Duration
	// RenewDeadline is how long this member keeps failing to renew before it
	// stops; shorter than LeaseDuration. Default 10s.
	RenewDeadline time.Duration
	// RenewPeriod is the wait between renewals, which also look at the
	// other members. Default 2s.
	RenewPeriod time.Duration
	// Now is the clock for lease expiry, for tests. Default time.Now.
	Now func() time.Time
	// Logger receives membership changes. Default slog.Default().
	Logger *slog.Logger
}

// Member is one replica's membership in a group sharing keys. Its methods
// are safe for concurrent use; Run it (for example from a
// controller.Manager) and ask Start before working on a key.
type Member struct {
	opts  Options
	store store
	lease string // this member's Lease name
	log   *slog.Logger

	mu        sync.Mutex
	active    []string   // the view keys are started under; nil before the first
	pending   [][]string // views seen since active became active, oldest first
	published string     // the view hash this member's Lease holds
	renewed   time.Time  // when the last successful renewal began
	inflight  map[string]int
	changed   chan struct{} // closed when a view becomes active
	stopped   bool
	wake      chan struct{} // a reconcile ended; check the drain

	// Owned by the goroutine in Run.
	own  *coordinationv1.Lease
	seen map[string]seenLease
}

type seenLease struct {
	version  string    // resourceVersion last seen
	observed time.Time // when version was first seen, on this clock
}

// New checks opts and returns a Member that has not joined yet.
func New(opts Options) (*Member, error) {
	if opts.Config == nil {
		return nil, errors.New("shard: Options.Config is required")
	}
	leases, err := client.New[coordinationv1.Lease](opts.Config, client.Resource{
		Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Kind: "Lease", Namespaced: true,
	})
	if err != nil {
		return nil, fmt.Errorf("shard: lease client: %w", err)
	}
	return newMember(opts, &apiStore{leases: leases, namespace: opts.Namespace, group: opts.Name})
}

func newMember(opts Options, st store) (*Member, error) {
	if opts.Namespace == "" || opts.Name == "" {
		return nil, errors.New("shard: Options.Namespace and Name are required")
	}
	if opts.Identity == "" {
		host, _ := os.Hostname()
		opts.Identity = strings.Trim(cleanName(host), "-") + "-" + rand.String(6)
		opts.Identity = strings.TrimPrefix(opts.Identity, "-")
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.RenewDeadline == 0 {
		opts.RenewDeadline = 10 * time.Second
	}
	if opts.RenewPeriod == 0 {
		opts.RenewPeriod = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LeaseDuration < time.Second || opts.LeaseDuration%time.Second != 0 {
		return nil, fmt.Errorf("shard: Options.LeaseDuration is %v; want whole seconds, at least 1s", opts.LeaseDuration)
	}
	if opts.RenewPeriod <= 0 || opts.RenewDeadline <= opts.RenewPeriod || opts.RenewDeadline >= opts.LeaseDuration {
		return nil, fmt.Errorf("shard: want 0 < RenewPeriod < RenewDeadline < LeaseDuration; got %v, %v, %v",
			opts.RenewPeriod, opts.RenewDeadline, opts.LeaseDuration)
	}
	if errs := validation.IsValidLabelValue(opts.Name); len(errs) > 0 {
		return nil, fmt.Errorf("shard: Options.Name %q labels the Leases: %s", opts.Name, strings.Join(errs, "; "))
	}
	name := opts.Name + "-shard-" + opts.Identity
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, fmt.Errorf("shard: lease name %q: %s", name, strings.Join(errs, "; "))
	}
	return &Member{
		opts: opts, store: st, lease: name,
		log:      opts.Logger.With("shard", opts.Name, "identity", opts.Identity),
		inflight: map[string]int{},
		changed:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
		seen:     map[string]seenLease{},
	}, nil
}

// cleanName lowercases s and replaces what a Lease name cannot hold by '-'.
func cleanName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}

// Identity returns this member's identity.
func (m *Member) Identity() string { return m.opts.Identity }

// NeedLeaderElection tells a controller.Manager to run the Member on every
// replica.
func (m *Member) NeedLeaderElection() bool { return false }

// Start reports whether this replica may reconcile key now, and if so
// records the reconcile as in flight until done is called. It is false for
// keys other members own, before the first view is active, during a handoff
// for keys that move, once RenewDeadline has passed since the last
// successful renewal, and after the member stopped.
func (m *Member) Start(key string) (done func(), ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ownsLocked(key) {
		return nil, false
	}
	m.inflight[key]++
	return func() {
		m.mu.Lock()
		if m.inflight[key]--; m.inflight[key] == 0 {
			delete(m.inflight, key)
		}
		m.mu.Unlock()
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}, true
}

// Owns reports whether Start would let this replica reconcile key now.
func (m *Member) Owns(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ownsLocked(key)
}

func (m *Member) ownsLocked(key string) bool {
	if m.stopped || m.active == nil || m.opts.Now().Sub(m.renewed) >= m.opts.RenewDeadline ||
		Owner(key, m.active) != m.opts.Identity {
		return false
	}
	for _, v := range m.pending {
		if Owner(key, v) != m.opts.Identity {
			return false
		}
	}
	return true
}

// Changed returns a channel closed when the next view becomes active, that
// is when this replica may start keys it could not start before. Take the
// channel before looking at what is owned, then wait on it.
func (m *Member) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Members returns the active view's members, sorted; nil before the first
// view is active.
func (m *Member) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.active)
}

// Run joins the group, retrying every RenewPeriod until it can write its
// Lease, and keeps the membership until ctx ends; then it stops starting
// keys, waits up to RenewDeadline for reconciles in flight to end and
// deletes the Lease. It returns nil after ctx ends, or ErrLost if a renewal
// failed for RenewDeadline.
func (m *Member) Run(ctx context.Context) error {
	t := time.NewTimer(m.opts.RenewPeriod)
	defer t.Stop()
	for {
		err := m.join(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		m.log.Warn("joining failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			t.Reset(m.opts.RenewPeriod)
		}
	}
	m.log.Info("joined")
	t.Reset(m.opts.RenewPeriod)
	for {
		select {
		case <-ctx.Done():
			m.leave()
			return nil
		case <-t.C:
			t.Reset(m.opts.RenewPeriod)
		case <-m.wake:
			if !m.draining() {
				continue
			}
		}
		if err := m.step(ctx); err != nil {
			if ctx.Err() != nil {
				m.leave()
				return nil
			}
			return err
		}
	}
}

// join creates this member's Lease, or takes it over if a process of the
// same identity left it behind.
func (m *Member) join(ctx context.Context) error {
	now := m.opts.Now()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: m.lease}}
	m.fill(lease, now, "")
	created, err := m.store.create(ctx, lease)
	if client.IsAlreadyExists(err) {
		if created, err = m.store.get(ctx, m.lease); err == nil {
			m.own = created
			err = m.renew(ctx, m.opts.Now(), "")
			created = m.own
		}
	}
	if err != nil {
		return fmt.Errorf("shard: creating lease %s: %w", m.lease, err)
	}
	m.own = created
	m.setRenewed(now)
	return nil
}

// setRenewed records a successful renewal that began at now.
func (m *Member) setRenewed(now time.Time) {
	m.mu.Lock()
	m.renewed = now
	m.mu.Unlock()
}

// lastRenewal returns when the last successful renewal began.
func (m *Member) lastRenewal() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.renewed
}

// fill sets lease's spec and annotation to this member's at now.
func (m *Member) fill(lease *coordinationv1.Lease, now time.Time, drained string) {
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	lease.Labels[GroupLabel] = m.opts.Name
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[DrainedAnnotation] = drained
	id := m.opts.Identity
	secs := int32(m.opts.LeaseDuration / time.Second)
	lease.Spec.HolderIdentity = &id
	lease.Spec.LeaseDurationSeconds = &secs
	lease.Spec.RenewTime = &metav1.MicroTime{Time: now}
	if lease.Spec.AcquireTime == nil {
		lease.Spec.AcquireTime = &metav1.MicroTime{Time: now}
	}
}

// renew writes this member's Lease with drained as its published view.
func (m *Member) renew(ctx context.Context, now time.Time, drained string) error {
	lease := m.own.DeepCopy()
	m.fill(lease, now, drained)
	updated, err := m.store.update(ctx, lease)
	if client.IsNotFound(err) || client.IsConflict(err) {
		// Someone deleted or changed the Lease; write it afresh next time.
		lease.ResourceVersion = ""
		if client.IsNotFound(err) {
			updated, err = m.store.create(ctx, lease)
		} else if cur, gerr := m.store.get(ctx, m.lease); gerr == nil {
			m.own = cur
		}
	}
	if err != nil {
		return err
	}
	m.own = updated
	m.setRenewed(now)
	return nil
}

// step is one round: look at the members, drain and publish the current
// view, renew the Lease, and activate the view once all have published it.
func (m *Member) step(ctx context.Context) error {
	now := m.opts.Now()
	left := m.lastRenewal().Add(m.opts.RenewDeadline).Sub(now)
	if left <= 0 {
		return m.lose()
	}
	ctx, cancel := context.WithTimeout(ctx, left)
	defer cancel()

	leases, err := m.store.list(ctx)
	if err != nil && ctx.Err() == nil {
		m.log.Warn("listing member leases failed", "error", err)
	}
	var view []string
	published := map[string]string{}
	if err == nil {
		var stale []*coordinationv1.Lease
		view, published, stale = m.observe(leases, now)
		for _, l := range stale {
			// Only at the version seen: a replica that came back keeps its Lease.
			if err := m.store.delete(ctx, l.Name, l.ResourceVersion); err == nil {
				m.log.Info("deleted the lease of a member gone long ago", "lease", l.Name)
			}
		}
	}

	m.mu.Lock()
	if view != nil {
		m.adopt(view)
	}
	target := m.current()
	drained := m.published
	if target != nil && m.drainedLocked(target) {
		drained = viewHash(target)
	}
	m.mu.Unlock()

	if err := m.renew(ctx, now, drained); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("renewing the membership lease failed", "error", err)
		}
		if m.opts.Now().Sub(m.lastRenewal()) >= m.opts.RenewDeadline {
			return m.lose()
		}
		return nil
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.published = drained
	published[m.opts.Identity] = drained
	if target == nil || len(m.pending) == 0 && m.active != nil {
		return nil
	}
	h := viewHash(target)
	for _, id := range target {
		if published[id] != h {
			return nil
		}
	}
	m.log.Info("view active", "members", target)
	m.active, m.pending = target, nil
	close(m.changed)
	m.changed = make(chan struct{})
	return nil
}

// observe records the resourceVersions of the group's Leases and returns the
// live members, sorted, with the view each has published, and the Leases
// unchanged for staleLeases LeaseDurations.
func (m *Member) observe(leases []coordinationv1.Lease, now time.Time) (live []string, published map[string]string, stale []*coordinationv1.Lease) {
	live = []string{m.opts.Identity}
	published = map[string]string{}
	seen := map[string]seenLease{}
	for i := range leases {
		l := &leases[i]
		id := ""
		if l.Spec.HolderIdentity != nil {
			id = *l.Spec.HolderIdentity
		}
		if id == "" || id == m.opts.Identity || l.Name != m.opts.Name+"-shard-"+id {
			continue
		}
		s, ok := m.seen[l.Name]
		if !ok || s.version != l.ResourceVersion {
			s = seenLease{version: l.ResourceVersion, observed: now}
		}
		seen[l.Name] = s
		d := time.Second
		if l.Spec.LeaseDurationSeconds != nil {
			d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		switch {
		case s.observed.Add(d).After(now):
			live = append(live, id)
			published[id] = l.Annotations[DrainedAnnotation]
		case s.observed.Add(staleLeases * d).Before(now):
			stale = append(stale, l)
		}
	}
	m.seen = seen
	slices.Sort(live)
	return live, published, stale
}

// current is the newest view seen. m.mu is held.
func (m *Member) current() []string {
	if n := len(m.pending); n > 0 {
		return m.pending[n-1]
	}
	return m.active
}

// adopt makes view the current one if it differs. m.mu is held.
func (m *Member) adopt(view []string) {
	cur := m.current()
	if cur != nil && slices.Equal(cur, view) {
		return
	}
	m.log.Info("membership changed", "members", view)
	m.pending = append(m.pending, view)
}

// drainedLocked reports whether no reconcile in flight is of a key this
// member does not own in view. m.mu is held.
func (m *Member) drainedLocked(view []string) bool {
	for key := range m.inflight {
		if Owner(key, view) != m.opts.Identity {
			return false
		}
	}
	return true
}

// draining reports whether the current view waits for a drain.
func (m *Member) draining() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.current()
	return cur != nil && m.published != viewHash(cur)
}

// lose stops the member after a failed renewal.
func (m *Member) lose() error {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.log.Error("could not renew the membership lease in time; stopped", "renewDeadline", m.opts.RenewDeadline)
	return ErrLost
}

// leave stops starting keys, waits for reconciles in flight, and deletes the
// Lease so the others take over at once. If reconciles do not end within
// RenewDeadline it keeps the Lease, which then expires.
func (m *Member) leave() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	t := time.NewTimer(m.opts.RenewDeadline)
	defer t.Stop()
	for {
		m.mu.Lock()
		n := len(m.inflight)
		m.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-m.wake:
		case <-t.C:
			m.log.Warn("reconciles still running at shutdown; leaving the lease to expire", "inflight", n)
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.RenewDeadline)
	defer cancel()
	if err := m.store.delete(ctx, m.lease, ""); err != nil && !client.IsNotFound(err) {
		m.log.Warn("deleting the membership lease failed; it expires instead", "error", err)
		return
	}
	m.log.Info("left")
}
