package mqttclient

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

var (
	// ErrHandshakeRefused reports that the WebSocket upgrade was answered with
	// HTTP 401 or 403: the signed URL has expired or its signature is not
	// accepted, and only a new grant helps.
	ErrHandshakeRefused = errors.New("mqttclient: websocket handshake refused")
	// ErrHandshakeFailed reports that the WebSocket upgrade was answered with
	// an HTTP status other than 101, 401 or 403 (for example 429 or 5xx).
	ErrHandshakeFailed = errors.New("mqttclient: websocket handshake failed")
	// ErrConnectRefused reports a CONNACK with a non-zero return code.
	ErrConnectRefused = errors.New("mqttclient: connect refused")
	// ErrSubscribeRefused reports a SUBACK return code of 0x80 for at least
	// one topic, or a SUBACK that did not arrive within the connect timeout.
	ErrSubscribeRefused = errors.New("mqttclient: subscribe refused")
	// ErrConnectionLost reports that an established connection ended without
	// Close being called.
	ErrConnectionLost = errors.New("mqttclient: connection lost")
	// ErrClosed reports that a wait on a connection ended because Close was called.
	ErrClosed = errors.New("mqttclient: connection closed")
	// ErrInvalidTopic reports a topic name that cannot be subscribed as a
	// name: empty, holding an MQTT wildcard ('+' or '#') or NUL, or longer
	// than MQTT allows.
	ErrInvalidTopic = errors.New("mqttclient: invalid topic name")
	// ErrInvalidQoS reports a QoS other than 0 or 1 (see CheckQoS).
	ErrInvalidQoS = errors.New("mqttclient: invalid qos")
)

// HandshakeError is returned by Dial when the server answers the WebSocket
// upgrade with an HTTP status other than 101. errors.Is matches it against
// ErrHandshakeRefused for 401 and 403, and ErrHandshakeFailed otherwise.
type HandshakeError struct {
	// Status is the HTTP status code of the refused upgrade.
	Status int
	// RetryAfter is the server's Retry-After header (seconds or HTTP date),
	// zero when absent or unparsable.
	RetryAfter time.Duration
}

// Error describes the refused upgrade without the URL.
func (e *HandshakeError) Error() string {
	var b strings.Builder
	b.WriteString(e.Unwrap().Error())
	b.WriteString(": http ")
	b.WriteString(strconv.Itoa(e.Status))
	if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" ")
		b.WriteString(strings.ToLower(t))
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.String())
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns ErrHandshakeRefused for 401 and 403, else ErrHandshakeFailed.
func (e *HandshakeError) Unwrap() error {
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		return ErrHandshakeRefused
	}
	return ErrHandshakeFailed
}

// parseRetryAfter reads a Retry-After header value: delay-seconds or an
// HTTP date (relative to now). It returns 0 when v is empty, unparsable or in
// the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		if secs > maxSecs {
			secs = maxSecs
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
