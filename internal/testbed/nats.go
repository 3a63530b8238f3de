package testbed

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// ErrTimeout is returned when something the test bed waits for does not
// happen in time (it is poll.ErrTimeout).
var ErrTimeout = poll.ErrTimeout

// NATS is an embedded nats-server. Options holds what it was started with,
// its port filled in, so that Restart brings it back on the same port and
// store.
type NATS struct {
	*server.Server
	Options server.Options
	tmpDir  string // a store directory the test bed made and removes
}

// NATSOptions returns the options of an embedded server on 127.0.0.1, a
// random port, without logs or signal handlers, with JetStream when
// jetStream is set (in a temporary store unless StoreDir is set later).
func NATSOptions(jetStream bool) server.Options {
	return server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: jetStream}
}

// StartNATS starts an embedded server with opts (see NATSOptions) and waits
// until it takes connections. With JetStream and no StoreDir it stores in a
// temporary directory that Close removes.
func StartNATS(opts server.Options) (*NATS, error) {
	n := &NATS{Options: opts}
	if opts.JetStream && opts.StoreDir == "" {
		dir, err := os.MkdirTemp("", "datacore-testbed-js-")
		if err != nil {
			return nil, err
		}
		n.tmpDir, n.Options.StoreDir = dir, dir
	}
	if err := n.Restart(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Restart starts the server again with the same options, port and store
// (after it was shut down).
func (n *NATS) Restart() error {
	o := n.Options
	ns, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("nats server: not ready: %w", ErrTimeout)
	}
	n.Server = ns
	n.Options.Port = ns.Addr().(*net.TCPAddr).Port
	return nil
}

// Close shuts the server down, waits for it and removes a temporary store.
func (n *NATS) Close() {
	if n.Server != nil {
		n.Shutdown()
		n.WaitForShutdown()
	}
	if n.tmpDir != "" {
		_ = os.RemoveAll(n.tmpDir)
	}
}
