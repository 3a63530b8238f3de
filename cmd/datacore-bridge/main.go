// Command datacore-bridge follows Datacore fixtures and venues and republishes
// every message to NATS. It is a thin main over internal/bridge, the
// composition root; the demo and the benchmark are cmd/datacore-demo and
// cmd/datacore-bench.
//
//	datacore-bridge              run the bridge, configured by DATACORE_* variables
//	datacore-bridge healthcheck  exit 0 when the local bridge answers /healthz
//	datacore-bridge -h           list every variable with its default
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, force, stop := signalContexts()
	defer stop()
	if len(args) == 0 {
		return serveCommand(ctx, force, stdout, stderr)
	}
	switch args[0] {
	case "healthcheck":
		return healthcheckCommand(ctx, args[1:], stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	default:
		usage(stderr)
		return 2
	}
}

// signalContexts returns ctx, done at the first SIGINT or SIGTERM (stop), and
// force, done at the second (stop now: abandon what is still in flight).
// Calling stop releases the signals.
func signalContexts() (ctx, force context.Context, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	force, cancelForce := context.WithCancel(context.Background())
	released := make(chan struct{})
	go func() {
		for _, cancelNext := range []context.CancelFunc{cancel, cancelForce} {
			select {
			case <-sigs:
				cancelNext()
			case <-released:
				return
			}
		}
	}()
	var once sync.Once
	return ctx, force, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(released)
			cancel()
			cancelForce()
		})
	}
}
