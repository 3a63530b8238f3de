package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

const (
	natsAuthCredID     = "natsauth-credential"
	natsAuthCredSecret = "natsauth-secret"
)

// TestNATSAuth starts the bridge against a NATS server that wants each kind of
// authentication the configuration offers and checks that it becomes ready.
func TestNATSAuth(t *testing.T) {
	creds := natstest.NewCredentials(t)

	tests := []struct {
		name   string
		server func(*server.Options)
		client func(*config.Config)
	}{
		{
			name:   "user and password",
			server: natstest.UserPassword("bridge", "nats-pw-1"),
			client: func(c *config.Config) { c.NATSUser, c.NATSPassword = "bridge", "nats-pw-1" },
		},
		{
			name:   "token",
			server: natstest.Token("nats-token-1"),
			client: func(c *config.Config) { c.NATSToken = "nats-token-1" },
		},
		{
			name:   "nkey",
			server: creds.NKey.ServerOptions(),
			client: func(c *config.Config) { c.NATSNKey = creds.NKey.SeedFile },
		},
		{
			name:   "creds file in operator mode",
			server: creds.Operator.ServerOptions(),
			client: func(c *config.Config) { c.NATSCreds = creds.Operator.CredsFile },
		},
		{
			name:   "tls with a client certificate",
			server: creds.PKI.ServerTLS(t, true),
			client: func(c *config.Config) {
				c.NATSTLSCA, c.NATSTLSCert, c.NATSTLSKey = creds.PKI.CAFile, creds.PKI.ClientCert, creds.PKI.ClientKey
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := runNATSAuthServer(t, tt.server)
			nb := startNATSAuthBridge(t, ns, tt.client)

			var body string
			poll.Wait(t, 15*time.Second, "/readyz to answer 200", func() bool {
				var code int
				code, body = nb.get(t, "/readyz")
				return code == http.StatusOK
			})
			if !strings.Contains(body, `"ready"`) {
				t.Fatalf("/readyz body %s", body)
			}
			if nb.b.NATS().ConnectedUrl() == "" {
				t.Fatal("bridge not connected to NATS")
			}
			if err := nb.shutdown(); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			nb.assertNoSecrets(t, "nats-pw-1", "nats-token-1", string(creds.NKey.Seed))
		})
	}
}

// TestNATSWrongPasswordKeepsRunning checks that NATS refusing the bridge's
// credentials does not stop it: it starts, /healthz answers 200, /readyz
// answers 503 saying why, it keeps trying, and the refusal is logged once.
func TestNATSWrongPasswordKeepsRunning(t *testing.T) {
	ns := runNATSAuthServer(t, func(o *server.Options) { o.Username, o.Password = "bridge", "right-nats-pw" })
	nb := startNATSAuthBridge(t, ns, func(c *config.Config) {
		c.NATSUser, c.NATSPassword = "bridge", "wrong-nats-pw"
		c.ShutdownTimeout = time.Second
	})

	var body string
	poll.Wait(t, 15*time.Second, "/readyz to name the authorization violation", func() bool {
		var code int
		code, body = nb.get(t, "/readyz")
		if code == http.StatusOK {
			t.Fatalf("/readyz answered 200 with a wrong password: %s", body)
		}
		return code == http.StatusServiceUnavailable && strings.Contains(strings.ToLower(body), "authorization violation")
	})
	t.Logf("/readyz: %s", body)
	// nats.go counts an attempt once it reached the server; each was refused.
	poll.Wait(t, 15*time.Second, "a refused reconnect attempt", func() bool { return nb.b.NATS().Stats().Reconnects >= 1 })
	if code, _ := nb.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz answered %d, want 200 while NATS refuses the credentials", code)
	}
	if nb.b.NATS().IsClosed() {
		t.Fatal("the NATS connection gave up")
	}

	logs := nb.logs.String()
	if n := natstest.CountLines(logs, `"level":"ERROR"`, "authorization violation"); n != 1 {
		t.Fatalf("authorization violation logged %d times as an error, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, "DATACORE_NATS_PASSWORD") {
		t.Fatalf("the error does not say what to check:\n%s", logs)
	}

	// With NATS refusing the bridge there is nothing to flush or drain into; the
	// shutdown is bounded by DATACORE_SHUTDOWN_TIMEOUT (shortened here) and may
	// report that it could not flush, which is not what this test is about.
	if err := nb.shutdown(); err != nil {
		t.Logf("shutdown with NATS refusing the credentials: %v", err)
	}
	nb.assertNoSecrets(t, "right-nats-pw", "wrong-nats-pw")
}

// natsAuthBridge is a bridge started by startNATSAuthBridge.
type natsAuthBridge struct {
	b    *bridge.Bridge
	logs *logtest.Buffer
	base string

	once    sync.Once
	stopErr error
}

// startNATSAuthBridge starts the emulator and the bridge, following nothing,
// against ns with the NATS settings auth applies.
func startNATSAuthBridge(t *testing.T, ns *server.Server, auth func(*config.Config)) *natsAuthBridge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	emu, err := sim.Start(ctx, sim.Options{CredentialID: natsAuthCredID, CredentialSecret: natsAuthCredSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })

	cfg := config.Defaults()
	cfg.APIURL = emu.APIURL()
	cfg.CredentialID, cfg.CredentialSecret = natsAuthCredID, natsAuthCredSecret
	cfg.AdminToken = "natsauth-admin"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATSURLs = []string{ns.ClientURL()}
	auth(cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b, err := bridge.Start(ctx, cfg, log, bridge.Options{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	nb := &natsAuthBridge{b: b, logs: logs, base: "http://" + b.Addr().String()}
	t.Cleanup(func() { _ = nb.shutdown() })
	return nb
}

// shutdown shuts the bridge down once and returns what b.shutdown returned.
func (nb *natsAuthBridge) shutdown() error {
	nb.once.Do(func() { nb.stopErr = nb.b.Shutdown(context.Background()) })
	return nb.stopErr
}

// get asks the bridge's HTTP API for path and returns the status and body.
func (nb *natsAuthBridge) get(t *testing.T, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, nb.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// assertNoSecrets fails if a secret reached the logs.
func (nb *natsAuthBridge) assertNoSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	logs := nb.logs.String()
	for _, s := range append(secrets, natsAuthCredSecret) {
		if strings.Contains(logs, s) {
			t.Fatalf("secret %q in the logs:\n%s", s, logs)
		}
	}
}

// runNATSAuthServer starts an in-process NATS server on a random port, after
// mod has set its authentication.
func runNATSAuthServer(t *testing.T, mod func(*server.Options)) *server.Server {
	t.Helper()
	opts := testbed.NATSOptions(false)
	mod(&opts)
	ns, err := testbed.StartNATS(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns.Server
}
