// Package mqttws serves a mochi MQTT broker over WebSocket from an HTTP
// handler: the emulator's broker (package sim) and the in-process broker of
// mqttclient's tests both take their connections through it. A Listener
// registers the endpoint with the broker, Upgrade accepts a WebSocket with
// the mqtt subprotocol, and a Conn carries MQTT over it.
//
// It is for the emulator and tests only: the daemon does not import it.
package mqttws
