// Package mqttclient holds one MQTT 3.1.1 connection to one signed
// MQTT-over-WebSocket URL, as handed out by the Datacore access API (AWS IoT
// Core in production).
//
// Dial opens the WebSocket (subprotocol "mqtt"), sends CONNECT with the
// granted client id and a clean session (or, with Options.Persistent, a
// persistent one that a later Dial with the same client id resumes), subscribes to every topic in batches
// of at most eight, and returns only once every SUBACK has been received.
// Messages are handed to Options.Handler one at a time, in arrival order, on
// the client's own goroutine; a Handler that blocks holds back the whole
// connection, which is how backpressure reaches the broker.
//
// A Conn never reconnects by itself: a signed URL expires, so the caller gets
// a fresh grant and dials again. Done is closed when the connection ends, and
// Err says why. Unsubscribe and Idle let a caller retire a connection
// without losing what the broker had already routed to it.
//
// The signed URL's query carries credentials (X-Amz-Credential,
// X-Amz-Security-Token, X-Amz-Signature). It never appears in an error
// returned by this package nor in its logs; only the host is reported.
package mqttclient
