package main

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// The secrets of TestSecretsStayOutOfDebugLogs: long and distinctive, so
// that a scan for them cannot miss a partial leak or match by chance.
const (
	secretUserToken    = "user-identity-token-7c2e91d04b"
	secretApplication  = "application-for-secrets-test"
	secretNATSPassword = "nats-password-5f0a8e3d"
	secretNATSToken    = "nats-token-b61d27c9"
)

// TestSecretsStayOutOfDebugLogs runs the bridge at debug level with each
// secret the configuration takes set, through grants, rotations, a forced
// disconnect and a NATS restart (every path that logs a URL or a
// connection), and scans the logs for every secret's value: the user
// identity token, the NATS password, the NATS token (as a variable and in
// the URL), and the security token, signature and credential of every
// signed URL issued (the scan is newEnv's; see assertNoSecretsInLogs).
func TestSecretsStayOutOfDebugLogs(t *testing.T) {
	tests := []struct {
		name      string
		sim       sim.Options
		nats      func(*server.Options)
		configure func(*config.Config)
		secret    string
	}{
		{
			name: "user identity token",
			sim:  sim.Options{UserIdentityToken: secretUserToken, ApplicationID: secretApplication},
			configure: func(c *config.Config) {
				c.CredentialID, c.CredentialSecret = "", ""
				c.UserIdentityToken, c.ApplicationID = secretUserToken, secretApplication
			},
			secret: secretUserToken,
		},
		{
			name:      "nats user and password",
			nats:      func(o *server.Options) { o.Username, o.Password = "bridge", secretNATSPassword },
			configure: func(c *config.Config) { c.NATSUser, c.NATSPassword = "bridge", secretNATSPassword },
			secret:    secretNATSPassword,
		},
		{
			name:      "nats token",
			nats:      func(o *server.Options) { o.Authorization = secretNATSToken },
			configure: func(c *config.Config) { c.NATSToken = secretNATSToken },
			secret:    secretNATSToken,
		},
		{
			name: "nats token in the url",
			nats: func(o *server.Options) { o.Authorization = secretNATSToken },
			configure: func(c *config.Config) {
				c.NATSURLs = []string{strings.Replace(c.NATSURLs[0], "nats://", "nats://"+secretNATSToken+"@", 1)}
			},
			secret: secretNATSToken,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const id = "sr:match:80"
			o := tt.sim
			o.Fixtures, o.GrantTTL, o.Feed = []string{id}, 2*time.Second, sim.Feed{Rate: 100}
			if o.UserIdentityToken != "" {
				// Only the user's credentials are accepted: no credential pair.
				o.CredentialID = ""
			}
			e := newEnv(t, envOptions{
				sim:  o,
				nats: tt.nats,
				configure: func(c *config.Config) {
					c.Fixtures = []string{id}
					tt.configure(c)
					if c.LogLevel != "debug" {
						t.Fatalf("log level %q, want debug", c.LogLevel)
					}
				},
				secrets: []string{tt.secret},
			})
			published := func() bool { return e.b.Published() > 0 }
			rotated := func() bool { return sumMetric(t, e, "datacore_rotations_total", "failed") >= 1 }
			poll.Wait(t, 15*time.Second, "messages published and a rotation", func() bool { return published() && rotated() })

			at := time.Now()
			e.emu.DisconnectAll()
			poll.Wait(t, 10*time.Second, "the stream to reconnect", func() bool {
				s := e.subscriptions()
				return len(s) == 1 && s[0].State == fixtures.StateConnected && s[0].ConnectedSince != nil && s[0].ConnectedSince.After(at)
			})
			e.ns.Shutdown()
			poll.Wait(t, 10*time.Second, "the bridge to see NATS down", func() bool { return !e.b.NATS().IsConnected() })
			e.startNATS()
			poll.Wait(t, 15*time.Second, "the bridge to reconnect to NATS", func() bool { return e.b.NATS().IsConnected() })
			before := e.b.Published()
			poll.Wait(t, 15*time.Second, "messages published after the NATS restart", func() bool { return e.b.Published() > before })

			// The scan must have something to find: debug lines, and the
			// secrets of more than one signed URL.
			if !strings.Contains(e.logs.String(), `"level":"DEBUG"`) {
				t.Error("no debug line logged")
			}
			if n := len(e.emu.SignedURLSecrets()); n < 6 {
				t.Errorf("%d signed URL secrets to scan for, want those of two grants or more", n)
			}
		})
	}
}
