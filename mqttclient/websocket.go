package mqttclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/datacore-bridge/datacore-bridge/internal/redact"
)

// errClosedByClient is the cause reported when the MQTT client closed the
// socket without an I/O error having been seen first.
var errClosedByClient = errors.New("websocket closed by the mqtt client (keepalive timeout or protocol error)")

// closeFrameTimeout bounds the WebSocket close frame written on Close.
const closeFrameTimeout = 250 * time.Millisecond

// writeBuffers lends WebSocket write buffers to connections only while they
// write a message: an idle connection (most of them, at a message a second)
// then holds no write buffer of its own.
var writeBuffers sync.Pool

// dialWebSocket opens a WebSocket with subprotocol "mqtt" to rawURL. Unlike
// gorilla's DialContext alone, cancelling ctx also aborts a server that has
// accepted the TCP connection but never answers the upgrade. An upgrade
// answered with a status other than 101 yields a *HandshakeError; other
// errors are redacted and prefixed with host, never with the URL.
func dialWebSocket(ctx context.Context, rawURL, host string, timeout time.Duration, red redact.Secrets) (*websocket.Conn, error) {
	var (
		mu      sync.Mutex
		raw     []net.Conn
		aborted bool
	)
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: timeout,
		Subprotocols:     []string{"mqtt"},
		WriteBufferPool:  &writeBuffers,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			if aborted {
				_ = c.Close()
				return nil, context.Cause(ctx)
			}
			raw = append(raw, c)
			return c, nil
		},
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		aborted = true
		for _, c := range raw {
			_ = c.Close()
		}
	})
	ws, resp, err := d.DialContext(ctx, rawURL, nil)
	if !stop() { // ctx ended while dialling: whatever happened, report that
		if ws != nil {
			_ = ws.Close()
		}
		return nil, fmt.Errorf("mqttclient: websocket dial %s: %w", host, ctx.Err())
	}
	if err != nil {
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			return nil, &HandshakeError{
				Status:     resp.StatusCode,
				RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			}
		}
		if isTimeout(err) { // the socket deadline is ctx's deadline
			return nil, fmt.Errorf("mqttclient: websocket dial %s: timed out after %s: %w", host, timeout, context.DeadlineExceeded)
		}
		return nil, red.Err(fmt.Errorf("mqttclient: websocket dial %s: %w", host, red.Err(err)))
	}
	return ws, nil
}

// isTimeout reports whether err is a socket deadline having passed. gorilla
// hides the net error's chain, so ask net.Error too.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// wsConn presents a WebSocket as the byte stream paho expects: each Write is
// one binary message (safe for concurrent use), and Read returns bytes
// across message boundaries, so an MQTT packet may span frames.
type wsConn struct {
	ws *websocket.Conn

	rmu sync.Mutex
	r   io.Reader // current message, nil between messages

	wmu sync.Mutex

	closed atomic.Bool
	// failed is called at most once, with the first of: a read or write
	// error (the peer closed, the network failed) or errClosedByClient when
	// Close comes first. It may be nil.
	failed     func(error)
	failedOnce sync.Once
}

var _ net.Conn = (*wsConn)(nil)

func newWSConn(ws *websocket.Conn, failed func(error)) *wsConn {
	return &wsConn{ws: ws, failed: failed}
}

// ioErr reports err as a connection failure, unless Close came first; then
// it returns an error whose text contains net.ErrClosed's, which paho treats
// as an expected shutdown.
func (c *wsConn) ioErr(err error) error {
	if c.closed.Load() {
		return fmt.Errorf("websocket: %w", net.ErrClosed)
	}
	if c.failed != nil {
		c.failedOnce.Do(func() { c.failed(err) })
	}
	return err
}

// Read reads the next bytes of the stream, moving on to the next binary
// message when the current one is exhausted.
func (c *wsConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, c.ioErr(err)
			}
			if typ != websocket.BinaryMessage {
				return 0, c.ioErr(errors.New("websocket: unexpected text message"))
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue // empty message or end of one: next
		}
		if err != nil {
			return n, c.ioErr(err)
		}
		return n, nil
	}
}

// Write sends p as one binary message.
func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, c.ioErr(err)
	}
	return len(p), nil
}

// Close sends a close frame (best effort, bounded) and closes the socket.
// It is safe to call more than once.
func (c *wsConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.failed != nil {
		// The MQTT client closes the socket itself when it gives up on the
		// connection (for example no PINGRESP in time); if nothing failed
		// before, that is the failure.
		c.failedOnce.Do(func() { c.failed(errClosedByClient) })
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeFrameTimeout))
	return c.ws.Close()
}

// LocalAddr returns the local network address.
func (c *wsConn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *wsConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *wsConn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ws.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline.
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
