package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// measureStartup starts the server with the extra flags args on an empty
// data directory opts.starts times and reports the median time from exec
// to the listening line and to the first 200 from /readyz. The second
// includes making the server's CA and certificates, and reading the
// kubeconfig for the CA to trust.
func measureStartup(ctx context.Context, opts options, args []string, rep *Report) error {
	var listening, ready []float64
	for range opts.starts {
		p, err := startProcess(ctx, opts.bin, opts.serverEnv, args)
		if err != nil {
			return err
		}
		c, err := newClients(p.kubeconfig)
		if err != nil {
			return errors.Join(err, p.stop())
		}
		readyAfter, err := p.waitReady(ctx, c)
		if stopErr := p.stop(); err == nil {
			err = stopErr
		}
		if err != nil {
			return err
		}
		listening = append(listening, millis(p.listening))
		ready = append(ready, millis(readyAfter))
	}
	rep.addRounds("startup", "exec → listening line", listening, "ms", nil)
	rep.addRounds("startup", "exec → first 200 from /readyz", ready, "ms", opts.embedded(atMost(50)))
	return nil
}

// measureStartCmd runs opts.startCmd opts.starts times, each in an empty
// directory of its own passed as $BENCH_START_DIR, then opts.stopCmd with
// the same directory, and reports the median time from exec of the start
// command to its exit. The command must exit once its server answers 200
// on /readyz, so that the figure is comparable to the one of setpoint
// serve.
func measureStartCmd(ctx context.Context, opts options, rep *Report) error {
	var ready []float64
	for range opts.starts {
		dir, err := os.MkdirTemp("", "bench-start-")
		if err != nil {
			return fmt.Errorf("start-up directory: %w", err)
		}
		start := time.Now()
		err = runShell(ctx, opts.startCmd, dir)
		took := time.Since(start)
		if stopErr := runShell(ctx, opts.stopCmd, dir); err == nil {
			err = stopErr
		}
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
		ready = append(ready, millis(took))
	}
	rep.addRounds("startup", "exec → first 200 from /readyz", ready, "ms", atMost(50))
	return nil
}

// runShell runs command with sh, with $BENCH_START_DIR set to dir and its
// output on stderr.
func runShell(ctx context.Context, command, dir string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Env = append(os.Environ(), "BENCH_START_DIR="+dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	return nil
}
