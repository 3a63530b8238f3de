package bridge

import (
	"context"
	"fmt"
	"io"

	"github.com/datacore-bridge/datacore-bridge/config"
)

// Serve runs the bridge as configured by the environment until ctx is done
// (a first signal), then shuts down; force done (a second signal) cuts the
// shutdown short. It logs to stderr and returns the exit status: 2 for a
// configuration error, 1 when the bridge cannot start, when the shutdown
// abandoned messages or, not forced, did not finish in time; else 0.
func Serve(ctx, force context.Context, stderr io.Writer, o Options) int {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, "run 'datacore-bridge -h' for every variable")
		return 2
	}
	log, err := NewLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	b, err := Start(ctx, cfg, log, o)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	<-ctx.Done()
	stopWatch := context.AfterFunc(force, func() {
		log.Warn("second signal: stopping now, abandoning what is not settled")
	})
	err = b.Shutdown(force)
	stopWatch()
	if err != nil {
		log.Error("shutdown incomplete", "err", err)
		return 1
	}
	return 0
}
