package mqttws

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Subprotocol is the WebSocket subprotocol of MQTT.
const Subprotocol = "mqtt"

// ErrNotBinary is returned by Conn.Read for a WebSocket message that is not binary.
var ErrNotBinary = errors.New("websocket message is not binary")

var upgrader = websocket.Upgrader{
	Subprotocols:    []string{Subprotocol},
	ReadBufferSize:  16 << 10,
	WriteBufferSize: 32 << 10,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// Upgrade upgrades r to a WebSocket offering the mqtt subprotocol. On error
// it has answered the request.
func Upgrade(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	return upgrader.Upgrade(w, r, nil)
}

// Conn adapts a server-side WebSocket to the net.Conn a broker reads MQTT
// from: MQTT bytes travel in binary messages, a packet may span messages.
// Addresses, deadlines and Close are those of the underlying connection.
type Conn struct {
	net.Conn
	ws *websocket.Conn
	r  io.Reader // the current message, or nil
}

// NewConn returns the Conn over ws.
func NewConn(ws *websocket.Conn) *Conn {
	return &Conn{Conn: ws.UnderlyingConn(), ws: ws}
}

// Read reads MQTT bytes across WebSocket messages.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, ErrNotBinary
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one binary WebSocket message. The broker serialises writes.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Listener registers a WebSocket endpoint with a broker, so that closing the
// broker disconnects its clients. Its connections arrive through an HTTP
// handler (Handler, or one of the caller's own that calls
// EstablishConnection with ID), not through Serve.
type Listener struct {
	id, path string
}

// NewListener returns the listener called id for the endpoint at path.
func NewListener(id, path string) Listener { return Listener{id: id, path: path} }

// Init does nothing: there is no socket of its own to open.
func (Listener) Init(*slog.Logger) error { return nil }

// Serve does nothing: connections arrive through the HTTP handler.
func (Listener) Serve(listeners.EstablishFn) {}

// ID returns the listener's id.
func (l Listener) ID() string { return l.id }

// Address returns the endpoint's path.
func (l Listener) Address() string { return l.path }

// Protocol returns "ws".
func (Listener) Protocol() string { return "ws" }

// Close closes the listener's clients.
func (l Listener) Close(closeClients listeners.CloseFn) { closeClients(l.id) }

// Endpoint upgrades every request to a WebSocket and hands it to a broker as
// a connection of one listener, until the connection ends. It checks nothing
// else: the emulator has its own handler that checks the signed URL.
type Endpoint struct {
	b  *mochi.Server
	id string

	mu     sync.Mutex
	closed bool
	conns  map[*Conn]struct{}
	wg     sync.WaitGroup
}

// Handler returns the Endpoint that hands connections to b as connections of
// the listener called id.
func Handler(b *mochi.Server, id string) *Endpoint {
	return &Endpoint{b: b, id: id, conns: make(map[*Conn]struct{})}
}

// ServeHTTP upgrades the request and runs the connection until it ends.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := Upgrade(w, r)
	if err != nil {
		return // the upgrader answered
	}
	c := NewConn(ws)
	defer c.Close()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.conns[c] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		e.wg.Done()
	}()
	_ = e.b.EstablishConnection(e.id, c)
}

// Close refuses new connections, closes those it runs and waits until the
// broker has let go of each. Close it before the broker: closing a broker
// while a client is still attaching or detaching can deadlock in mochi
// (Clients.GetByListener read-locks twice), so nothing may be attaching then.
func (e *Endpoint) Close() {
	e.mu.Lock()
	e.closed = true
	for c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}
