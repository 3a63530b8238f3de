package main

import (
	"context"
	"fmt"
	"io"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
)

// serveCommand runs the bridge as configured by the environment until ctx is
// done (a first signal), then shuts down; force done (a second signal) cuts
// the shutdown short. It exits 1 when the shutdown abandoned messages or, not
// forced, did not finish in time.
func serveCommand(ctx, force context.Context, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, "run 'datacore-bridge -h' for every variable")
		return 2
	}
	log, err := bridge.NewLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	b, err := bridge.Start(ctx, cfg, log, bridge.Options{})
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
