package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// backupTimeFormat names rotated files, in UTC: sortable as text, and
// the format kube-apiserver's rotated audit logs have.
const backupTimeFormat = "2006-01-02T15-04-05.000"

// rotation is when a rotatingFile rotates and what it keeps.
type rotation struct {
	// maxBytes is the size past which the file is rotated.
	maxBytes int64
	// maxBackups is how many rotated files are kept; negative keeps all.
	maxBackups int
	// maxAge removes rotated files older than this; 0 keeps them.
	maxAge time.Duration
	now    func() time.Time
}

// rotatingFile is a file, mode 0600, that is renamed to
// <name>-<timestamp><ext> and started anew before a write would take it
// past maxBytes. Old rotated files are removed after each rotation. It is
// used by one goroutine at a time.
type rotatingFile struct {
	path string
	r    rotation
	f    *os.File
	size int64
}

// openRotating opens (or creates) the file at path for appending.
func openRotating(path string, r rotation) (*rotatingFile, error) {
	w := &rotatingFile{path: path, r: r}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// open opens the file at w.path for appending, readable by its owner
// only, even if it existed with a wider mode, creating its directory.
func (w *rotatingFile) open() error {
	if err := os.MkdirAll(filepath.Dir(w.path), 0o700); err != nil {
		return fmt.Errorf("audit: create log directory: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open log: %w", err)
	}
	st, err := f.Stat()
	if err == nil && st.Mode().Perm() != 0o600 {
		err = f.Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open log: %w", err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Write appends p, rotating first if p would take a non-empty file past
// the size limit (a single larger p goes whole into a new file).
func (w *rotatingFile) Write(p []byte) (int, error) {
	if w.size > 0 && w.size+int64(len(p)) > w.r.maxBytes {
		if err := w.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

// Close closes the file.
func (w *rotatingFile) Close() error { return w.f.Close() }

// backupName is the name of the file rotated at t.
func (w *rotatingFile) backupName(t time.Time) string {
	ext := filepath.Ext(w.path)
	return strings.TrimSuffix(w.path, ext) + "-" + t.UTC().Format(backupTimeFormat) + ext
}

// rotate renames the file to its backup name, opens a new one and prunes
// old backups.
func (w *rotatingFile) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("audit: rotate log: %w", err)
	}
	t := w.r.now()
	name := w.backupName(t)
	// Two rotations in one millisecond (tiny limits) must not overwrite.
	for _, err := os.Lstat(name); err == nil; _, err = os.Lstat(name) {
		t = t.Add(time.Millisecond)
		name = w.backupName(t)
	}
	renameErr := os.Rename(w.path, name)
	if err := w.open(); err != nil {
		return errors.Join(renameErr, err)
	}
	if renameErr != nil {
		return fmt.Errorf("audit: rotate log: %w", renameErr)
	}
	return w.prune()
}

// prune removes the backups past maxBackups, oldest first, and those
// older than maxAge.
func (w *rotatingFile) prune() error {
	dir := filepath.Dir(w.path)
	ext := filepath.Ext(w.path)
	prefix := strings.TrimSuffix(filepath.Base(w.path), ext) + "-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("audit: prune rotated logs: %w", err)
	}
	type backup struct {
		name string
		at   time.Time
	}
	var backups []backup
	for _, e := range entries {
		stamp, ok := strings.CutPrefix(e.Name(), prefix)
		if stamp, ok = strings.CutSuffix(stamp, ext); !ok || !e.Type().IsRegular() {
			continue
		}
		if at, err := time.Parse(backupTimeFormat, stamp); err == nil {
			backups = append(backups, backup{e.Name(), at})
		}
	}
	// Newest first.
	slices.SortFunc(backups, func(a, b backup) int { return b.at.Compare(a.at) })
	var errs []error
	for i, b := range backups {
		tooMany := w.r.maxBackups >= 0 && i >= w.r.maxBackups
		tooOld := w.r.maxAge > 0 && w.r.now().Sub(b.at) > w.r.maxAge
		if tooMany || tooOld {
			if err := os.Remove(filepath.Join(dir, b.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("audit: prune rotated logs: %w", err)
	}
	return nil
}
