package main

import "context"

// memory reports the server's resident memory now, as label says, with
// target on embedded SQLite. Without the server's process IDs there is
// nothing to report.
func memory(label string, target *Target) func(context.Context, *env, *Report) error {
	return func(_ context.Context, e *env, rep *Report) error {
		if len(e.server.pids) == 0 {
			return nil
		}
		rss, err := e.server.memoryMiB("VmRSS")
		if err != nil {
			return err
		}
		rep.add("memory", "RSS "+label, rss, "MiB", e.opts.embedded(target))
		return nil
	}
}

// peakMemory reports the most resident memory the server had.
func peakMemory(_ context.Context, e *env, rep *Report) error {
	if len(e.server.pids) == 0 {
		return nil
	}
	hwm, err := e.server.memoryMiB("VmHWM")
	if err != nil {
		return err
	}
	rep.add("memory", "peak RSS over the whole run", hwm, "MiB", nil)
	return nil
}
