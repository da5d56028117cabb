package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Runnable is something a Manager runs until its context ends: an informer,
// a Controller, or any other long-running task. Run returns nil or ctx's
// error after ctx ends; any other error stops the whole Manager.
type Runnable interface {
	Run(ctx context.Context) error
}

// RunnableFunc adapts a function to a Runnable.
type RunnableFunc func(ctx context.Context) error

// Run calls f(ctx).
func (f RunnableFunc) Run(ctx context.Context) error { return f(ctx) }

// LeaderElectionRunnable is implemented by a Runnable that says whether it
// runs only on the leader. Without it, a Runnable that has a HasSynced() bool
// method (an informer) runs on every replica, so standby caches stay warm, and
// any other Runnable (such as a Controller) runs only on the leader.
type LeaderElectionRunnable interface {
	NeedLeaderElection() bool
}

// ManagerOptions tune a Manager. The zero value runs everything at once,
// without leader election.
type ManagerOptions struct {
	// LeaderElection, when set, runs leader-only runnables only while this
	// replica holds the Lease it names. Default nil: no election.
	LeaderElection *LeaderElection
	// Logger receives the manager's and the election's logs. Default
	// slog.Default().
	Logger *slog.Logger
}

// Manager runs informers and controllers until its context ends, optionally
// under leader election.
type Manager struct {
	elector *elector // nil without leader election
	log     *slog.Logger
	elected chan struct{}

	mu        sync.Mutex // guards runnables and started
	runnables []Runnable
	started   bool
}

// NewManager returns a Manager with nothing to run yet, or an error if
// opts.LeaderElection is incomplete.
func NewManager(opts ManagerOptions) (*Manager, error) {
	m := &Manager{log: opts.Logger, elected: make(chan struct{})}
	if m.log == nil {
		m.log = slog.Default()
	}
	if opts.LeaderElection != nil {
		e, err := newElector(*opts.LeaderElection, m.log)
		if err != nil {
			return nil, err
		}
		m.elector = e
	}
	return m, nil
}

// Add registers r to run when Run is called. It fails once Run has started.
func (m *Manager) Add(r Runnable) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return errors.New("controller: Manager.Add after Run")
	}
	m.runnables = append(m.runnables, r)
	return nil
}

// Elected is closed when this Manager starts its leader-only runnables: at
// once without leader election, else when it first acquires the Lease.
func (m *Manager) Elected() <-chan struct{} { return m.elected }

// Run runs every runnable until ctx ends or one fails, then stops them all
// and waits for them. Under leader election, leader-only runnables start once
// the Lease is acquired and stop before it is released (when ctx ends) or
// when it cannot be renewed (Run then returns ErrLeaderElectionLost). Run
// returns nil after ctx ends, otherwise the errors that stopped it. A Manager
// runs at most once.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("controller: Manager.Run called twice")
	}
	m.started = true
	runnables := m.runnables
	m.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		errMu sync.Mutex
		errs  []error
	)
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
		cancel()
	}
	start := func(ctx context.Context, wg *sync.WaitGroup, r Runnable) {
		wg.Go(func() {
			if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				fail(fmt.Errorf("controller: manager: %T: %w", r, err))
			}
		})
	}

	var always, leaders sync.WaitGroup
	var leaderOnly []Runnable
	for _, r := range runnables {
		if needsLeader(r) {
			leaderOnly = append(leaderOnly, r)
		} else {
			start(ctx, &always, r)
		}
	}
	if m.elector == nil {
		close(m.elected)
		for _, r := range leaderOnly {
			start(ctx, &leaders, r)
		}
		<-ctx.Done()
		leaders.Wait()
	} else if m.elector.acquire(ctx) == nil {
		close(m.elected)
		leaderCtx, stopLeading := context.WithCancel(ctx)
		for _, r := range leaderOnly {
			start(leaderCtx, &leaders, r)
		}
		lost := m.elector.renew(leaderCtx)
		stopLeading()
		leaders.Wait()
		if lost != nil {
			fail(lost)
		} else {
			releaseCtx, done := context.WithTimeout(context.WithoutCancel(ctx), m.elector.cfg.RenewDeadline)
			m.elector.release(releaseCtx)
			done()
		}
	}
	cancel()
	always.Wait()
	return errors.Join(errs...)
}

// needsLeader reports whether r runs only on the leader.
func needsLeader(r Runnable) bool {
	if l, ok := r.(LeaderElectionRunnable); ok {
		return l.NeedLeaderElection()
	}
	_, cache := r.(interface{ HasSynced() bool })
	return !cache
}
