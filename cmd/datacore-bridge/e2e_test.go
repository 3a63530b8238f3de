package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

var fixtureScopes = []string{sim.ScopeEvents, sim.ScopeStatistics, sim.ScopeStatus, sim.ScopePlayByPlay, sim.ScopePersons}

// upTo snapshots the emulator's last seq of every stream and scope.
func upTo(e *env, fixturesIDs, venueIDs []string) map[string]uint64 {
	out := map[string]uint64{}
	for _, id := range fixturesIDs {
		for _, sc := range fixtureScopes {
			out[e.subjectOf("fixture", id, sc)] = e.emu.LastSeq("fixture", id, sc)
		}
	}
	for _, id := range venueIDs {
		out[e.subjectOf("venue", id, sim.ScopeScoreboard)] = e.emu.LastSeq("venue", id, sim.ScopeScoreboard)
	}
	return out
}

// caughtUp reports whether the collector has every subject's seq up to want.
func caughtUp(c *collector, want map[string]uint64) bool {
	for subject, seq := range want {
		if c.maxSeq(subject) < seq {
			return false
		}
	}
	return true
}

func TestDeliveryAcrossRotationsAndDisconnects(t *testing.T) {
	fixtureIDs := []string{"sr:match:1", "sr:match:2"}
	venueIDs := []string{"venue.1>main"} // a dot and a wildcard: escaped in the subject
	// The feed is fast enough that a reconnect slower than it should be
	// shows in the loss bound below: at these rates 400 ms of messages
	// (840) is well over what one reconnect may cost (315).
	const fixtureRate, scoreboardRate = 1000, 100
	e := newEnv(t, envOptions{
		sim: sim.Options{
			Fixtures: fixtureIDs, Venues: venueIDs,
			GrantTTL: 2 * time.Second,
			Feed:     sim.Feed{Rate: fixtureRate, ScoreboardRate: scoreboardRate},
			// Room enough that the broker never drops for want of
			// acknowledgements (it does past its in-flight window with clean
			// sessions): a loss counted here is the bridge's.
			MaxInflight: 2000,
		},
		configure: func(c *config.Config) {
			c.Fixtures, c.Venues = fixtureIDs, venueIDs
		},
	})
	c := e.collect()
	streams := len(fixtureIDs) + len(venueIDs)
	t.Cleanup(func() {
		if n := e.emu.Stats().Dropped; n != 0 {
			t.Errorf("the emulator dropped %d messages for a slow subscriber: the losses above are not all the bridge's", n)
		}
	})

	// Phase 1: grants expire every ~2 s; the bridge rotates make-before-break.
	poll.Wait(t, 30*time.Second, "5 rotations of every stream", func() bool {
		return testutil.ToFloat64(e.m.Rotations.WithLabelValues("ok")) >= float64(5*streams)
	})
	phase1 := upTo(e, fixtureIDs, venueIDs)
	poll.Wait(t, 10*time.Second, "phase 1 messages to arrive", func() bool { return caughtUp(c, phase1) })
	rot := c.tally(phase1)

	// Phase 2: three forced disconnects. Core mode with clean sessions loses
	// what the service sends while no connection is subscribed.
	for i := range 3 {
		at := time.Now()
		if n := e.emu.DisconnectAll(); n < streams {
			t.Fatalf("disconnect %d closed %d connections, want at least %d", i, n, streams)
		}
		poll.Wait(t, 10*time.Second, "every stream to reconnect", func() bool {
			for _, s := range e.subscriptions() {
				if s.State != fixtures.StateConnected || s.ConnectedSince == nil || s.ConnectedSince.Before(at) {
					return false
				}
			}
			return true
		})
	}
	all := upTo(e, fixtureIDs, venueIDs)
	poll.Wait(t, 10*time.Second, "phase 2 messages to arrive", func() bool { return caughtUp(c, all) })
	total := c.tally(all)
	c.checkProblems()

	t.Logf("rotations: %v ok; phase 1 (rotations only): %d subjects, %d received, %d lost, %d duplicated",
		testutil.ToFloat64(e.m.Rotations.WithLabelValues("ok")), rot.subjects, rot.received, rot.lost, rot.dups)
	t.Logf("whole run with 3 forced disconnects: %d received, %d lost, %d duplicated; duplicates suppressed by the bridge: %v",
		total.received, total.lost, total.dups, testutil.ToFloat64(e.m.Duplicates.WithLabelValues("fixture"))+testutil.ToFloat64(e.m.Duplicates.WithLabelValues("venue")))
	if rot.subjects != len(phase1) {
		t.Errorf("messages arrived on %d of %d subjects: %v", rot.subjects, len(phase1), c.subjects())
	}
	if rot.lost != 0 || rot.dups != 0 {
		t.Errorf("across rotations: %d lost %v, %d duplicated; want none", rot.lost, rot.lostBelow, rot.dups)
	}
	if total.dups != 0 {
		t.Errorf("%d duplicates published", total.dups)
	}
	// Each forced disconnect costs at most the messages sent during one
	// reconnect (a fresh grant, a dial, a subscribe: tens of milliseconds,
	// the first backoff is 50 ms): 150 ms of the whole feed per disconnect
	// is a generous bound that a reconnect waiting 400 ms still exceeds.
	perDisconnect := (len(fixtureIDs)*fixtureRate + len(venueIDs)*scoreboardRate) * 150 / 1000
	if limit := 3 * perDisconnect; total.lost > limit {
		t.Errorf("lost %d messages over 3 disconnects, want at most %d (%d per disconnect: 150 ms of the feed)", total.lost, limit, perDisconnect)
	}
	if code, body := e.do(http.MethodGet, "/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz = %d %s", code, body)
	}
}

func TestAccessFaultsAreSurvived(t *testing.T) {
	ids := []string{"sr:match:10", "sr:match:11"}
	e := newEnv(t, envOptions{
		sim: sim.Options{
			Fixtures: ids, GrantTTL: 2 * time.Second, Feed: sim.Feed{Rate: 50},
			Faults: sim.Faults{Access500: 0.3, Access429: 0.2, AccessGarbage: 0.2, RetryAfter: time.Second,
				AccessSlow: 0.2, SlowDelay: 300 * time.Millisecond},
		},
		configure: func(c *config.Config) { c.Fixtures = ids },
	})
	c := e.collect()
	poll.Wait(t, 40*time.Second, "every kind of access failure, and grants after them", func() bool {
		return testutil.ToFloat64(e.m.AccessCalls.WithLabelValues("server_error")) > 0 &&
			testutil.ToFloat64(e.m.AccessCalls.WithLabelValues("rate_limited")) > 0 &&
			testutil.ToFloat64(e.m.AccessCalls.WithLabelValues("malformed")) > 0 &&
			testutil.ToFloat64(e.m.Rotations.WithLabelValues("ok")) >= 4
	})
	e.emu.SetFaults(sim.Faults{})
	want := upTo(e, ids, nil)
	poll.Wait(t, 15*time.Second, "messages after the faults", func() bool { return caughtUp(c, want) })
	c.checkProblems()
	tl := c.tally(want)
	t.Logf("with access faults: %d received, %d lost, %d duplicated; failed rotations %v",
		tl.received, tl.lost, tl.dups, testutil.ToFloat64(e.m.Rotations.WithLabelValues("failed")))
	if tl.dups != 0 {
		t.Errorf("%d duplicates", tl.dups)
	}
	// A stream may still be in the backoff of its last failed attempt when
	// the faults stop; it must be connected again once that has run out.
	poll.Wait(t, 15*time.Second, "every stream connected after the faults stopped", func() bool {
		for _, s := range e.subscriptions() {
			if s.State != fixtures.StateConnected {
				return false
			}
		}
		return true
	})
	again := upTo(e, ids, nil)
	poll.Wait(t, 15*time.Second, "messages of every stream once connected", func() bool { return caughtUp(c, again) })
	c.checkProblems()
}

func TestBadCredentialsFailVisibly(t *testing.T) {
	e := newEnv(t, envOptions{
		sim: sim.Options{Fixtures: []string{"sr:match:20"}},
		configure: func(c *config.Config) {
			c.Fixtures = []string{"sr:match:20"}
			c.CredentialSecret = "wrong-" + testCredSecret
		},
		extras: bridge.Options{FailedRetry: 100 * time.Millisecond},
	})
	var info fixtures.StreamInfo
	poll.Wait(t, 10*time.Second, "the stream to fail and retry", func() bool {
		subs := e.subscriptions()
		if len(subs) == 1 {
			info = subs[0]
		}
		return info.State == fixtures.StateFailed && testutil.ToFloat64(e.m.AccessCalls.WithLabelValues("unauthorized")) >= 3
	})
	if !strings.Contains(info.LastError, "401") || !strings.Contains(info.LastError, "DATACORE_CREDENTIAL") {
		t.Errorf("lastError %q does not say 401 and which variables to check", info.LastError)
	}
	code, body := e.do(http.MethodGet, "/readyz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "sr:match:20") {
		t.Errorf("/readyz = %d %s, want 503 naming the fixture", code, body)
	}
	// Logged once above debug, however often it is retried.
	if n := e.logs.Count("stream failed; fix the cause, retrying slowly"); n < 3 {
		t.Fatalf("failure logged %d times in all, want one per retry", n)
	}
	if n := strings.Count(e.logs.String(), `"level":"ERROR","msg":"stream failed; fix the cause, retrying slowly"`); n != 1 {
		t.Errorf("failure logged %d times at error level, want once", n)
	}
}

func TestAdminFollowAndUnfollow(t *testing.T) {
	e := newEnv(t, envOptions{
		sim:       sim.Options{Fixtures: []string{"sr:match:30", "sr:match:31"}, Feed: sim.Feed{Rate: 50}},
		configure: func(c *config.Config) { c.Fixtures = []string{"sr:match:30"} },
	})
	c := e.collect()
	other := e.subjectOf("fixture", "sr:match:30", sim.ScopeEvents)
	added := e.subjectOf("fixture", "sr:match:31", sim.ScopeEvents)

	if code, _ := e.do(http.MethodPut, "/v1/fixtures/sr:match:31", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("PUT with a wrong token = %d, want 401", code)
	}
	start := time.Now()
	if code, body := e.do(http.MethodPut, "/v1/fixtures/sr:match:31", testAdminToken); code != http.StatusCreated {
		t.Fatalf("PUT = %d %s, want 201", code, body)
	}
	poll.Wait(t, 5*time.Second, "messages of the added fixture", func() bool { return c.count(added) > 0 })
	if d := time.Since(start); d > time.Second {
		t.Errorf("first message of an added fixture after %v, want within a second", d)
	}
	if code, _ := e.do(http.MethodPut, "/v1/fixtures/sr:match:31", testAdminToken); code != http.StatusOK {
		t.Errorf("second PUT = %d, want 200", code)
	}

	connected := e.emu.Stats().Connected
	if code, _ := e.do(http.MethodDelete, "/v1/fixtures/sr:match:31", testAdminToken); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d, want 204", code)
	}
	poll.Wait(t, 5*time.Second, "the connection to close", func() bool { return e.emu.Stats().Connected < connected })
	for _, s := range e.subscriptions() {
		if s.ID == "sr:match:31" {
			t.Errorf("sr:match:31 still listed after DELETE: %+v", s)
		}
	}
	stopped := c.count(added)
	// The other fixture keeps flowing; the deleted one must not.
	base := c.count(other)
	poll.Wait(t, 5*time.Second, "more messages of the other fixture", func() bool { return c.count(other) >= base+20 })
	if n := c.count(added); n != stopped {
		t.Errorf("%d messages of the deleted fixture after DELETE", n-stopped)
	}
	if code, _ := e.do(http.MethodDelete, "/v1/fixtures/sr:match:31", testAdminToken); code != http.StatusNoContent {
		t.Errorf("second DELETE = %d, want 204", code)
	}
	c.checkProblems()
}

func TestConfigErrorExits2(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{name: "bad qos", env: map[string]string{"DATACORE_CREDENTIAL_ID": "x", "DATACORE_CREDENTIAL_SECRET": "y", "DATACORE_FIXTURES": "f", "DATACORE_QOS": "2"}, wantVar: "DATACORE_QOS"},
		{name: "no credentials", env: map[string]string{"DATACORE_FIXTURES": "f"}, wantVar: "DATACORE_CREDENTIAL_ID"},
		{name: "unknown env", env: map[string]string{"DATACORE_CREDENTIAL_ID": "x", "DATACORE_CREDENTIAL_SECRET": "y", "DATACORE_FIXTURES": "f", "DATACORE_ENV": "moon"}, wantVar: "DATACORE_ENV"},
		{name: "nothing to follow", env: map[string]string{"DATACORE_CREDENTIAL_ID": "x", "DATACORE_CREDENTIAL_SECRET": "y"}, wantVar: "DATACORE_FIXTURES"},
		{name: "unreadable secret file", env: map[string]string{"DATACORE_CREDENTIAL_ID": "x", "DATACORE_CREDENTIAL_SECRET_FILE": "/nonexistent/secret", "DATACORE_FIXTURES": "f"}, wantVar: "DATACORE_CREDENTIAL_SECRET_FILE"},
		{name: "nats url unparsable", env: map[string]string{"DATACORE_CREDENTIAL_ID": "x", "DATACORE_CREDENTIAL_SECRET": "y", "DATACORE_FIXTURES": "f", "DATACORE_NATS_URL": "nats://[::1"}, wantVar: "DATACORE_NATS_URL"},
		{name: "nats url port out of range", env: map[string]string{"DATACORE_CREDENTIAL_ID": "x", "DATACORE_CREDENTIAL_SECRET": "y", "DATACORE_FIXTURES": "f", "DATACORE_NATS_URL": "nats://127.0.0.1:99999"}, wantVar: "DATACORE_NATS_URL"},
		{name: "nats tls ca not pem", env: map[string]string{"DATACORE_CREDENTIAL_ID": "x", "DATACORE_CREDENTIAL_SECRET": "y", "DATACORE_FIXTURES": "f", "DATACORE_NATS_TLS_CA": "e2e_test.go"}, wantVar: "DATACORE_NATS_TLS_CA"},
		{name: "nats nkey not a seed", env: map[string]string{"DATACORE_CREDENTIAL_ID": "x", "DATACORE_CREDENTIAL_SECRET": "y", "DATACORE_FIXTURES": "f", "DATACORE_NATS_NKEY": "e2e_test.go"}, wantVar: "DATACORE_NATS_NKEY"},
		{name: "nats creds not creds", env: map[string]string{"DATACORE_CREDENTIAL_ID": "x", "DATACORE_CREDENTIAL_SECRET": "y", "DATACORE_FIXTURES": "f", "DATACORE_NATS_CREDS": "e2e_test.go"}, wantVar: "DATACORE_NATS_CREDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearDatacoreEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := run(nil, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if !strings.HasPrefix(first, tt.wantVar) {
				t.Errorf("first line %q does not start with %s", first, tt.wantVar)
			}
		})
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, v := range []string{"DATACORE_ENV", "DATACORE_CREDENTIAL_SECRET_FILE", "DATACORE_NATS_TLS_KEY", "DATACORE_STOP_AFTER_FINAL", "DATACORE_OAUTH_AUDIENCE", "production", "nats://127.0.0.1:4222"} {
		if !strings.Contains(stdout.String(), v) {
			t.Errorf("-h does not mention %s", v)
		}
	}
	if n := strings.Count(stdout.String(), "Environment variables"); n != 1 {
		t.Errorf("-h prints its \"Environment variables\" header %d times, want once", n)
	}
}

// clearDatacoreEnv unsets every DATACORE_ variable for the test.
func clearDatacoreEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DATACORE_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// TestMain lets a test run this binary as the real command: with
// DATACORE_TEST_MAIN=1 the test binary is datacore-bridge.
func TestMain(m *testing.M) {
	if os.Getenv("DATACORE_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestSIGTERMDrainsAndExits0(t *testing.T) {
	emu, err := sim.Start(context.Background(), sim.Options{
		CredentialID: testCredID, CredentialSecret: testCredSecret,
		Fixtures: []string{"sr:match:40"}, Feed: sim.Feed{Rate: 200},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	e := &env{t: t, nsOp: &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}}
	e.startNATS()
	t.Cleanup(e.ns.Shutdown)

	cmd := daemonCommand(emu.APIURL(), e.ns.ClientURL(),
		"DATACORE_FIXTURES=sr:match:40",
		"DATACORE_HTTP_ADDR=",
		"DATACORE_LOG_LEVEL=info",
	)
	logs := &logtest.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Wait(t, 10*time.Second, "the bridge to connect", func() bool { return logs.Count("connected") > 0 })
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("still running 10 s after SIGTERM; logs:\n%s", logs.String())
	}
	t.Logf("exited 0 %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	for _, msg := range []string{"shutting down", "stopped"} {
		if logs.Count(msg) != 1 {
			t.Errorf("log %q missing; logs:\n%s", msg, logs.String())
		}
	}
	if strings.Contains(logs.String(), testCredSecret) {
		t.Error("the secret reached the logs")
	}
	_ = access.Fixture
}

// TestNATSAwayAtStartAndAtShutdown starts the bridge in JetStream mode with
// DATACORE_STREAM while no NATS server runs: it keeps running, not ready and
// saying why, becomes ready once NATS comes up and the stream is created, and
// shuts down quickly when NATS is away again.
func TestNATSAwayAtStartAndAtShutdown(t *testing.T) {
	emu, err := sim.Start(context.Background(), sim.Options{
		CredentialID: testCredID, CredentialSecret: testCredSecret, Fixtures: []string{"sr:match:60"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	port := freePort(t)
	cfg := config.Defaults()
	cfg.APIURL = emu.APIURL()
	cfg.CredentialID, cfg.CredentialSecret = testCredID, testCredSecret
	cfg.Fixtures = []string{"sr:match:60"}
	cfg.NATSURLs = []string{fmt.Sprintf("nats://127.0.0.1:%d", port)}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.JetStream, cfg.Stream = true, "DATACORE"
	cfg.ShutdownTimeout = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	b, err := bridge.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), bridge.Options{})
	if err != nil {
		t.Fatalf("start without NATS: %v", err)
	}
	e := &env{t: t, b: b, logs: logs}
	if code, body := e.do(http.MethodGet, "/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "nats") {
		t.Errorf("/readyz without NATS = %d %s, want 503 naming nats", code, body)
	}

	e.nsOp = &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()}
	e.startNATS()
	t.Cleanup(e.ns.Shutdown)
	poll.Wait(t, 20*time.Second, "ready once NATS is up", func() bool {
		code, _ := e.do(http.MethodGet, "/readyz", "")
		return code == http.StatusOK
	})
	if logs.Count("stream ready") != 1 {
		t.Errorf("stream not reported ready in the logs")
	}

	e.ns.Shutdown()
	poll.Wait(t, 5*time.Second, "not ready once NATS is gone", func() bool {
		code, _ := e.do(http.MethodGet, "/readyz", "")
		return code == http.StatusServiceUnavailable
	})
	began := time.Now()
	// Messages the feed sent while NATS was away cannot be acknowledged:
	// the shutdown abandons them and says so (exit 1); nothing else fails.
	if err := b.Shutdown(context.Background()); err != nil && !errors.Is(err, sink.ErrAbandoned) {
		t.Errorf("shutdown with NATS away: %v", err)
	}
	// Abandoned JetStream publishes may hold it up to the shutdown
	// timeout; it must not take longer.
	if d := time.Since(began); d > cfg.ShutdownTimeout+time.Second {
		t.Errorf("shutdown took %v", d)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
