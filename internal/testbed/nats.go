package testbed

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// ErrTimeout is returned when something the test bed waits for does not
// happen in time (it is poll.ErrTimeout).
var ErrTimeout = poll.ErrTimeout

// NATS is an embedded nats-server (see natstest.Server): Options holds what
// it was started with, its port filled in, so that Restart brings it back on
// the same port and store.
type NATS = natstest.Server

// NATSOptions returns the options of an embedded server on 127.0.0.1, a
// random port, without logs or signal handlers, with JetStream when
// jetStream is set (see natstest.NewOptions).
func NATSOptions(jetStream bool) server.Options { return natstest.NewOptions(jetStream) }

// StartNATS starts an embedded server with opts (see NATSOptions) and waits
// until it takes connections (see natstest.Start).
func StartNATS(opts server.Options) (*NATS, error) { return natstest.Start(opts) }
