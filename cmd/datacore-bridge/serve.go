package main

import (
	"context"
	"io"

	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
)

// serveCommand runs the bridge as configured by the environment until ctx is
// done (a first signal), then shuts down; force done (a second signal) cuts
// the shutdown short. See bridge.Serve for the exit status.
func serveCommand(ctx, force context.Context, _, stderr io.Writer) int {
	return bridge.Serve(ctx, force, stderr, bridge.Options{})
}
