package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc: USER_HZ, 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time used so far by the whole machine, the server,
// the benchmark itself and the processes of this host's PostgreSQL.
// Fields the host does not report stay zero.
type cpuSample struct {
	machine, server, bench, database time.Duration
}

// sampleCPU reads the CPU times now, the server's those of srv.
func sampleCPU(srv server) cpuSample {
	var s cpuSample
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		// cpu user nice system idle iowait irq softirq steal ...
		for i, f := range strings.Fields(line) {
			if v, err := strconv.ParseInt(f, 10, 64); err == nil && i != 4 && i != 5 && i <= 8 {
				s.machine += time.Duration(v) * clockTick
			}
		}
	}
	s.server = srv.cpu()
	if srv.database {
		s.database = postgresCPU()
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.bench = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// postgresCPU is the CPU time of the processes of this host named
// "postgres": the server, its background workers and a backend per
// connection. A backend that ended between two samples takes its time
// with it; the servers' connection pools keep theirs open.
func postgresCPU() time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	for _, stat := range stats {
		data, err := os.ReadFile(stat)
		if err != nil || !bytes.Contains(data, []byte("(postgres)")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(stat)))
		total += processCPU(pid)
	}
	return total
}

// processCPU is the user and system time of process pid from
// /proc/PID/stat, or 0.
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces; fields follow the
	// last ')': state is field 3, utime 14 and stime 15.
	i := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0
	}
	var total time.Duration
	for _, f := range fields[11:13] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += time.Duration(v) * clockTick
	}
	return total
}

// Step is how one scenario used the machine: its wall time and the CPU
// time of the server, the benchmark and every other process meanwhile.
type Step struct {
	Name string `json:"name"`
	// Seconds is the wall time of the step.
	Seconds float64 `json:"seconds"`
	// ServerCPU is the CPU time of the server under test, in seconds (0
	// for the start-up step, whose servers count as other processes).
	ServerCPU float64 `json:"serverCPU"`
	// BenchCPU is the CPU time of the benchmark program, in seconds.
	BenchCPU float64 `json:"benchCPU"`
	// OtherCPU is the CPU time of every other process, in seconds: on a
	// shared machine, what the measured figures had to compete with.
	OtherCPU float64 `json:"otherCPU"`
	// DatabaseCPU is the part of OtherCPU this host's PostgreSQL used, in
	// seconds, when the servers keep their data in it.
	DatabaseCPU float64 `json:"databaseCPU,omitempty"`
}

// newStep builds the step between two CPU samples taken wall apart.
func newStep(name string, wall time.Duration, before, after cpuSample) Step {
	server, bench := after.server-before.server, after.bench-before.bench
	other := after.machine - before.machine - server - bench
	return Step{
		Name:      name,
		Seconds:   wall.Seconds(),
		ServerCPU: server.Seconds(),
		BenchCPU:  bench.Seconds(),
		OtherCPU:  max(0, other.Seconds()),
		// A backend that ended between the samples lowers the sum.
		DatabaseCPU: max(0, (after.database - before.database).Seconds()),
	}
}
