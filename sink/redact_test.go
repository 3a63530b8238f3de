package sink

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/internal/redact"
)

// TestConnectNeverLogsURLCredentials connects with the credentials in the URL, at
// debug level, through a first connection, a server restart (disconnect, failed
// reconnect attempts, reconnect) and a refusal, and scans every log line and error
// for the secret.
func TestConnectNeverLogsURLCredentials(t *testing.T) {
	const secret = "SECRETTOKEN-8c1f"
	tests := []struct {
		name     string
		userinfo string
		server   func(*server.Options)
		wrong    string // user information the server refuses
	}{
		{"token", secret, natstest.Token(secret), "WRONG" + secret},
		{"user and password", "bridge:" + secret, natstest.UserPassword("bridge", secret), "bridge:WRONG" + secret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logtest.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := natstest.Run(t, func(o *server.Options) { o.JetStream = false; tt.server(o) })
			nc := connect(t, s, func(o *ConnectOptions) {
				o.URLs = "nats://" + tt.userinfo + "@127.0.0.1:" + itoa(s.Options.Port)
				o.Logger = log
			})
			poll.Wait(t, waitLimit, "connected log", func() bool { return strings.Contains(logs.String(), "nats connected") })

			s.Stop()
			waitStatus(t, nc, nats.RECONNECTING)
			poll.Wait(t, waitLimit, "a failed reconnect logged", func() bool { return logs.Count("nats reconnect failed, still trying") > 0 })
			natstest.Rerun(t, s)
			waitStatus(t, nc, nats.CONNECTED)
			poll.Wait(t, waitLimit, "reconnected log", func() bool { return logs.Count("nats reconnected") == 1 })
			nc.Close()
			poll.Wait(t, waitLimit, "closed log", func() bool { return logs.Count("nats connection closed") == 1 })

			// Refused credentials: the first attempt's error is logged.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			bad, err := Connect(ctx, ConnectOptions{
				URLs: "nats://" + tt.wrong + "@127.0.0.1:" + itoa(s.Options.Port), ReconnectWait: 20 * time.Millisecond, Logger: log,
			})
			if err != nil {
				t.Fatalf("Connect with refused credentials: %v", err)
			}
			bad.Close()

			all := logs.String()
			if n := natstest.CountLines(all, `"url":"nats://[set]@127.0.0.1:`); n < 2 {
				t.Errorf("%d log lines with the redacted URL, want the connect and the reconnect: %s", n, all)
			}
			if strings.Contains(all, secret) {
				t.Fatalf("a log line holds the secret: %s", all)
			}
		})
	}
}

// TestConnectErrorHasNoURLCredentials checks that an error returned by Connect
// does not quote the URL's credentials.
func TestConnectErrorHasNoURLCredentials(t *testing.T) {
	const secret = "SECRETTOKEN-77aa"
	sc := redact.NewSecrets(ConnectOptions{URLs: "nats://u:" + secret + "@h:1,nats://" + secret + "x@h:2"}.secretsOf()...)
	inner := errors.New(`dial "nats://u:` + secret + `@h:1" and "nats://` + secret + `x@h:2"`)
	err := sc.Err(inner)
	if strings.Contains(err.Error(), secret) || !errors.Is(err, inner) {
		t.Fatalf("scrubbed error %q (is the original: %v)", err, errors.Is(err, inner))
	}
	if got := redact.NewSecrets().Err(io.EOF); got != io.EOF {
		t.Fatalf("error without secrets changed: %v", got)
	}
}
