package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestWildcardTopicsRefused: a grant whose only topics hold MQTT wildcards
// leaves the stream failed with that reason and /readyz 503; a grant with a
// wildcard topic beside good ones delivers the good ones and logs the
// wildcard once.
func TestWildcardTopicsRefused(t *testing.T) {
	t.Run("only wildcard topics", func(t *testing.T) {
		const id = "sr:match:400"
		e := newEnv(t, envOptions{
			sim:       sim.Options{Fixtures: []string{id}, Faults: sim.Faults{WildcardOnly: true}},
			configure: func(c *config.Config) { c.Fixtures = []string{id} },
		})
		poll.Wait(t, 10*time.Second, "the stream to fail", func() bool {
			s := e.subscriptions()
			return len(s) == 1 && s[0].State == fixtures.StateFailed
		})
		s := e.subscriptions()[0]
		if !strings.Contains(s.LastError, "MQTT wildcards") {
			t.Errorf("lastError = %q, want the wildcard topics named as the reason", s.LastError)
		}
		code, body := e.do(http.MethodGet, "/readyz", "")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "MQTT wildcards") {
			t.Errorf("/readyz = %d %s, want 503 naming the wildcard topics", code, body)
		}
		if st := e.emu.Stats(); st.Connects != 0 {
			t.Errorf("%d MQTT connects on a grant of wildcard topics only, want 0", st.Connects)
		}
	})
	t.Run("a wildcard topic beside good ones", func(t *testing.T) {
		const id = "sr:match:401"
		e := newEnv(t, envOptions{
			sim:       sim.Options{Fixtures: []string{id}, Feed: sim.Feed{Rate: 50}, Faults: sim.Faults{WildcardExtra: true}},
			configure: func(c *config.Config) { c.Fixtures = []string{id} },
		})
		col := e.collect()
		subject := e.subjectOf("fixture", id, sim.ScopeEvents)
		poll.Wait(t, 15*time.Second, "messages on the good topics", func() bool { return col.count(subject) >= 10 })
		col.checkProblems()
		if s := e.subscriptions(); len(s) != 1 || s[0].State != fixtures.StateConnected {
			t.Errorf("subscriptions = %+v, want one connected", s)
		}
		if code, body := e.do(http.MethodGet, "/readyz", ""); code != http.StatusOK {
			t.Errorf("/readyz = %d %s, want 200", code, body)
		}
		for _, ss := range e.emu.Sessions() {
			for _, f := range ss.Subscriptions {
				if strings.ContainsAny(f, "+#") {
					t.Errorf("client %s subscribed to the wildcard filter %q", ss.ClientID, f)
				}
			}
		}
		if n := countLines(e.logs.String(), `"level":"WARN"`, "grant names topics holding MQTT wildcards", `/r/e/#`); n != 1 {
			t.Errorf("the wildcard topic was logged %d times at WARN with its name, want once", n)
		}
	})
}
