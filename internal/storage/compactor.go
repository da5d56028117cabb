package storage

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// RevisionCompactor is the part of a Store that a Compactor drives.
type RevisionCompactor interface {
	CurrentRevision(ctx context.Context) (int64, error)
	Compact(ctx context.Context, rev int64) error
}

// CompactorOptions configure a Compactor. Zero fields take their defaults.
type CompactorOptions struct {
	// Window is how long a revision stays readable from the change log at
	// least; default 5 minutes.
	Window time.Duration
	// Interval is how often Run records the current revision and compacts;
	// default 1 minute.
	Interval time.Duration
	// Now returns the current time; default time.Now. Tests set it.
	Now func() time.Time
	// Logger receives failed steps; default slog.Default().
	Logger *slog.Logger
}

// mark is the store's current revision as seen at one time.
type mark struct {
	at  time.Time
	rev int64
}

// Compactor removes change-log entries older than a time window. At every
// step it records (now, current revision) and compacts the store to the
// newest recorded revision that is at least Window old, so every revision
// committed within the last Window stays readable. Step is synchronous for
// tests; Run calls it every Interval.
type Compactor struct {
	store RevisionCompactor
	opts  CompactorOptions
	// marks are recorded revisions, oldest first, all newer than the last
	// compaction. Only the goroutine calling Step touches them.
	marks     []mark
	compacted int64
}

// NewCompactor returns a Compactor for store.
func NewCompactor(store RevisionCompactor, opts CompactorOptions) *Compactor {
	if opts.Window <= 0 {
		opts.Window = 5 * time.Minute
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Compactor{store: store, opts: opts}
}

// Step records the current revision and compacts to the newest recorded
// revision at least Window old. It returns the revision it compacted to, or
// 0 if nothing was old enough. Step must not be called concurrently.
func (c *Compactor) Step(ctx context.Context) (int64, error) {
	now := c.opts.Now()
	rev, err := c.store.CurrentRevision(ctx)
	if err != nil {
		return 0, fmt.Errorf("compactor: read current revision: %w", err)
	}
	if n := len(c.marks); n == 0 || c.marks[n-1].rev != rev {
		c.marks = append(c.marks, mark{at: now, rev: rev})
	}
	due := -1
	for i, m := range c.marks {
		if now.Sub(m.at) < c.opts.Window {
			break
		}
		due = i
	}
	if due < 0 || c.marks[due].rev <= c.compacted {
		return 0, nil
	}
	target := c.marks[due].rev
	if err := c.store.Compact(ctx, target); err != nil {
		return 0, fmt.Errorf("compactor: compact to %d: %w", target, err)
	}
	c.compacted = target
	c.marks = append(c.marks[:0], c.marks[due+1:]...)
	return target, nil
}

// Run calls Step every Interval until ctx ends, logging failed steps, and
// returns nil then.
func (c *Compactor) Run(ctx context.Context) error {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if rev, err := c.Step(ctx); err != nil {
				if ctx.Err() == nil {
					c.opts.Logger.Warn("change-log compaction failed", "err", err)
				}
			} else if rev > 0 {
				c.opts.Logger.Debug("compacted change log", "revision", rev)
			}
		}
	}
}
