package main

import (
	"context"
	"net/http"
)

// measureStartup starts the server on an empty data directory opts.starts
// times and reports the median time from exec to the listening line and
// to the first 200 from /readyz.
func measureStartup(ctx context.Context, opts options, rep *Report) error {
	var listening, ready []float64
	client := &http.Client{}
	for range opts.starts {
		p, err := startProcess(ctx, opts.bin, opts.serverEnv)
		if err != nil {
			return err
		}
		readyAfter, err := p.waitReady(ctx, client)
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
	rep.addRounds("startup", "exec → first 200 from /readyz", ready, "ms", atMost(50))
	return nil
}
