package mqttclient

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/internal/redact"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{name: "empty", in: "", want: 0},
		{name: "seconds", in: "30", want: 30 * time.Second},
		{name: "spaces", in: " 5 ", want: 5 * time.Second},
		{name: "zero", in: "0", want: 0},
		{name: "negative", in: "-3", want: 0},
		{name: "date", in: now.Add(2 * time.Minute).Format(http.TimeFormat), want: 2 * time.Minute},
		{name: "past date", in: now.Add(-time.Minute).Format(http.TimeFormat), want: 0},
		{name: "garbage", in: "soon", want: 0},
		{name: "huge", in: "99999999999999999", want: time.Duration(int64(1<<63-1)/int64(time.Second)) * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestHandshakeError(t *testing.T) {
	tests := []struct {
		name   string
		err    *HandshakeError
		is     error
		isNot  error
		prints string
	}{
		{name: "401", err: &HandshakeError{Status: 401}, is: ErrHandshakeRefused, isNot: ErrHandshakeFailed,
			prints: "mqttclient: websocket handshake refused: http 401 unauthorized"},
		{name: "403", err: &HandshakeError{Status: 403}, is: ErrHandshakeRefused, isNot: ErrHandshakeFailed,
			prints: "mqttclient: websocket handshake refused: http 403 forbidden"},
		{name: "429", err: &HandshakeError{Status: 429, RetryAfter: 3 * time.Second}, is: ErrHandshakeFailed, isNot: ErrHandshakeRefused,
			prints: "mqttclient: websocket handshake failed: http 429 too many requests (retry after 3s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.is) || errors.Is(tt.err, tt.isNot) {
				t.Errorf("errors.Is wrong for %v", tt.err)
			}
			if got := tt.err.Error(); got != tt.prints {
				t.Errorf("Error() = %q, want %q", got, tt.prints)
			}
		})
	}
}

func TestRedactor(t *testing.T) {
	raw := signedURL("example.com:443")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	r := redact.SignedURL(u)
	decoded, _ := url.QueryUnescape(u.RawQuery)
	tests := []struct {
		name string
		err  error
	}{
		{name: "url.Error", err: &url.Error{Op: "Get", URL: raw, Err: errors.New("boom")}},
		{name: "decoded query", err: errors.New("bad request " + decoded)},
		{name: "single value", err: errors.New("token FwoGZXIvYXdzEXAMPLESESSIONTOKEN+secret/value== rejected")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Err(tt.err)
			assertNoSecrets(t, "redacted error", got.Error())
			if !errors.Is(got, tt.err) {
				t.Error("redacted error no longer wraps the original")
			}
		})
	}
	plain := errors.New("connection refused")
	if got := r.Err(plain); got != plain {
		t.Errorf("clean error was rewrapped: %v", got)
	}
}
