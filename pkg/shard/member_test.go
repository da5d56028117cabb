package shard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// memStore is an in-memory store shared by the members of a test.
type memStore struct {
	mu     sync.Mutex
	leases map[string]*coordinationv1.Lease
	rv     int
	fail   map[string]bool // identities whose writes fail
}

func newMemStore() *memStore {
	return &memStore{leases: map[string]*coordinationv1.Lease{}, fail: map[string]bool{}}
}

var leaseGR = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func (s *memStore) failing(l *coordinationv1.Lease) bool {
	return l.Spec.HolderIdentity != nil && s.fail[*l.Spec.HolderIdentity]
}

func (s *memStore) get(_ context.Context, name string) (*coordinationv1.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[name]
	if !ok {
		return nil, apierrors.NewNotFound(leaseGR, name)
	}
	return l.DeepCopy(), nil
}

func (s *memStore) create(_ context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing(l) {
		return nil, errors.New("injected failure")
	}
	if _, ok := s.leases[l.Name]; ok {
		return nil, apierrors.NewAlreadyExists(leaseGR, l.Name)
	}
	return s.put(l), nil
}

func (s *memStore) update(_ context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing(l) {
		return nil, errors.New("injected failure")
	}
	cur, ok := s.leases[l.Name]
	if !ok {
		return nil, apierrors.NewNotFound(leaseGR, l.Name)
	}
	if cur.ResourceVersion != l.ResourceVersion {
		return nil, apierrors.NewConflict(leaseGR, l.Name, errors.New("stale"))
	}
	return s.put(l), nil
}

func (s *memStore) put(l *coordinationv1.Lease) *coordinationv1.Lease {
	s.rv++
	l = l.DeepCopy()
	l.ResourceVersion = strconv.Itoa(s.rv)
	s.leases[l.Name] = l
	return l.DeepCopy()
}

func (s *memStore) list(context.Context) ([]coordinationv1.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []coordinationv1.Lease
	for _, l := range s.leases {
		out = append(out, *l.DeepCopy())
	}
	return out, nil
}

func (s *memStore) delete(_ context.Context, name, rv string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[name]
	if !ok {
		return apierrors.NewNotFound(leaseGR, name)
	}
	if rv != "" && rv != l.ResourceVersion {
		return apierrors.NewConflict(leaseGR, name, errors.New("precondition failed"))
	}
	delete(s.leases, name)
	return nil
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type group struct {
	t     *testing.T
	store *memStore
	clock *fakeClock
}

func newGroup(t *testing.T) *group {
	return &group{t: t, store: newMemStore(), clock: &fakeClock{now: time.Unix(1000, 0)}}
}

// join makes a member with 3s leases, 2s deadline and 1s period, and joins it.
func (g *group) join(id string) *Member {
	g.t.Helper()
	m, err := newMember(Options{
		Namespace: "ns", Name: "ctl", Identity: id,
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RenewPeriod: time.Second,
		Now: g.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, g.store)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := m.join(context.Background()); err != nil {
		g.t.Fatal(err)
	}
	return m
}

// step runs one round of each member, in order.
func (g *group) step(ms ...*Member) {
	g.t.Helper()
	for _, m := range ms {
		if err := m.step(context.Background()); err != nil {
			g.t.Fatalf("%s: step: %v", m.Identity(), err)
		}
	}
}

// keyOwnedBy returns a key owned by want under view, and by no one else
// under the other views given.
func keyOwnedBy(t *testing.T, want string, views ...[]string) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("ns/k%d", i)
		if !slices.ContainsFunc(views, func(v []string) bool { return Owner(k, v) != want }) {
			return k
		}
	}
	t.Fatalf("no key owned by %s in %v", want, views)
	return ""
}

// keyMoving returns a key owned by from under before and by to under after.
func keyMoving(t *testing.T, from, to string, before, after []string) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("ns/k%d", i)
		if Owner(k, before) == from && Owner(k, after) == to {
			return k
		}
	}
	t.Fatalf("no key moves from %s to %s", from, to)
	return ""
}

func TestAloneOwnsEverythingAfterOneRound(t *testing.T) {
	g := newGroup(t)
	a := g.join("a")
	if a.Owns("ns/x") {
		t.Fatal("a owns a key before any view is active")
	}
	g.step(a)
	if !a.Owns("ns/x") || !slices.Equal(a.Members(), []string{"a"}) {
		t.Fatalf("after a round alone a has members %v and owns ns/x: %v", a.Members(), a.Owns("ns/x"))
	}
}

// TestHandoffWaitsForOldOwner: a key moving from a to a joining b is not
// started by b until a has finished its reconcile of the key.
func TestHandoffWaitsForOldOwner(t *testing.T) {
	g := newGroup(t)
	a := g.join("a")
	g.step(a)
	ab := []string{"a", "b"}
	moving := keyMoving(t, "a", "b", []string{"a"}, ab)
	staying := keyOwnedBy(t, "a", ab)
	done, ok := a.Start(moving)
	if !ok {
		t.Fatal("a cannot start a key it owns alone")
	}
	changed := a.Changed()

	b := g.join("b")
	g.step(b, a, b, a, b)
	if b.Owns(moving) {
		t.Fatal("b owns the moving key while a still reconciles it")
	}
	if a.Owns(moving) {
		t.Fatal("a may start the moving key again after it saw b join")
	}
	if !a.Owns(staying) {
		t.Fatal("a stopped a key it keeps during the handoff")
	}
	if got := g.store.leases["ctl-shard-a"].Annotations[DrainedAnnotation]; got == viewHash(ab) {
		t.Fatal("a published the new view with a moved key in flight")
	}
	select {
	case <-changed:
		t.Fatal("a view became active during the handoff")
	default:
	}

	done()
	g.step(a)
	select {
	case <-changed:
	default:
		t.Fatal("a did not activate the view after draining")
	}
	if b.Owns(moving) {
		t.Fatal("b owns the moving key before it saw a publish the view")
	}
	g.step(b)
	if !b.Owns(moving) || a.Owns(moving) || !slices.Equal(b.Members(), ab) {
		t.Fatalf("after the handoff: b owns %v, a owns %v, b's members %v", b.Owns(moving), a.Owns(moving), b.Members())
	}
}

// TestDeadMemberExpires: a member that stops renewing is dropped
// LeaseDuration after the others last saw its Lease change, not before,
// and its keys move then.
func TestDeadMemberExpires(t *testing.T) {
	g := newGroup(t)
	a, b := g.join("a"), g.join("b")
	g.step(a, b, a, b)
	ab := []string{"a", "b"}
	if !slices.Equal(a.Members(), ab) || !slices.Equal(b.Members(), ab) {
		t.Fatalf("members %v and %v, want %v", a.Members(), b.Members(), ab)
	}
	bs := keyOwnedBy(t, "b", ab)
	// b dies now; a saw its last renewal at its next round, 0.5s later,
	// and sees the Lease unchanged for 2.5s more: still live.
	for range 6 {
		g.clock.Step(500 * time.Millisecond)
		g.step(a)
	}
	if a.Owns(bs) || !slices.Equal(a.Members(), ab) {
		t.Fatalf("a dropped b before its lease expired: members %v", a.Members())
	}
	g.clock.Step(500 * time.Millisecond)
	g.step(a)
	if !a.Owns(bs) || !slices.Equal(a.Members(), []string{"a"}) {
		t.Fatalf("a did not take b's keys 3s after b's last renewal: members %v", a.Members())
	}
	// b's Lease stays until it has been unchanged for 10 lease durations.
	for range 26 {
		g.clock.Step(time.Second)
		g.step(a)
	}
	if _, err := g.store.get(context.Background(), "ctl-shard-b"); err != nil {
		t.Fatalf("b's lease deleted early: %v", err)
	}
	g.clock.Step(time.Second)
	g.step(a)
	g.clock.Step(time.Second)
	g.step(a)
	if _, err := g.store.get(context.Background(), "ctl-shard-b"); !apierrors.IsNotFound(err) {
		t.Fatalf("b's lease 31s after it last changed: %v, want NotFound", err)
	}
}

// TestLostRenewalStops: a member that cannot renew within RenewDeadline
// stops starting keys and reports ErrLost, before LeaseDuration.
func TestLostRenewalStops(t *testing.T) {
	g := newGroup(t)
	a := g.join("a")
	g.step(a)
	g.store.fail["a"] = true
	g.clock.Step(time.Second)
	g.step(a) // a failed renewal within the deadline is retried
	if !a.Owns("ns/x") {
		t.Fatal("a stopped after one failed renewal")
	}
	g.clock.Step(time.Second)
	// Workers stop starting keys at the deadline, before the next round.
	if a.Owns("ns/x") {
		t.Fatal("a starts keys RenewDeadline after its last renewal")
	}
	if err := a.step(context.Background()); !errors.Is(err, ErrLost) {
		t.Fatalf("step 2s after the last renewal = %v, want ErrLost", err)
	}
	if _, ok := a.Start("ns/x"); ok {
		t.Fatal("a starts keys after losing its lease")
	}
}

// TestRevertedViewKeepsHandoffRules: when a joining member vanishes before
// its view became active, keys it would have owned stay stopped until the
// view after it is active, so no replica starts a key it gave up.
func TestRevertedViewKeepsHandoffRules(t *testing.T) {
	g := newGroup(t)
	a, b := g.join("a"), g.join("b")
	g.step(a, b, a, b)
	ab, abc := []string{"a", "b"}, []string{"a", "b", "c"}
	toC := keyMoving(t, "a", "c", ab, abc)
	g.join("c")
	g.step(a, b) // a and b drain to [a b c] and publish it
	if a.Owns(toC) {
		t.Fatal("a owns a key moving to c")
	}
	// c leaves before its own round; [a b] returns.
	if err := g.store.delete(context.Background(), "ctl-shard-c", ""); err != nil {
		t.Fatal(err)
	}
	g.step(a)
	if a.Owns(toC) {
		t.Fatal("a took back a key it had handed to c before b published the view without c")
	}
	g.step(b, a)
	if !a.Owns(toC) || !slices.Equal(a.Members(), ab) {
		t.Fatalf("a did not get the key back once [a b] was active again: members %v", a.Members())
	}
}

// TestLeaveWaitsAndDeletes: on shutdown a member stops starting keys, waits
// for its reconciles, then deletes its Lease.
func TestLeaveWaitsAndDeletes(t *testing.T) {
	g := newGroup(t)
	a := g.join("a")
	g.step(a)
	done, ok := a.Start("ns/x")
	if !ok {
		t.Fatal("a cannot start a key")
	}
	left := make(chan struct{})
	go func() { a.leave(); close(left) }()
	for a.Owns("ns/y") {
		// leave sets stopped at once; wait for it without sleeping.
		select {
		case <-left:
			t.Fatal("leave returned with a reconcile in flight")
		default:
		}
	}
	if _, err := g.store.get(context.Background(), "ctl-shard-a"); err != nil {
		t.Fatalf("the lease is gone while a reconcile is in flight: %v", err)
	}
	done()
	<-left
	if _, err := g.store.get(context.Background(), "ctl-shard-a"); !apierrors.IsNotFound(err) {
		t.Fatalf("the lease after leaving: %v, want NotFound", err)
	}
}

func TestOptionsChecked(t *testing.T) {
	for _, o := range []Options{
		{Name: "ctl"},
		{Namespace: "ns"},
		{Namespace: "ns", Name: "ctl", LeaseDuration: 1500 * time.Millisecond},
		{Namespace: "ns", Name: "ctl", RenewDeadline: 20 * time.Second},
		{Namespace: "ns", Name: "ctl", Identity: "Not_Valid"},
		{Namespace: "ns", Name: strings.Repeat("c", 64)},
	} {
		if _, err := newMember(o, newMemStore()); err == nil {
			t.Errorf("newMember(%+v) succeeded", o)
		}
	}
	m, err := newMember(Options{Namespace: "ns", Name: "ctl"}, newMemStore())
	if err != nil || m.Identity() == "" {
		t.Fatalf("default identity: %v, %q", err, m.Identity())
	}
}
