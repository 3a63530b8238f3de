package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

func TestConnectAuth(t *testing.T) {
	creds := natstest.NewCredentials(t)

	tests := []struct {
		name   string
		server func(*server.Options)
		client func(*ConnectOptions)
		tls    bool
	}{
		{
			name:   "no auth",
			server: nil,
			client: nil,
		},
		{
			name:   "user password",
			server: natstest.UserPassword("bridge", "s3cret-pw"),
			client: func(c *ConnectOptions) { c.User, c.Password = "bridge", "s3cret-pw" },
		},
		{
			name:   "token",
			server: natstest.Token("s3cret-token"),
			client: func(c *ConnectOptions) { c.Token = "s3cret-token" },
		},
		{
			name:   "nkey",
			server: creds.NKey.ServerOptions(),
			client: func(c *ConnectOptions) { c.NKeyFile = creds.NKey.SeedFile },
		},
		{
			name:   "creds",
			server: creds.Operator.ServerOptions(),
			client: func(c *ConnectOptions) { c.CredsFile = creds.Operator.CredsFile },
		},
		{
			name:   "tls with client certificate",
			server: creds.PKI.ServerTLS(t, true),
			client: func(c *ConnectOptions) {
				c.TLSCA, c.TLSCert, c.TLSKey = creds.PKI.CAFile, creds.PKI.ClientCert, creds.PKI.ClientKey
			},
			tls: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := natstest.Run(t, func(o *server.Options) {
				o.JetStream = false
				if tt.server != nil {
					tt.server(o)
				}
			})
			nc := connect(t, s, tt.client)
			if err := Ready(nc); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			if tt.tls && !nc.TLSRequired() {
				t.Fatal("connection is not TLS")
			}
			sub, err := nc.SubscribeSync("auth.check")
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Publish("auth.check", []byte("ok")); err != nil {
				t.Fatal(err)
			}
			if m := recv(t, sub); string(m.Data) != "ok" {
				t.Fatalf("got %q", m.Data)
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	tlsServer := natstest.NewPKI(t).ServerTLS(t, false)
	otherPKI := natstest.NewPKI(t)
	tests := []struct {
		name    string
		server  func(*server.Options)
		client  func(*ConnectOptions)
		wantMsg string
	}{
		{
			name:    "unknown CA",
			server:  tlsServer,
			client:  func(c *ConnectOptions) { c.TLSCA = otherPKI.CAFile },
			wantMsg: "certificate",
		},
		{
			name:    "unreadable creds file",
			server:  nil,
			client:  func(c *ConnectOptions) { c.CredsFile = filepath.Join(t.TempDir(), "missing.creds") },
			wantMsg: "missing.creds",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := natstest.Run(t, func(o *server.Options) {
				o.JetStream = false
				if tt.server != nil {
					tt.server(o)
				}
			})
			var logs logtest.Buffer
			o := ConnectOptions{URLs: s.ClientURL(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			tt.client(&o)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			nc, err := Connect(ctx, o)
			if err == nil {
				nc.Close()
				t.Fatal("Connect succeeded")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.wantMsg) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.wantMsg)
			}
			if IsAuthError(err) {
				t.Fatalf("err = %q is classified as an authorization error", err)
			}
		})
	}
}

// TestConnectAuthRefused checks that credentials the server refuses do not stop the
// daemon: Connect returns a connection that keeps trying, Ready says why it is not
// ready, the refusal is logged once as an error, and once the server accepts the
// credentials the connection comes up without a restart.
func TestConnectAuthRefused(t *testing.T) {
	tests := []struct {
		name     string
		server   func(*server.Options) // refuses the client
		fixed    func(*server.Options) // accepts it
		client   func(*ConnectOptions)
		wantHint string
	}{
		{
			name:     "wrong password",
			server:   func(o *server.Options) { o.Username, o.Password = "bridge", "right-pw" },
			fixed:    func(o *server.Options) { o.Username, o.Password = "bridge", "wrong-pw" },
			client:   func(c *ConnectOptions) { c.User, c.Password = "bridge", "wrong-pw" },
			wantHint: "check the NATS user and password",
		},
		{
			name:     "wrong token",
			server:   func(o *server.Options) { o.Authorization = "tok-123" },
			fixed:    func(o *server.Options) { o.Authorization = "tok-456" },
			client:   func(c *ConnectOptions) { c.Token = "tok-456" },
			wantHint: "check the NATS token",
		},
		{
			name:     "missing token",
			server:   func(o *server.Options) { o.Authorization = "tok-123" },
			fixed:    func(o *server.Options) { o.Authorization = "" },
			client:   nil,
			wantHint: "none is configured",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := natstest.Run(t, func(o *server.Options) {
				o.JetStream = false
				tt.server(o)
			})
			var logs logtest.Buffer
			o := ConnectOptions{
				URLs:             s.ClientURL(),
				ReconnectWait:    20 * time.Millisecond,
				MaxAuthRetryWait: 100 * time.Millisecond,
				Logger:           slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
			}
			if tt.client != nil {
				tt.client(&o)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			nc, err := Connect(ctx, o)
			if err != nil {
				t.Fatalf("Connect = %v, want a connection that keeps trying", err)
			}
			t.Cleanup(nc.Close)

			// nats.go keeps the reason of the last refused attempt; before the first
			// retry there is none yet.
			var ready error
			poll.Wait(t, waitLimit, "Ready to report the authorization violation", func() bool {
				ready = Ready(nc)
				return ready != nil && strings.Contains(strings.ToLower(ready.Error()), "authorization violation")
			})
			if !errors.Is(ready, ErrNotConnected) {
				t.Fatalf("Ready = %v, want ErrNotConnected", ready)
			}
			// Several more refusals: without IgnoreAuthErrorAbort nats.go would have
			// closed the connection after the second.
			var lastReconnects uint64
			poll.Wait(t, waitLimit, "three refused reconnect attempts", func() bool {
				lastReconnects = nc.Stats().Reconnects
				return lastReconnects >= 3
			})
			if nc.IsClosed() {
				t.Fatal("connection closed after repeated authorization errors")
			}

			fixed := s.Options // the server keeps the options it is given
			tt.fixed(&fixed)
			if err := s.ReloadOptions(&fixed); err != nil {
				t.Fatalf("reload: %v", err)
			}
			waitStatus(t, nc, nats.CONNECTED)
			if err := Ready(nc); err != nil {
				t.Fatalf("Ready after the server accepts the credentials: %v", err)
			}

			out := logs.String()
			if n := natstest.CountLines(out, `"level":"ERROR"`, "authorization violation"); n != 1 {
				t.Fatalf("authorization error logged %d times at error level, want 1:\n%s", n, out)
			}
			if !strings.Contains(out, tt.wantHint) {
				t.Fatalf("log does not say what to check (%q):\n%s", tt.wantHint, out)
			}
			for _, secret := range []string{"right-pw", "wrong-pw", "tok-123", "tok-456"} {
				if strings.Contains(out, secret) || strings.Contains(ready.Error(), secret) {
					t.Fatalf("secret %q leaked: ready %q, logs %s", secret, ready, out)
				}
			}
		})
	}
}

// TestConnectSurvivesRevokedCredentials checks that a connection whose credentials the
// server stops accepting keeps trying instead of closing, and comes back when they are
// accepted again.
func TestConnectSurvivesRevokedCredentials(t *testing.T) {
	s := natstest.Run(t, func(o *server.Options) {
		o.JetStream = false
		o.Username, o.Password = "bridge", "pw-1"
	})
	var logs logtest.Buffer
	nc := connect(t, s, func(c *ConnectOptions) {
		c.User, c.Password = "bridge", "pw-1"
		c.MaxAuthRetryWait = 100 * time.Millisecond
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})

	// The server keeps the options it is given: each reload gets its own copy.
	revoked := s.Options
	revoked.Password = "pw-2"
	if err := s.ReloadOptions(&revoked); err != nil {
		t.Fatalf("reload: %v", err)
	}
	poll.Wait(t, waitLimit, "Ready to report the authorization violation", func() bool {
		err := Ready(nc)
		return err != nil && strings.Contains(strings.ToLower(err.Error()), "authorization violation")
	})
	before := nc.Stats().Reconnects
	poll.Wait(t, waitLimit, "three refused reconnect attempts", func() bool { return nc.Stats().Reconnects >= before+3 })
	if nc.IsClosed() {
		t.Fatal("connection closed after repeated authorization errors")
	}

	restored := s.Options
	if err := s.ReloadOptions(&restored); err != nil {
		t.Fatalf("reload: %v", err)
	}
	waitStatus(t, nc, nats.CONNECTED)
	out := logs.String()
	if n := natstest.CountLines(out, `"level":"ERROR"`, "authorization violation"); n != 1 {
		t.Fatalf("authorization error logged %d times at error level, want 1:\n%s", n, out)
	}
}

func TestReconnectDelay(t *testing.T) {
	tests := []struct {
		name     string
		auth     bool
		attempts int
		want     time.Duration
	}{
		{name: "reachable first round", attempts: 1, want: 100 * time.Millisecond},
		{name: "reachable later rounds do not grow", attempts: 10, want: 100 * time.Millisecond},
		{name: "refused first round", auth: true, attempts: 1, want: 100 * time.Millisecond},
		{name: "refused doubles", auth: true, attempts: 3, want: 400 * time.Millisecond},
		{name: "refused is capped", auth: true, attempts: 10, want: time.Second},
		{name: "refused many rounds", auth: true, attempts: 1 << 20, want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sl := &stateLog{wait: 100 * time.Millisecond, authMaxWait: time.Second, authFailing: tt.auth}
			if got := sl.reconnectDelay(tt.attempts); got != tt.want {
				t.Fatalf("reconnectDelay(%d) = %v, want %v", tt.attempts, got, tt.want)
			}
			sl.jitter = 50 * time.Millisecond
			if got := sl.reconnectDelay(tt.attempts); got < tt.want || got >= tt.want+sl.jitter {
				t.Fatalf("with jitter: reconnectDelay(%d) = %v, want in [%v, %v)", tt.attempts, got, tt.want, tt.want+sl.jitter)
			}
		})
	}
}

func TestIsAuthError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "authorization", err: nats.ErrAuthorization, want: true},
		{name: "wrapped", err: fmt.Errorf("connect: %w", nats.ErrAuthorization), want: true},
		{name: "expired", err: nats.ErrAuthExpired, want: true},
		{name: "revoked", err: nats.ErrAuthRevoked, want: true},
		{name: "user authentication expired", err: errors.New("nats: user authentication expired"), want: true},
		{name: "no servers", err: nats.ErrNoServers, want: false},
		{name: "permissions", err: nats.ErrPermissionViolation, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsAuthError(tt.err); got != tt.want {
				t.Fatalf("IsAuthError(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestConnectBeforeServerStarts(t *testing.T) {
	// Reserve a port, free it, and start the server there only after Connect returned.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	var logs logtest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := Connect(ctx, ConnectOptions{
		URLs:          "nats://bridge:pw-xyz@127.0.0.1:" + itoa(port),
		ReconnectWait: 20 * time.Millisecond,
		Logger:        slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("Connect with no server up: %v", err)
	}
	t.Cleanup(nc.Close)
	if err := Ready(nc); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Ready before the server is up = %v, want ErrNotConnected", err)
	}

	natstest.Run(t, natstest.OnPort(port), func(o *server.Options) {
		o.JetStream = false
		o.Username, o.Password = "bridge", "pw-xyz"
	})
	waitStatus(t, nc, nats.CONNECTED)
	if err := Ready(nc); err != nil {
		t.Fatalf("Ready after the server came up: %v", err)
	}
	if strings.Contains(logs.String(), "pw-xyz") {
		t.Fatalf("password in logs: %s", logs.String())
	}
	// The connected callback runs on nats.go's callback goroutine, after the status change.
	poll.Wait(t, waitLimit, "connected log", func() bool { return strings.Contains(logs.String(), "nats connected") })
}

func TestConnectCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Connect(ctx, ConnectOptions{URLs: "nats://127.0.0.1:1"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Connect with canceled ctx = %v", err)
	}
}

func TestConnectOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    ConnectOptions
		wantErr bool
	}{
		{name: "defaults", opts: ConnectOptions{}},
		{name: "urls", opts: ConnectOptions{URLs: "nats://a:4222, nats://b:4222"}},
		{name: "only commas", opts: ConnectOptions{URLs: " , "}, wantErr: true},
		{name: "two auth methods", opts: ConnectOptions{Token: "t", User: "u"}, wantErr: true},
		{name: "creds and nkey", opts: ConnectOptions{CredsFile: "a", NKeyFile: "b"}, wantErr: true},
		{name: "password without user", opts: ConnectOptions{Password: "p"}, wantErr: true},
		{name: "cert without key", opts: ConnectOptions{TLSCert: "c"}, wantErr: true},
		{name: "host without scheme", opts: ConnectOptions{URLs: "127.0.0.1:4222"}},
		{name: "bad url", opts: ConnectOptions{URLs: "nats://u:pw@host:port"}, wantErr: true},
		{name: "negative buffer", opts: ConnectOptions{ReconnectBufSize: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr != (err != nil) {
				t.Fatalf("Validate = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v does not wrap ErrInvalidOptions", err)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Fatalf("error %q quotes the password", err)
			}
		})
	}
}

func TestConnectUnreadableNKeyFile(t *testing.T) {
	_, err := Connect(context.Background(), ConnectOptions{NKeyFile: filepath.Join(t.TempDir(), "missing.nk")})
	if err == nil || !strings.Contains(err.Error(), "missing.nk") {
		t.Fatalf("Connect = %v, want an error naming the file", err)
	}
}

func TestReady(t *testing.T) {
	if err := Ready(nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Ready(nil) = %v", err)
	}
	s := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	nc := connect(t, s, nil)
	if err := Ready(nc); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	nc.Close()
	err := Ready(nc)
	if !errors.Is(err, ErrNotConnected) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Ready after Close = %v", err)
	}
}
