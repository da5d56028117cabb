package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
)

// ErrLeaderElectionLost is returned by Manager.Run when the manager could not
// renew its Lease within LeaderElection.RenewDeadline: another replica may
// lead now, so this one stopped its leader-only runnables. Exit the process,
// or run a new Manager, to stand for election again.
var ErrLeaderElectionLost = errors.New("controller: leader election lost")

// LeaderElection makes a Manager run its leader-only runnables only while it
// holds a coordination.k8s.io/v1 Lease. The Lease is written as client-go's
// leaderelection package writes it (holderIdentity, leaseDurationSeconds,
// acquireTime, renewTime, leaseTransitions), so Setpoint managers and
// client-go based controllers can compete for the same Lease.
type LeaderElection struct {
	// Config reaches the server holding the Lease. Required.
	Config *rest.Config
	// Namespace and Name name the Lease. Required.
	Namespace, Name string
	// Identity is this replica's holderIdentity; replicas need distinct
	// identities. Default: the host name, "_", and a random UUID.
	Identity string
	// LeaseDuration is how long others wait, after they last saw the
	// Lease change, before they take it over. Default 15s.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives up leadership; it must be shorter than LeaseDuration.
	// Default 10s.
	RenewDeadline time.Duration
	// RetryPeriod is the wait between attempts to acquire or renew the
	// Lease. Default 2s.
	RetryPeriod time.Duration
	// Now is the clock for the Lease's times and its expiry, for tests.
	// Default time.Now.
	Now func() time.Time
	// OnNewLeader, when set, is called with the holder's identity each time
	// this replica sees the Lease change hands ("" after a release). It runs
	// on the election goroutine and must return quickly.
	OnNewLeader func(identity string)
}

// leaseResource names coordination.k8s.io/v1 Leases for pkg/client.
var leaseResource = client.Resource{
	Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Kind: "Lease", Namespaced: true,
}

// elector runs the election for one Manager. Its fields are owned by the
// goroutine running Manager.Run.
type elector struct {
	cfg    LeaderElection
	leases *client.Client[coordinationv1.Lease, *coordinationv1.Lease]
	log    *slog.Logger

	lease        *coordinationv1.Lease // last read or written; nil before the first
	observedTime time.Time             // when lease.Spec last changed, on cfg.Now
	leader       string                // holder last reported to OnNewLeader
}

func newElector(cfg LeaderElection, log *slog.Logger) (*elector, error) {
	switch {
	case cfg.Config == nil:
		return nil, errors.New("controller: LeaderElection.Config is required")
	case cfg.Namespace == "" || cfg.Name == "":
		return nil, errors.New("controller: LeaderElection.Namespace and Name are required")
	}
	if cfg.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("controller: leader election identity: %w", err)
		}
		cfg.Identity = host + "_" + string(uuid.NewUUID())
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 15 * time.Second
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = 10 * time.Second
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LeaseDuration < time.Second {
		return nil, fmt.Errorf("controller: LeaderElection.LeaseDuration is %v; a Lease counts whole seconds, want at least 1s", cfg.LeaseDuration)
	}
	if cfg.RenewDeadline >= cfg.LeaseDuration || cfg.RetryPeriod <= 0 || cfg.RenewDeadline < 0 {
		return nil, fmt.Errorf("controller: LeaderElection wants 0 < RetryPeriod and RenewDeadline < LeaseDuration; got %v, %v, %v",
			cfg.RetryPeriod, cfg.RenewDeadline, cfg.LeaseDuration)
	}
	leases, err := client.New[coordinationv1.Lease](cfg.Config, leaseResource)
	if err != nil {
		return nil, fmt.Errorf("controller: leader election client: %w", err)
	}
	return &elector{cfg: cfg, leases: leases, log: log.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)}, nil
}

// acquire tries to take the Lease every RetryPeriod until it holds it, or
// returns ctx's error.
func (e *elector) acquire(ctx context.Context) error {
	e.log.Info("waiting for leadership")
	for {
		ok, err := e.tryAcquireOrRenew(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
		case client.IsConflict(err) || client.IsAlreadyExists(err):
			e.log.Debug("another replica wrote the lease first", "error", err)
		default:
			e.log.Warn("acquiring the lease failed", "error", err)
		}
		if ok {
			e.log.Info("became leader")
			return nil
		}
		if err := e.wait(ctx, jitter(e.cfg.RetryPeriod)); err != nil {
			return err
		}
	}
}

// renew renews the Lease every RetryPeriod until ctx ends (nil) or a renewal
// has failed for RenewDeadline (ErrLeaderElectionLost).
func (e *elector) renew(ctx context.Context) error {
	for {
		if e.wait(ctx, e.cfg.RetryPeriod) != nil {
			return nil
		}
		if !e.renewWithin(ctx) {
			if ctx.Err() != nil {
				return nil
			}
			e.log.Error("could not renew the lease in time; stopping leader work", "renewDeadline", e.cfg.RenewDeadline)
			return ErrLeaderElectionLost
		}
	}
}

// renewWithin retries a renewal every RetryPeriod for up to RenewDeadline.
func (e *elector) renewWithin(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline)
	defer cancel()
	for {
		ok, err := e.tryAcquireOrRenew(ctx)
		if ok {
			return true
		}
		if err != nil && ctx.Err() == nil {
			e.log.Warn("renewing the lease failed", "error", err)
		}
		if e.wait(ctx, e.cfg.RetryPeriod) != nil {
			return false
		}
	}
}

// tryAcquireOrRenew reads the Lease and writes this replica as its holder if
// it is free, expired, or already this replica's. It reports whether this
// replica holds the Lease now; an error is a failed read or write (a lost
// race for the Lease is a conflict error).
func (e *elector) tryAcquireOrRenew(ctx context.Context) (bool, error) {
	now := e.cfg.Now()
	lease, err := e.leases.Get(ctx, e.cfg.Namespace, e.cfg.Name)
	if client.IsNotFound(err) {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: e.cfg.Namespace, Name: e.cfg.Name}}
		lease.Spec = e.spec(now, nil)
		created, err := e.leases.Create(ctx, lease, metav1.CreateOptions{})
		if err != nil {
			return false, fmt.Errorf("creating lease: %w", err)
		}
		e.observe(created, now)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading lease: %w", err)
	}
	e.observe(lease, now)
	holder := deref(lease.Spec.HolderIdentity)
	if holder != "" && holder != e.cfg.Identity && e.valid(now) {
		return false, nil
	}
	lease = lease.DeepCopy()
	lease.Spec = e.spec(now, &lease.Spec)
	updated, err := e.leases.Update(ctx, lease, metav1.UpdateOptions{})
	if err != nil {
		return false, fmt.Errorf("updating lease: %w", err)
	}
	e.observe(updated, now)
	return true, nil
}

// release empties holderIdentity, so others need not wait for the Lease to
// expire, as client-go does on ReleaseOnCancel. It reads the Lease first (a
// renewal cut short by cancellation may have been written), releases it only
// if this replica holds it, and retries after a conflict until ctx ends.
func (e *elector) release(ctx context.Context) {
	for {
		err := e.tryRelease(ctx)
		if err == nil {
			return
		}
		if !client.IsConflict(err) || ctx.Err() != nil {
			e.log.Warn("releasing the lease failed; others take it over when it expires", "error", err)
			return
		}
	}
}

func (e *elector) tryRelease(ctx context.Context) error {
	now := e.cfg.Now()
	lease, err := e.leases.Get(ctx, e.cfg.Namespace, e.cfg.Name)
	if err != nil {
		return fmt.Errorf("reading lease: %w", err)
	}
	if deref(lease.Spec.HolderIdentity) != e.cfg.Identity {
		return nil
	}
	lease = lease.DeepCopy()
	lease.Spec = coordinationv1.LeaseSpec{
		HolderIdentity:       new(""),
		LeaseDurationSeconds: new(int32(1)),
		AcquireTime:          &metav1.MicroTime{Time: now},
		RenewTime:            &metav1.MicroTime{Time: now},
		LeaseTransitions:     new(deref(lease.Spec.LeaseTransitions)),
	}
	updated, err := e.leases.Update(ctx, lease, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating lease: %w", err)
	}
	e.observe(updated, now)
	e.log.Info("released the lease")
	return nil
}

// spec is the Lease spec naming this replica the holder at now. A renewal
// keeps acquireTime and leaseTransitions; a takeover counts one transition.
func (e *elector) spec(now time.Time, old *coordinationv1.LeaseSpec) coordinationv1.LeaseSpec {
	s := coordinationv1.LeaseSpec{
		HolderIdentity:       new(e.cfg.Identity),
		LeaseDurationSeconds: new(int32(e.cfg.LeaseDuration / time.Second)),
		AcquireTime:          &metav1.MicroTime{Time: now},
		RenewTime:            &metav1.MicroTime{Time: now},
		LeaseTransitions:     new(int32(0)),
	}
	switch {
	case old == nil:
	case deref(old.HolderIdentity) == e.cfg.Identity:
		s.AcquireTime = old.AcquireTime
		s.LeaseTransitions = new(deref(old.LeaseTransitions))
	default:
		s.LeaseTransitions = new(deref(old.LeaseTransitions) + 1)
	}
	return s
}

// observe records lease as the last seen; when its spec changed, the expiry
// clock restarts at now, so a holder is judged by when this replica saw it
// renew, not by the holder's clock.
func (e *elector) observe(lease *coordinationv1.Lease, now time.Time) {
	if e.lease == nil || !equality.Semantic.DeepEqual(e.lease.Spec, lease.Spec) {
		e.observedTime = now
	}
	e.lease = lease
	if holder := deref(lease.Spec.HolderIdentity); holder != e.leader {
		e.leader = holder
		if e.cfg.OnNewLeader != nil {
			e.cfg.OnNewLeader(holder)
		}
	}
}

// valid reports whether the observed holder's term has not expired at now.
func (e *elector) valid(now time.Time) bool {
	d := time.Duration(deref(e.lease.Spec.LeaseDurationSeconds)) * time.Second
	return e.observedTime.Add(d).After(now)
}

func (e *elector) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jitter spreads replicas' attempts over up to 1.2 times d.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
