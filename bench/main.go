// Command bench measures a whole Setpoint server: it starts the real
// binary on an empty data directory, drives it over HTTP with client-go,
// and writes the figures as JSON and as a markdown table. With -kubeconfig
// it drives a server already running instead, such as Kubernetes' own API
// server, and -compare tabulates runs of two systems side by side. See
// README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"
)

// options are the command-line flags.
type options struct {
	bin          string
	out          string
	objects      int
	rounds       int
	starts       int
	single       int
	clients      int
	watchers     int
	watchWrites  int
	watchWriters int
	cpuProfile   string
	// serverEnv is added to the server's environment, as NAME=value.
	serverEnv []string
	// label names the system measured in the results.
	label string
	// kubeconfig, when set, reaches a server already running: the
	// program starts none, and counts the processes pids as the server.
	kubeconfig string
	pids       []int
	// startCmd and stopCmd, when set with kubeconfig, start and stop a
	// server of the same kind -starts times to time its start-up.
	startCmd, stopCmd string
	// compare, when set, lists result files to compare instead of running.
	compare []string
	// storage, when set, is the PostgreSQL URL the started servers keep
	// their data in, each run in a fresh schema of that database.
	storage string
	// replicas is how many servers the program starts on storage.
	replicas int
	// selectorObjects is how many widgets the label-selector list over
	// PostgreSQL runs on; 0 skips it.
	selectorObjects int
	// keepSchema, when set, names the schema the label-selector objects
	// are kept in across runs instead of a fresh one.
	keepSchema string
}

func parseOptions(args []string) (options, error) {
	var o options
	var serverEnv, pids, compare string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "../bin/setpoint", "setpoint binary to measure")
	fs.StringVar(&o.out, "out", "", "directory to write <date>.json and latest.md to (default: print only)")
	fs.IntVar(&o.objects, "objects", 20_000, "objects to list, update and delete (the targets are set at 100000)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of each short scenario; the median is reported")
	fs.IntVar(&o.starts, "starts", 5, "server starts to time")
	fs.IntVar(&o.single, "single", 1000, "creates per round from one client")
	fs.IntVar(&o.clients, "clients", 32, "concurrent clients of the parallel writes")
	fs.IntVar(&o.watchers, "watchers", 50, "concurrent watchers")
	fs.IntVar(&o.watchWrites, "watch-writes", 5000, "writes the watchers receive")
	fs.IntVar(&o.watchWriters, "watch-writers", 8, "concurrent clients writing while watched")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the benchmark client to this file")
	fs.StringVar(&serverEnv, "server-env", "", "comma-separated NAME=value pairs added to the server's environment")
	fs.StringVar(&o.label, "label", "setpoint", "name of the system measured, in the results")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "drive the server of this kubeconfig instead of starting -bin")
	fs.StringVar(&pids, "pids", "", "with -kubeconfig: comma-separated IDs of the server's processes, whose memory and CPU are summed")
	fs.StringVar(&o.startCmd, "start-cmd", "", "with -kubeconfig: shell command starting a server and exiting once it is ready, timed -starts times; $BENCH_START_DIR is an empty directory for it")
	fs.StringVar(&o.stopCmd, "stop-cmd", "", "with -start-cmd: shell command stopping the server it started")
	fs.StringVar(&compare, "compare", "", "comma-separated result files of two systems: print their medians and ratios instead of running")
	fs.StringVar(&o.storage, "storage", "", "PostgreSQL URL passed to each server as --storage, in a fresh schema created for the run and dropped after (default: embedded SQLite)")
	fs.IntVar(&o.replicas, "replicas", 1, "with -storage: servers started on the same schema")
	fs.IntVar(&o.selectorObjects, "selector-objects", 20_000, "with -storage: widgets the label-selector list runs on (the target is set at 1000000; 0 skips it)")
	fs.StringVar(&o.keepSchema, "keep-schema", "", "with -storage: schema holding the label-selector widgets, created and filled if needed and kept after the run, so that later runs reuse them")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if serverEnv != "" {
		o.serverEnv = strings.Split(serverEnv, ",")
	}
	if compare != "" {
		o.compare = strings.Split(compare, ",")
	}
	var err error
	if o.pids, err = parsePIDs(pids); err != nil {
		return o, fmt.Errorf("-pids: %w", err)
	}
	if o.kubeconfig == "" && (len(o.pids) > 0 || o.startCmd != "") {
		return o, fmt.Errorf("-pids and -start-cmd need -kubeconfig")
	}
	if (o.startCmd == "") != (o.stopCmd == "") {
		return o, fmt.Errorf("-start-cmd and -stop-cmd go together")
	}
	if err := o.checkStorage(); err != nil {
		return o, err
	}
	for name, v := range map[string]int{"objects": o.objects, "rounds": o.rounds, "starts": o.starts, "single": o.single,
		"clients": o.clients, "watchers": o.watchers, "watch-writes": o.watchWrites, "watch-writers": o.watchWriters} {
		if v < 1 {
			return o, fmt.Errorf("-%s must be at least 1, not %d", name, v)
		}
	}
	if o.objects < o.rounds {
		return o, fmt.Errorf("-objects %d must be at least -rounds %d", o.objects, o.rounds)
	}
	return o, nil
}

// env is what the scenarios share: one server and its clients.
type env struct {
	opts   options
	server server
	// clients reach the first replica, the only one on SQLite: every
	// scenario but the ones spread over the replicas talks to it.
	clients *clients
	// replicas reach every replica, clients first.
	replicas []*clients
	// versions holds the resource version of each widget of the bench
	// namespace, as the last write returned it.
	versions []string
}

// scenario is one step of the run; it adds its figures to the report.
type scenario struct {
	name string
	run  func(ctx context.Context, e *env, rep *Report) error
	// replicated scenarios only run on more than one replica.
	replicated bool
}

// scenarios run in this order on one server: each may rely on what the
// ones before it wrote.
var scenarios = []scenario{
	{name: "idle memory", run: memory("idle after start", nil)},
	{name: "register CRDs", run: registerCRDs},
	{name: "creates from one client", run: createsOneClient},
	{name: "creates from many clients", run: createsManyClients},
	{name: "creates over replicas", run: createsOverReplicas, replicated: true},
	{name: "memory after creates", run: memory("after the creates", atMost(300).at(100_000))},
	{name: "lists", run: lists},
	{name: "informer sync", run: informerSync},
	{name: "status updates", run: statusUpdates},
	{name: "watches", run: watches},
	{name: "deletes", run: deletes},
	{name: "peak memory", run: peakMemory},
}

// selectorScenarios run on PostgreSQL after the others, on replicas of
// a schema of their own, which -keep-schema keeps filled across runs.
var selectorScenarios = []scenario{
	{name: "fill selector objects", run: fillSelector},
	{name: "selector lists", run: selectorLists},
}

func main() {
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if len(opts.compare) > 0 {
		if err := compareFiles(opts.compare, opts.out, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bin := opts.bin
	if opts.kubeconfig != "" {
		bin = "" // the server is not ours to describe
	}
	rep := &Report{Label: opts.label, Date: time.Now().UTC(), Machine: describeMachine(bin), Objects: opts.objects, Rounds: opts.rounds}
	if opts.storage != "" {
		rep.Storage, rep.Replicas = redactURL(opts.storage), opts.replicas
	}
	runErr := run(ctx, opts, rep)
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	if err := rep.WriteMarkdown(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	if opts.out != "" {
		if err := rep.save(opts.out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "bench:", runErr)
		os.Exit(1)
	}
}

// run measures the start-up, then runs every scenario on the server of
// opts.kubeconfig or on the replicas it starts; on PostgreSQL the
// label-selector scenarios follow, on replicas of a second schema.
func run(ctx context.Context, opts options, rep *Report) (err error) {
	if opts.cpuProfile != "" {
		f, err := os.Create(opts.cpuProfile)
		if err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if opts.kubeconfig != "" {
		return runRemote(ctx, opts, rep)
	}
	if _, err := os.Stat(opts.bin); err != nil {
		return fmt.Errorf("server binary (build it with make build): %w", err)
	}
	schemas := newSchemas(opts, rep.Date)
	defer func() { err = errors.Join(err, schemas.drop()) }()
	args, err := schemas.use(ctx, schemas.run, false)
	if err != nil {
		return err
	}
	if err := step(ctx, rep, "start-up", server{}, func() error { return measureStartup(ctx, opts, args, rep) }); err != nil {
		return err
	}
	err = onReplicas(ctx, opts, args, func(e *env) error {
		rep.ServerVersion = e.clients.serverVersion(ctx)
		return runScenarios(ctx, e, scenarios, rep)
	})
	if err != nil || opts.storage == "" || opts.selectorObjects == 0 {
		return err
	}
	if args, err = schemas.use(ctx, schemas.selector, opts.keepSchema != ""); err != nil {
		return err
	}
	// The selector lists are reads of one replica; more replicas would
	// each load the million widgets into their caches first.
	one := opts
	one.replicas = 1
	return onReplicas(ctx, one, args, func(e *env) error { return runScenarios(ctx, e, selectorScenarios, rep) })
}

// runRemote runs every scenario on the server of opts.kubeconfig, after
// timing the start-up of opts.startCmd if there is one.
func runRemote(ctx context.Context, opts options, rep *Report) error {
	if opts.startCmd != "" {
		if err := step(ctx, rep, "start-up", server{}, func() error { return measureStartCmd(ctx, opts, rep) }); err != nil {
			return err
		}
	}
	c, err := newClients(opts.kubeconfig)
	if err != nil {
		return err
	}
	// Kubernetes' API server alone never passes its informer-sync check:
	// its core informers watch the core API, which it does not serve.
	if err := pollReady(ctx, c.http, c.base+"/readyz?exclude=informer-sync", nil); err != nil {
		return err
	}
	rep.ServerVersion = c.serverVersion(ctx)
	e := &env{opts: opts, server: server{pids: opts.pids}, clients: c, replicas: []*clients{c}}
	return runScenarios(ctx, e, scenarios, rep)
}

// runScenarios runs the scenarios in order on the server of e.
func runScenarios(ctx context.Context, e *env, scenarios []scenario, rep *Report) error {
	for _, s := range scenarios {
		if s.replicated && len(e.replicas) < 2 {
			continue
		}
		if err := step(ctx, rep, s.name, e.server, func() error { return s.run(ctx, e, rep) }); err != nil {
			return err
		}
	}
	return nil
}

// step runs one named scenario, logs how long it took, and adds to rep
// how it used the CPU: the server's is that of the processes of srv.
func step(ctx context.Context, rep *Report, name string, srv server, f func() error) error {
	fmt.Fprintf(os.Stderr, "bench: %s...", name)
	start, before := time.Now(), sampleCPU(srv)
	err := f()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, " failed")
		return fmt.Errorf("%s: %w", name, err)
	}
	st := newStep(name, time.Since(start), before, sampleCPU(srv))
	rep.Steps = append(rep.Steps, st)
	fmt.Fprintf(os.Stderr, " %.1fs (CPU: server %.1fs, bench %.1fs, others %.1fs)\n", st.Seconds, st.ServerCPU, st.BenchCPU, st.OtherCPU)
	return nil
}
