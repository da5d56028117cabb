package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where a run happened and what was measured.
type Machine struct {
	// CPU is the model name of the first processor.
	CPU string `json:"cpu"`
	// Cores is the number of logical CPUs the benchmark could use.
	Cores int `json:"cores"`
	// MemoryMiB is the total memory of the host.
	MemoryMiB int `json:"memoryMiB"`
	// OS is GOOS/GOARCH of the benchmark program.
	OS string `json:"os"`
	// GoVersion is the Go version the server binary was built with, or
	// the benchmark's own when the binary carries no build information.
	GoVersion string `json:"goVersion"`
	// Commit is the git revision of the server binary, with "+dirty" when
	// it was built from a modified tree. Binaries built with
	// -buildvcs=false carry none; Commit is then the HEAD of the checkout
	// the benchmark runs in, with "+dirty" when tracked files changed.
	Commit string `json:"commit"`
}

// summary is a one-line description for the markdown table.
func (m Machine) summary() string {
	return fmt.Sprintf("%s (%d cores, %d MiB), %s, commit %s", m.CPU, m.Cores, m.MemoryMiB, m.GoVersion, m.Commit)
}

// describeMachine reads the host from /proc and the build information of
// the server binary bin, falling back to git for the commit.
func describeMachine(bin string) Machine {
	m := Machine{
		CPU:       procField("/proc/cpuinfo", "model name"),
		Cores:     runtime.NumCPU(),
		OS:        runtime.GOOS + "/" + runtime.GOARCH,
		GoVersion: runtime.Version(),
	}
	if kb, err := strconv.Atoi(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB")); err == nil {
		m.MemoryMiB = kb / 1024
	}
	if info, err := buildinfo.ReadFile(bin); err == nil {
		m.GoVersion = info.GoVersion
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			m.Commit = rev
			if modified == "true" {
				m.Commit += "+dirty"
			}
		}
	}
	if m.Commit == "" {
		m.Commit = checkoutCommit()
	}
	return m
}

// checkoutCommit is the HEAD of the git checkout around the working
// directory, with "+dirty" when tracked files differ from it, or "".
func checkoutCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	if changes, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(changes) > 0 {
		commit += "+dirty"
	}
	return commit
}

// procField returns the value of the first "key : value" line of a /proc
// file, or "" when there is none.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
