// Package sim is a local emulator of the Datacore streaming service.
//
// One HTTP listener serves the access API under /v1 (fixture, venue and
// specific-topic grants with signed WebSocket URLs, and REST tokens), the
// REST API under /rest/v1 (each organization's games on a schedule, whose
// streams follow the same schedule) and an MQTT broker over
// WebSocket at /mqtt that enforces what the real service enforces: the URL's
// signature and expiry at the handshake, the granted client id at CONNECT,
// the granted topics at SUBSCRIBE, at most 8 topics per SUBSCRIBE, one
// connection per client id and a maximum connection lifetime. A synthetic
// basketball feed publishes on every granted topic, and fault knobs make the
// access API and the broker misbehave on purpose.
//
// It is used by the bridge's tests, demo and benchmarks, and by
// cmd/datacore-sim for development without Datacore credentials.
package sim
