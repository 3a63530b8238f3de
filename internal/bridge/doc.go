// Package bridge is the composition root of datacore-bridge: it wires NATS,
// the publisher, the access client, the supervisor of streams and the HTTP
// API from a loaded configuration, and stops them in order. It holds no
// retry, drain or watch loop of its own: those belong to the packages that
// own the connections (sink, fixtures), and the bridge owns, stops and waits
// for each of them.
//
// The daemon (cmd/datacore-bridge), the demo, the benchmark and the
// end-to-end tests all start the bridge through Start.
package bridge
