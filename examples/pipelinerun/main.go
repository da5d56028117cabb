// Command pipelinerun is an example operator built with Setpoint's
// controller SDK: workers that run the steps of PipelineRun resources
// (crd.yaml), report progress in their status, and take over the steps of
// a worker that crashed. Run as many workers as you like; README.md walks
// through it.
//
//	go run ./examples/pipelinerun -kubeconfig setpoint-data/kubeconfig
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/shard"
)

func main() {
	host, _ := os.Hostname()
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the server; default $KUBECONFIG or ~/.kube/config")
	namespace := flag.String("namespace", "", "namespace to work in; default all")
	identity := flag.String("identity", fmt.Sprintf("%s-%d", host, os.Getpid()), "this worker's name in step claims; unique per worker")
	workers := flag.Int("workers", 4, "runs this worker advances at once")
	lease := flag.Duration("lease", 10*time.Second, "how long a step claim lasts unless renewed; a crashed worker's steps are retried after it")
	sharded := flag.Bool("shard", false, "share the runs among the workers with pkg/shard, so each run has one worker; -identity must then be lowercase letters, digits and '-'")
	shardNamespace := flag.String("shard-namespace", "default", "with -shard: namespace of the workers' membership Leases")
	flag.Parse()

	cfg, err := client.NewConfig(*kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipelinerun:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := options{Namespace: *namespace, Identity: *identity, Workers: *workers, Lease: *lease}
	if *sharded {
		o.Shard = &shard.Options{Namespace: *shardNamespace}
	}
	if err := run(ctx, cfg, o); err != nil {
		fmt.Fprintln(os.Stderr, "pipelinerun:", err)
		os.Exit(1)
	}
}

// options configure one worker process.
type options struct {
	Namespace  string
	Identity   string
	Workers    int
	Lease      time.Duration
	OnStepDone func(run controller.Request, step string)
	Logger     *slog.Logger
	// Shard, when set, shares the runs among the workers: each run is
	// reconciled by the one worker that owns it, and moves to another when
	// that worker leaves or its membership Lease lapses. The claims stay
	// the guarantee that a step has one holder. Config, Name, Identity and
	// Logger are filled in.
	Shard *shard.Options
}

// run runs one worker until ctx ends.
func run(ctx context.Context, cfg *rest.Config, o options) error {
	runs, err := client.New[PipelineRun](cfg, pipelineRunResource)
	if err != nil {
		return fmt.Errorf("creating the PipelineRun client: %w", err)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	inf := informer.New(runs, informer.Options[*PipelineRun]{
		Namespace: o.Namespace,
		Logger:    logger,
		// The worker reads no managedFields: dropping them halves the cache.
		Transform: func(r *PipelineRun) *PipelineRun { r.ManagedFields = nil; return r },
	})
	var member *shard.Member
	if o.Shard != nil {
		so := *o.Shard
		so.Config, so.Name, so.Identity, so.Logger = cfg, "pipelinerun", o.Identity, logger
		if member, err = shard.New(so); err != nil {
			return fmt.Errorf("joining the workers' shard group: %w", err)
		}
	}
	w := &Worker{Identity: o.Identity, Lease: o.Lease, Client: runs, Cache: inf, OnStepDone: o.OnStepDone, Logger: logger}
	c, err := controller.For(inf).
		WithOptions(controller.Options{Name: "pipelinerun", Workers: o.Workers, Logger: logger, Shard: member}).
		Complete(w)
	if err != nil {
		return fmt.Errorf("building the controller: %w", err)
	}
	m, err := controller.NewManager(controller.ManagerOptions{Logger: logger})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	runnables := []controller.Runnable{inf, c}
	if member != nil {
		runnables = append(runnables, member)
	}
	for _, r := range runnables {
		if err := m.Add(r); err != nil {
			return fmt.Errorf("adding to the manager: %w", err)
		}
	}
	logger.Info("worker started", "identity", o.Identity, "lease", o.Lease, "workers", o.Workers)
	return m.Run(ctx)
}
