package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// server is the system under test as the scenarios measure it: the
// processes whose memory and CPU time count as the server's. For
// Kubernetes that is the API server and etcd together.
type server struct {
	pids []int
	// database tells the CPU samples to count this host's PostgreSQL
	// apart: the servers keep their data in it.
	database bool
}

// parsePIDs reads a comma-separated list of process IDs.
func parsePIDs(s string) ([]int, error) {
	var pids []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid < 1 {
			return nil, fmt.Errorf("process ID %q is not a positive number", f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// cpu is the user and system time the server's processes used so far.
func (s server) cpu() time.Duration {
	var total time.Duration
	for _, pid := range s.pids {
		total += processCPU(pid)
	}
	return total
}

// memoryMiB sums a field such as VmRSS or VmHWM of /proc/PID/status over
// the server's processes, in MiB.
func (s server) memoryMiB(field string) (float64, error) {
	if len(s.pids) == 0 {
		return 0, fmt.Errorf("no server process to read %s of (give -pids)", field)
	}
	var total float64
	for _, pid := range s.pids {
		v := procField(fmt.Sprintf("/proc/%d/status", pid), field)
		kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64)
		if err != nil {
			return 0, fmt.Errorf("process %d %s %q: %w", pid, field, v, err)
		}
		total += kb / 1024
	}
	return total, nil
}
