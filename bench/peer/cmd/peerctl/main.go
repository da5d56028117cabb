// Command peerctl starts and stops the Kubernetes peer used by the
// benchmarks: an etcd server and the apiextensions-apiserver on loopback,
// with every file (certificates, etcd data, logs, kubeconfig, PIDs) under one
// directory.
//
//	peerctl start [-bin DIR] [-timeout D] STATEDIR
//	peerctl stop STATEDIR
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "peerctl:", err)
		os.Exit(1)
	}
}

// run dispatches the start and stop subcommands.
func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: peerctl start|stop [flags] STATEDIR")
	}
	switch args[0] {
	case "start":
		fs := flag.NewFlagSet("start", flag.ContinueOnError)
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own executable: %w", err)
		}
		bin := fs.String("bin", filepath.Dir(self), "directory holding the etcd and apiextensions-apiserver binaries")
		timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for each server to become ready")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("usage: peerctl start [-bin DIR] [-timeout D] STATEDIR")
		}
		p, err := start(*bin, fs.Arg(0), *timeout)
		if err != nil {
			return err
		}
		fmt.Printf("etcd PID %d (client %s)\n", p.EtcdPID, p.EtcdURL)
		fmt.Printf("apiextensions-apiserver PID %d (%s)\n", p.APIServerPID, p.APIServerURL)
		fmt.Printf("ready in %s (apiserver %s)\n", p.Ready.Round(time.Millisecond), p.APIServerReady.Round(time.Millisecond))
		fmt.Printf("kubeconfig %s\n", p.Kubeconfig)
		return nil
	case "stop":
		if len(args) != 2 {
			return errors.New("usage: peerctl stop STATEDIR")
		}
		return stop(args[1], 20*time.Second)
	default:
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
}
