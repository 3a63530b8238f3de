package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
	"github.com/datacore-bridge/datacore-bridge/metrics"
	"github.com/datacore-bridge/datacore-bridge/sim"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// The test credentials. The secret is long and distinctive so that a log scan
// for it cannot miss a partial leak.
const (
	testCredID     = "test-credential"
	testCredSecret = "s3cr3t-0f-the-test-credential-9f8e7d"
	testAdminToken = "admin-token-for-tests-5a4b3c"
)

// env is the emulator, an embedded NATS server and a running bridge.
type env struct {
	t    *testing.T
	emu  *sim.Server
	nats *testbed.NATS
	ns   *server.Server
	nsOp *server.Options
	cfg  *config.Config
	m    *metrics.Metrics
	b    *bridge.Bridge
	logs *logtest.Buffer
	// secrets are values besides the credential secret, the admin token
	// and the signed URLs' secrets that must not reach the logs.
	secrets []string
}

type envOptions struct {
	sim       sim.Options
	jetStream bool
	// configure changes the bridge's configuration before it starts.
	configure func(*config.Config)
	extras    bridge.Options
	// nats changes the embedded NATS server's options before it starts.
	nats func(*server.Options)
	// secrets are more values the log scan looks for (see assertNoSecretsInLogs).
	secrets []string
}

// newEnv starts the emulator, NATS and the bridge (internal/testbed), and
// stops them when the test ends.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, logs: &logtest.Buffer{}, secrets: o.secrets}
	if o.sim.CredentialID == "" {
		o.sim.CredentialID, o.sim.CredentialSecret = testCredID, testCredSecret
	}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(e.logs, testLogWriter()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.m = metrics.New()
	x := o.extras
	x.Metrics = e.m
	if x.MinBackoff == 0 {
		x.MinBackoff = 50 * time.Millisecond
	}
	if x.MaxBackoff == 0 {
		x.MaxBackoff = time.Second
	}
	bed, err := testbed.Start(t.Context(), testbed.Options{
		Sim:       o.sim,
		JetStream: o.jetStream,
		NATS: func(so *server.Options) {
			so.StoreDir = t.TempDir()
			if o.nats != nil {
				o.nats(so)
			}
		},
		Configure: func(cfg *config.Config) {
			cfg.AdminToken = testAdminToken
			cfg.LogLevel = "debug"
			if o.configure != nil {
				o.configure(cfg)
			}
		},
		Bridge: x,
		Logger: log,
	})
	if err != nil {
		t.Fatalf("start the test bed: %v", err)
	}
	e.emu, e.nats, e.cfg, e.b = bed.Emulator, bed.NATS, bed.Config, bed.Bridge
	e.ns, e.nsOp = bed.NATS.Server, &bed.NATS.Options
	t.Cleanup(func() {
		if err := bed.Close(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		e.assertNoSecretsInLogs()
	})
	return e
}

// daemonCommand returns the daemon as a child process (this test binary,
// run with DATACORE_TEST_MAIN=1) configured for the emulator at apiURL with
// the test credentials and for NATS at natsURL, then with extra variables
// (which win over those).
func daemonCommand(apiURL, natsURL string, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		"DATACORE_TEST_MAIN=1",
		"DATACORE_API_URL="+apiURL,
		"DATACORE_CREDENTIAL_ID="+testCredID,
		"DATACORE_CREDENTIAL_SECRET="+testCredSecret,
		"DATACORE_NATS_URL="+natsURL,
	)
	cmd.Env = append(cmd.Env, extra...)
	return cmd
}

// startNATS (re)starts the embedded NATS server on the same port and store.
func (e *env) startNATS() {
	e.t.Helper()
	if e.nats == nil {
		n, err := testbed.StartNATS(*e.nsOp)
		if err != nil {
			e.t.Fatal(err)
		}
		e.nats = n
	} else if err := e.nats.Restart(); err != nil {
		e.t.Fatal(err)
	}
	e.ns, e.nsOp = e.nats.Server, &e.nats.Options
}

// assertNoSecretsInLogs fails the test when a secret or a signed URL's query
// reached the bridge's logs: the query's parameter names, and the value of
// every secret (the credential secret, the admin token, each secret of every
// signed URL the emulator issued, and e.secrets), as it is and as it would
// read inside a URL's query or a JSON string.
func (e *env) assertNoSecretsInLogs() {
	e.t.Helper()
	logs := e.logs.String()
	check := func(what, s string) {
		if s == "" || !strings.Contains(logs, s) {
			return
		}
		i := strings.Index(logs, s)
		e.t.Errorf("logs contain %s %q: …%s…", what, s, logs[max(0, i-200):min(len(logs), i+100)])
	}
	for _, name := range []string{"X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential"} {
		check("the parameter", name)
	}
	values := append([]string{testCredSecret, testAdminToken}, e.secrets...)
	if e.emu != nil {
		values = append(values, e.emu.SignedURLSecrets()...)
	}
	for _, v := range values {
		quoted, _ := json.Marshal(v)
		forms := []string{v, url.QueryEscape(v), string(quoted[1 : len(quoted)-1])}
		for i, f := range forms {
			if i == 0 || f != v {
				check("the secret", f)
			}
		}
	}
}

// httpURL is the bridge's HTTP API base.
func (e *env) httpURL() string { return "http://" + e.b.Addr().String() }

// do sends an HTTP request to the bridge and returns the status and body.
func (e *env) do(method, path, token string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.httpURL()+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// subscriptions returns GET /v1/subscriptions.
func (e *env) subscriptions() []fixtures.StreamInfo {
	e.t.Helper()
	code, body := e.do(http.MethodGet, "/v1/subscriptions", "")
	if code != http.StatusOK {
		e.t.Fatalf("GET /v1/subscriptions: %d %s", code, body)
	}
	var out []fixtures.StreamInfo
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		e.t.Fatalf("GET /v1/subscriptions: %v in %s", err, body)
	}
	return out
}

// collector records what a NATS subscriber receives on the bridge's subjects
// and checks every message's subject, headers and payload as it arrives.
type collector struct {
	t      *testing.T
	sport  string
	prefix string

	mu       sync.Mutex
	seqs     map[string]map[uint64]int // subject -> seq -> times received
	problems []string
	total    int
	changed  chan struct{}
}

// collect subscribes to everything the bridge publishes.
func (e *env) collect() *collector {
	e.t.Helper()
	c := &collector{t: e.t, sport: e.cfg.Sport, prefix: e.cfg.SubjectPrefix,
		seqs: map[string]map[uint64]int{}, changed: make(chan struct{}, 1)}
	nc, err := nats.Connect(e.ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	if _, err := nc.Subscribe(e.cfg.SubjectPrefix+".>", c.take); err != nil {
		e.t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// envelope is what the emulator publishes.
type envelope struct {
	Type      string `json:"type"`
	FixtureID string `json:"fixtureId"`
	VenueID   string `json:"venueId"`
	Data      struct {
		Seq uint64 `json:"seq"`
	} `json:"data"`
}

func (c *collector) take(msg *nats.Msg) {
	var problem string
	tokens := strings.Split(strings.TrimPrefix(msg.Subject, c.prefix+"."), ".")
	var env envelope
	switch {
	case len(tokens) != 4 || tokens[0] != c.sport:
		problem = "unexpected subject shape"
	case json.Unmarshal(msg.Data, &env) != nil:
		problem = "payload is not the emulator's JSON"
	default:
		streamKind, id, kind := tokens[1], tokens[2], tokens[3]
		uid, err := sink.UnescapeToken(id)
		if err != nil {
			problem = "id token does not unescape"
			break
		}
		h := msg.Header
		wantScope := "read:stream_" + kind
		if kind == "response" {
			wantScope = "read:response"
		}
		idHeader, payloadID := sink.HeaderFixtureID, env.FixtureID
		if streamKind == "venue" {
			idHeader, payloadID = sink.HeaderVenueID, env.VenueID
		}
		received, terr := time.Parse(time.RFC3339Nano, h.Get(sink.HeaderReceivedAt))
		switch {
		case h.Get(sink.HeaderScope) != wantScope:
			problem = "Datacore-Scope " + h.Get(sink.HeaderScope) + " for kind " + kind
		case h.Get(sink.HeaderSport) != c.sport:
			problem = "Datacore-Sport " + h.Get(sink.HeaderSport)
		case h.Get(idHeader) != uid || payloadID != uid:
			problem = fmt.Sprintf("id header %q / payload id %q for subject id %q", h.Get(idHeader), payloadID, uid)
		case h.Get(sink.HeaderTopic) == "" || strings.Contains(h.Get(sink.HeaderTopic), "+"):
			problem = "Datacore-Topic " + h.Get(sink.HeaderTopic)
		case terr != nil || received.Location() != time.UTC || time.Since(received) > time.Minute:
			problem = "Datacore-Received-At " + h.Get(sink.HeaderReceivedAt)
		case env.Data.Seq == 0:
			problem = "no seq"
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if problem != "" {
		c.problems = append(c.problems, fmt.Sprintf("%s: %s: %s", msg.Subject, problem, msg.Data))
		return
	}
	m := c.seqs[msg.Subject]
	if m == nil {
		m = map[uint64]int{}
		c.seqs[msg.Subject] = m
	}
	m[env.Data.Seq]++
	c.total++
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// count is the number of messages on subject.
func (c *collector) count(subject string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.seqs[subject] {
		n += k
	}
	return n
}

// maxSeq is the highest seq seen on subject.
func (c *collector) maxSeq(subject string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var hi uint64
	for s := range c.seqs[subject] {
		hi = max(hi, s)
	}
	return hi
}

// tally counts, per subject, the seqs missing between the first seq seen and
// upTo, and the seqs received more than once.
type tally struct {
	subjects   int
	received   int
	lost, dups int
	lostBelow  map[string][]uint64 // the missing seqs, by subject
}

func (c *collector) tally(upTo map[string]uint64) tally {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := tally{lostBelow: map[string][]uint64{}}
	for subject, hi := range upTo {
		seen := c.seqs[subject]
		if len(seen) == 0 {
			continue
		}
		t.subjects++
		lo := hi
		for s, n := range seen {
			lo = min(lo, s)
			t.received += n
			if n > 1 {
				t.dups += n - 1
			}
		}
		for s := lo; s <= hi; s++ {
			if seen[s] == 0 {
				t.lost++
				t.lostBelow[subject] = append(t.lostBelow[subject], s)
			}
		}
	}
	return t
}

// checkProblems fails the test for every malformed message received.
func (c *collector) checkProblems() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.problems {
		if i == 10 {
			c.t.Errorf("… and %d more", len(c.problems)-10)
			break
		}
		c.t.Errorf("bad message: %s", p)
	}
}

// subjects lists the subjects seen, sorted.
func (c *collector) subjects() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.seqs))
	for s := range c.seqs {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// subjectOf is the subject the bridge uses for a stream's scope.
func (e *env) subjectOf(streamKind, id, scope string) string {
	return sink.Subject(e.cfg.SubjectPrefix, e.cfg.Sport, streamKind, id, sink.KindFromScope(scope))
}

// testLogWriter shows the bridge's logs with -v when DATACORE_TEST_LOGS is set.
func testLogWriter() io.Writer {
	if os.Getenv("DATACORE_TEST_LOGS") != "" {
		return os.Stderr
	}
	return io.Discard
}
