//go:build unix

package pki

import (
	"fmt"
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on path, creating it if needed,
// and waits for it: servers starting together on one directory generate
// the files once, one after the other. The lock ends when the returned
// file is closed or the process dies.
func lock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
