package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/internal/controllers/gc"
	"github.com/setpoint/setpoint/internal/controllers/namespace"
	"github.com/setpoint/setpoint/pkg/controller"
)

// LeaderElection tunes the election that decides which replica on a shared
// database runs the built-in controllers (the garbage collector and the
// namespace controller), as kube-controller-manager's --leader-elect-*
// flags. The zero value takes Kubernetes' defaults.
type LeaderElection struct {
	// Disabled runs the controllers on every replica, without a Lease, as
	// --controllers-leader-elect=false. Their writes are conditional, so
	// duplicated work is harmless, but every replica then pays for
	// watching every resource. Default false.
	Disabled bool
	// LeaseDuration is how long standbys wait, after the leader last
	// renewed the Lease, before one takes over. Whole seconds. Default 15s.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader retries renewing before it
	// stops its controllers; shorter than LeaseDuration. Default 10s.
	RenewDeadline time.Duration
	// RetryPeriod is the wait between attempts to acquire or renew the
	// Lease. Default 2s.
	RetryPeriod time.Duration
}

// Defaults of LeaderElection's fields, Kubernetes' own, and the Lease the
// replicas compete for.
const (
	DefaultLeaseDuration  = 15 * time.Second
	DefaultRenewDeadline  = 10 * time.Second
	DefaultRetryPeriod    = 2 * time.Second
	ControllersLeaseSpace = "kube-system"
	ControllersLeaseName  = "setpoint-controller-manager"
)

func (l *LeaderElection) withDefaults() error {
	if l.LeaseDuration == 0 {
		l.LeaseDuration = DefaultLeaseDuration
	}
	if l.RenewDeadline == 0 {
		l.RenewDeadline = DefaultRenewDeadline
	}
	if l.RetryPeriod == 0 {
		l.RetryPeriod = DefaultRetryPeriod
	}
	if l.LeaseDuration < time.Second || l.RetryPeriod < 0 || l.RenewDeadline < 0 || l.RenewDeadline >= l.LeaseDuration {
		return fmt.Errorf("LeaderElection wants LeaseDuration at least 1s, 0 < RetryPeriod and RenewDeadline < LeaseDuration; got %v, %v, %v",
			l.LeaseDuration, l.RenewDeadline, l.RetryPeriod)
	}
	return nil
}

// runControllers runs the enabled built-in controllers, which use this
// server's public API over loopback as ControllersUser, until ctx ends.
// On a shared database they run only while this replica holds the controllers' Lease; after losing
// it the replica stands for election again. On SQLite the server is alone
// by construction (its data directory is locked), so it runs them at once:
// an election would only delay them after a crash, until the dead
// process's Lease expired.
func (s *Server) runControllers(ctx context.Context) error {
	if s.cfg.DisableGarbageCollector && s.cfg.DisableNamespaceController {
		return nil
	}
	api := rest.CopyConfig(&s.sec.loopback)
	addr := s.addr
	var election *controller.LeaderElection
	if s.cfg.postgres && !s.cfg.LeaderElection.Disabled {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("controllers: leader election identity: %w", err)
		}
		le := s.cfg.LeaderElection
		election = &controller.LeaderElection{
			Config: api, Namespace: ControllersLeaseSpace, Name: ControllersLeaseName,
			Identity:      host + "_" + addr + "_" + rand.Text()[:8],
			LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod,
		}
	}
	for {
		err := s.runControllersOnce(ctx, api, election)
		if !errors.Is(err, controller.ErrLeaderElectionLost) || ctx.Err() != nil {
			return err
		}
		s.cfg.Logger.Warn("controllers stopped on losing the lease; standing for election again")
	}
}

// runControllersOnce runs the controllers under one Manager, which starts
// them (and so their informers) only once elected, until ctx ends or the
// Lease is lost.
func (s *Server) runControllersOnce(ctx context.Context, api *rest.Config, election *controller.LeaderElection) error {
	m, err := controller.NewManager(controller.ManagerOptions{LeaderElection: election, Logger: s.cfg.Logger})
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	// Both are fresh each term: a controller runs once.
	var parts []controller.Runnable
	if !s.cfg.DisableGarbageCollector {
		collector, err := gc.New(api, gc.Options{Logger: s.cfg.Logger})
		if err != nil {
			return fmt.Errorf("controllers: %w", err)
		}
		parts = append(parts, collector)
	}
	if !s.cfg.DisableNamespaceController {
		nsc, err := namespace.New(api, namespace.Options{Logger: s.cfg.Logger})
		if err != nil {
			return fmt.Errorf("controllers: %w", err)
		}
		parts = append(parts, nsc)
	}
	for _, p := range parts {
		// RunnableFunc hides any HasSynced, so the Manager runs each
		// controller on the leader only.
		if err := m.Add(controller.RunnableFunc(p.Run)); err != nil {
			return fmt.Errorf("controllers: %w", err)
		}
	}
	return m.Run(ctx)
}
