// Command bench measures a whole Setpoint server: it starts the real
// binary on an empty data directory, drives it over HTTP with client-go,
// and writes the figures as JSON and as a markdown table. See README.md.
package main

import (
	"context"
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
}

func parseOptions(args []string) (options, error) {
	var o options
	var serverEnv string
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
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if serverEnv != "" {
		o.serverEnv = strings.Split(serverEnv, ",")
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
	opts    options
	proc    *process
	clients *clients
	// versions holds the resource version of each widget of the bench
	// namespace, as the last write returned it.
	versions []string
}

// scenario is one step of the run; it adds its figures to the report.
type scenario struct {
	name string
	run  func(ctx context.Context, e *env, rep *Report) error
}

// scenarios run in this order on one server: each may rely on what the
// ones before it wrote.
var scenarios = []scenario{
	{"idle memory", memory("idle after start", nil)},
	{"register CRDs", registerCRDs},
	{"creates from one client", createsOneClient},
	{"creates from many clients", createsManyClients},
	{"memory after creates", memory("after the creates", atMost(300).at(100_000))},
	{"lists", lists},
	{"status updates", statusUpdates},
	{"watches", watches},
	{"deletes", deletes},
	{"peak memory", peakMemory},
}

func main() {
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep := &Report{Date: time.Now().UTC(), Machine: describeMachine(opts.bin), Objects: opts.objects, Rounds: opts.rounds}
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

// run measures the start-up, then runs every scenario on one server.
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
	if _, err := os.Stat(opts.bin); err != nil {
		return fmt.Errorf("server binary (build it with make build): %w", err)
	}
	if err := step(ctx, rep, "start-up", 0, func() error { return measureStartup(ctx, opts, rep) }); err != nil {
		return err
	}
	proc, err := startProcess(ctx, opts.bin, opts.serverEnv)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := proc.stop(); err == nil {
			err = stopErr
		}
	}()
	c, err := newClients(proc.kubeconfig)
	if err != nil {
		return err
	}
	if _, err := proc.waitReady(ctx, c.http); err != nil {
		return err
	}
	e := &env{opts: opts, proc: proc, clients: c}
	for _, s := range scenarios {
		if err := step(ctx, rep, s.name, proc.cmd.Process.Pid, func() error { return s.run(ctx, e, rep) }); err != nil {
			return err
		}
	}
	return nil
}

// step runs one named scenario, logs how long it took, and adds to rep
// how it used the CPU: the server's is that of process serverPID (0: none).
func step(ctx context.Context, rep *Report, name string, serverPID int, f func() error) error {
	fmt.Fprintf(os.Stderr, "bench: %s...", name)
	start, before := time.Now(), sampleCPU(serverPID)
	err := f()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, " failed")
		return fmt.Errorf("%s: %w", name, err)
	}
	st := newStep(name, time.Since(start), before, sampleCPU(serverPID))
	rep.Steps = append(rep.Steps, st)
	fmt.Fprintf(os.Stderr, " %.1fs (CPU: server %.1fs, bench %.1fs, others %.1fs)\n", st.Seconds, st.ServerCPU, st.BenchCPU, st.OtherCPU)
	return nil
}
