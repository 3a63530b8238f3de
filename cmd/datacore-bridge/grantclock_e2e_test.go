package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// countLines counts the log lines holding every one of parts.
func countLines(logs string, parts ...string) int {
	n := 0
	for line := range strings.SplitSeq(logs, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// countSkewWarnings counts the WARN lines reporting a clock skew within tolerance of want.
func countSkewWarnings(logs string, want, tolerance time.Duration) int {
	n := 0
	for line := range strings.SplitSeq(logs, "\n") {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Skew  string `json:"skew"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Level != "WARN" ||
			!strings.Contains(rec.Msg, "the node's clock differs from the access service's") {
			continue
		}
		if d, err := time.ParseDuration(rec.Skew); err == nil && (d-want).Abs() <= tolerance {
			n++
		}
	}
	return n
}

// TestStaleGrantsDoNotLoop follows a fixture while the service hands out
// grants that are expired on arrival, or whose clock is far behind the
// node's: for 5 s the bridge makes a handful of access calls and MQTT
// connections (what backoff or the grants' lifetime allow), not hundreds.
func TestStaleGrantsDoNotLoop(t *testing.T) {
	const window = 5 * time.Second
	tests := []struct {
		name      string
		sim       sim.Options
		connected bool // the stream gets connected (the grants are good on the local clock)
	}{
		{
			name: "grants expired on arrival",
			sim:  sim.Options{GrantTTL: 3 * time.Second, Faults: sim.Faults{GrantAge: 10 * time.Second}},
		},
		{
			name: "grants with under half a second left",
			sim:  sim.Options{GrantTTL: 3 * time.Second, Faults: sim.Faults{GrantAge: 3 * time.Second}},
		},
		{
			name:      "service clock 10 min behind the node's",
			sim:       sim.Options{GrantTTL: 3 * time.Second, ClockOffset: -10 * time.Minute},
			connected: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.sim
			o.Fixtures = []string{"sr:match:300"}
			o.Feed = sim.Feed{Rate: 20}
			e := newEnv(t, envOptions{
				sim:       o,
				configure: func(c *config.Config) { c.Fixtures = []string{"sr:match:300"} },
			})
			// An observation window, not a synchronisation: what matters is
			// how many calls fit in it.
			<-time.After(window)
			st := e.emu.Stats()
			calls := st.AccessCalls[200]
			dials := st.HandshakesOK + st.HandshakesRefused
			t.Logf("in %v: %d access calls, %d handshakes, %d connects", window, calls, dials, st.Connects)
			if calls > 20 {
				t.Errorf("%d access calls in %v, want a handful", calls, window)
			}
			if dials > 20 {
				t.Errorf("%d MQTT handshakes in %v, want a handful", dials, window)
			}
			subs := e.subscriptions()
			if len(subs) != 1 {
				t.Fatalf("subscriptions = %+v", subs)
			}
			if tt.connected {
				if subs[0].State != fixtures.StateConnected {
					t.Errorf("state = %s (%s), want connected", subs[0].State, subs[0].LastError)
				}
				// The Date header counts whole seconds: the skew measured is
				// within a second or so of the offset, either side.
				if n := countSkewWarnings(e.logs.String(), -10*time.Minute, 2*time.Second); n != 1 {
					t.Errorf("the clock skew was logged %d times at WARN with a value near -10m, want once:\n%s", n, e.logs.String())
				}
				return
			}
			if subs[0].State == fixtures.StateConnected {
				t.Errorf("state = connected on grants that expire on arrival")
			}
			if !strings.Contains(subs[0].LastError, "grants expire too soon") {
				t.Errorf("lastError = %q, want the grants expiring too soon", subs[0].LastError)
			}
			if n := testutil.ToFloat64(e.m.AccessCalls.WithLabelValues("expired")); n < 1 || n > float64(calls) {
				t.Errorf(`access_calls_total{outcome="expired"} = %v with %d calls`, n, calls)
			}
			if st.Connects != 0 {
				t.Errorf("%d MQTT connects on grants that expire on arrival, want 0", st.Connects)
			}
			if n := countLines(e.logs.String(), `"level":"WARN"`, "the service's grants expire too soon, check the node's clock"); n != 1 {
				t.Errorf("the stale grant was logged %d times at WARN, want once", n)
			}
		})
	}
}

// TestSkewedClockRotatesAtNormalPace follows a fixture on 3 s grants while the
// service's clock is 10 min ahead of or behind the node's: messages flow and
// the stream rotates about once per grant, neither never nor in a loop.
func TestSkewedClockRotatesAtNormalPace(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration
	}{
		{name: "service 10 min ahead", offset: 10 * time.Minute},
		{name: "service 10 min behind", offset: -10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const id = "sr:match:301"
			e := newEnv(t, envOptions{
				sim: sim.Options{Fixtures: []string{id}, GrantTTL: 3 * time.Second, ClockOffset: tt.offset,
					Feed: sim.Feed{Rate: 50}},
				configure: func(c *config.Config) { c.Fixtures = []string{id} },
			})
			col := e.collect()
			subject := e.subjectOf("fixture", id, sim.ScopeEvents)
			rotations := func() float64 { return testutil.ToFloat64(e.m.Rotations.WithLabelValues("ok")) }
			poll.Wait(t, 20*time.Second, "three rotations", func() bool { return rotations() >= 3 })
			before := col.count(subject)
			poll.Wait(t, 10*time.Second, "messages after the rotations", func() bool { return col.count(subject) > before+20 })
			col.checkProblems()
			// Three rotations of 3 s grants take at least about 5 s; in a loop
			// they would come with an access call each, by the hundred.
			st := e.emu.Stats()
			if n := rotations(); float64(st.AccessCalls[200]) > 2*n+5 {
				t.Errorf("%d access calls for %v rotations", st.AccessCalls[200], n)
			}
			if n := testutil.ToFloat64(e.m.AccessCalls.WithLabelValues("expired")); n != 0 {
				t.Errorf(`access_calls_total{outcome="expired"} = %v, want 0`, n)
			}
			if n := countLines(e.logs.String(), `"level":"WARN"`, "the node's clock differs from the access service's"); n != 1 {
				t.Errorf("the clock skew was logged %d times at WARN, want once", n)
			}
		})
	}
}
