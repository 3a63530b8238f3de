// Package testbed runs the whole bridge on one machine: the Datacore
// emulator (package sim), an embedded NATS server (with JetStream when asked)
// and the bridge, on 127.0.0.1 random ports. The demo, the benchmark and the
// end-to-end tests all start it here, and wait on conditions with internal/poll.
//
// It is for developers only: the daemon does not import it.
package testbed
