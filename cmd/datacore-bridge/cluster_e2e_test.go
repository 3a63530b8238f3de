package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/cluster"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// The cluster end-to-end tests run three bridge processes (this test binary
// as the daemon, see daemonCommand) against one emulator and one embedded
// JetStream NATS server, so that a member can be killed with SIGKILL.
const (
	// clusterTTL is the members' DATACORE_LEASE_TTL: short, so that a
	// killed member is replaced quickly.
	clusterTTL = 2 * time.Second
	// clusterStream is the JetStream stream the members publish into.
	clusterStream = "DATACORE"
	// clusterRate is the emulator's messages per second per fixture.
	clusterRate = 20
	// settleWait bounds how long the members take to agree on the owners
	// after a change (a join, a kill, an admin call).
	settleWait = 30 * time.Second
)

// clusterBed is the emulator, NATS and the bridge processes of a test.
type clusterBed struct {
	t   *testing.T
	emu *sim.Server
	ns  *natstest.Server
	cfg *config.Config // the defaults: the subject prefix, the sport and the scopes
	env []string       // the variables every member gets
}

type clusterOptions struct {
	// fixtures are DATACORE_FIXTURES, known to the emulator.
	fixtures []string
	// more are fixtures the emulator knows besides.
	more      []string
	jetStream bool
	replicas  int
}

// newClusterBed starts the emulator and NATS (with the stream, in JetStream
// mode, so that a test can read it from its first message).
func newClusterBed(t *testing.T, o clusterOptions) *clusterBed {
	t.Helper()
	emu, err := sim.Start(context.Background(), sim.Options{
		CredentialID: testCredID, CredentialSecret: testCredSecret,
		Fixtures: append(slices.Clone(o.fixtures), o.more...), Feed: sim.Feed{Rate: clusterRate},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	b := &clusterBed{t: t, emu: emu, ns: natstest.Run(t), cfg: config.Defaults()}
	b.env = []string{
		"DATACORE_CLUSTER=e2e",
		"DATACORE_LEASE_TTL=" + clusterTTL.String(),
		fmt.Sprintf("DATACORE_REPLICAS=%d", o.replicas),
		fmt.Sprintf("DATACORE_JETSTREAM=%t", o.jetStream),
		"DATACORE_FIXTURES=" + strings.Join(o.fixtures, ","),
		"DATACORE_HTTP_ADDR=127.0.0.1:0",
		"DATACORE_ADMIN_TOKEN=" + testAdminToken,
		"DATACORE_LOG_LEVEL=info",
		"DATACORE_LOG_FORMAT=json",
	}
	if o.jetStream {
		b.env = append(b.env, "DATACORE_STREAM="+clusterStream)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := sink.EnsureStream(ctx, b.ns.JetStream(t), clusterStream, b.cfg.SubjectPrefix); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// member is one bridge process.
type member struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	logs   *logtest.Buffer
	addr   string // its HTTP API
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

var startedHTTP = regexp.MustCompile(`"msg":"started".*?"http":"([^"]+)"`)

// start starts a member named instance and waits until its HTTP API listens.
// It is killed at the end of the test if it still runs; its logs are shown
// when the test failed.
func (b *clusterBed) start(instance string) *member {
	b.t.Helper()
	env := append(slices.Clone(b.env), "DATACORE_INSTANCE="+instance)
	m := &member{t: b.t, name: instance, cmd: daemonCommand(b.emu.APIURL(), b.ns.ClientURL(), env...),
		logs: &logtest.Buffer{}, exited: make(chan struct{})}
	m.cmd.Stderr = io.MultiWriter(m.logs, testLogWriter())
	if err := m.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.exited)
	}()
	b.t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		<-m.exited
		if b.t.Failed() {
			logs := m.logs.String()
			b.t.Logf("logs of %s (last 6000 bytes):\n%s", m.name, logs[max(0, len(logs)-6000):])
		}
	})
	poll.Wait(b.t, 20*time.Second, instance+" to start", func() bool {
		select {
		case <-m.exited:
			b.t.Fatalf("%s exited at start (%v); logs:\n%s", instance, m.err, m.logs.String())
		default:
		}
		if g := startedHTTP.FindStringSubmatch(m.logs.String()); g != nil {
			m.addr = g[1]
			return true
		}
		return false
	})
	return m
}

// signal sends sig to the member.
func (m *member) signal(sig syscall.Signal) {
	m.t.Helper()
	if err := m.cmd.Process.Signal(sig); err != nil {
		m.t.Fatalf("signal %s: %v", m.name, err)
	}
}

// wait waits at most limit for the member to exit and returns its status.
func (m *member) wait(limit time.Duration) int {
	m.t.Helper()
	select {
	case <-m.exited:
	case <-time.After(limit):
		m.t.Fatalf("%s still runs %v later; logs:\n%s", m.name, limit, m.logs.String())
	}
	var ee *exec.ExitError
	if m.err != nil && !errors.As(m.err, &ee) {
		m.t.Fatalf("wait for %s: %v", m.name, m.err)
	}
	return m.cmd.ProcessState.ExitCode()
}

// do sends an HTTP request to the member's API.
func (m *member) do(method, path, token string) (int, string, error) {
	req, err := http.NewRequest(method, "http://"+m.addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// getJSON decodes the member's answer to GET path into v.
func (m *member) getJSON(path string, v any) error {
	code, body, err := m.do(http.MethodGet, path, "")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s on %s: %d %s", path, m.name, code, body)
	}
	return json.Unmarshal([]byte(body), v)
}

// status is the member's GET /v1/cluster.
func (m *member) status() (cluster.Status, error) {
	var st cluster.Status
	err := m.getJSON("/v1/cluster", &st)
	return st, err
}

// logged returns the member's log lines with message msg, decoded.
func (m *member) logged(msg string) []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(m.logs.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func names(ms []*member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.name
	}
	slices.Sort(out)
	return out
}

// owned lists, sorted, the IDs that owners gives to instance.
func owned(owners map[string][]string, instance string) []string {
	var out []string
	for id, os := range owners {
		if slices.Contains(os, instance) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// every throttles a condition for poll: it is checked at most once per d
// (each check costs several HTTP requests to the members).
func every(d time.Duration, cond func() bool) func() bool {
	var last time.Time
	return func() bool {
		if time.Since(last) < d {
			return false
		}
		last = time.Now()
		return cond()
	}
}

// waitSettled waits until the cluster is settled on live with the followed
// fixtures want (see settled) and returns the owners of each fixture.
func (b *clusterBed) waitSettled(live []*member, want []string) map[string][]string {
	b.t.Helper()
	var owners map[string][]string
	var why error
	err := poll.Until(b.t.Context(), settleWait, "the cluster to settle on "+strings.Join(names(live), ","),
		every(50*time.Millisecond, func() bool {
			owners, why = settled(live, want)
			return why == nil
		}))
	if err != nil {
		b.t.Fatalf("%v: %v", err, why)
	}
	return owners
}

// settled checks that every member of live sees, in GET /v1/cluster, the
// members live (none draining), the followed set want (fixtures), each
// fixture owned by exactly the members assigned to it with their leases
// connected, and the same owners as the others; and that each member's
// GET /v1/subscriptions lists exactly the fixtures it owns, connected. It
// returns the owners (sorted) by fixture, or why the cluster is not settled.
func settled(live []*member, want []string) (map[string][]string, error) {
	want = slices.Sorted(slices.Values(want))
	var owners map[string][]string
	for _, m := range live {
		st, err := m.status()
		if err != nil {
			return nil, err
		}
		var members []string
		for _, ms := range st.Members {
			if ms.Draining {
				return nil, fmt.Errorf("%s sees %s draining", m.name, ms.Instance)
			}
			members = append(members, ms.Instance)
		}
		if !slices.Equal(members, names(live)) {
			return nil, fmt.Errorf("%s sees the members %v, want %v", m.name, members, names(live))
		}
		got := map[string][]string{}
		var ids []string
		for _, f := range st.Followed {
			if f.Kind != access.Fixture {
				return nil, fmt.Errorf("%s follows a %s %s", m.name, f.Kind, f.ID)
			}
			ids = append(ids, f.ID)
			var have []string
			for _, o := range f.Owners {
				if o.State != fixtures.StateConnected {
					return nil, fmt.Errorf("%s sees %s's lease on %s %s", m.name, o.Instance, f.ID, o.State)
				}
				have = append(have, o.Instance)
			}
			if assigned := slices.Sorted(slices.Values(f.Assigned)); !slices.Equal(have, assigned) {
				return nil, fmt.Errorf("%s sees %s owned by %v, assigned to %v", m.name, f.ID, have, assigned)
			}
			got[f.ID] = have
		}
		if !slices.Equal(ids, want) {
			return nil, fmt.Errorf("%s follows %v, want %v", m.name, ids, want)
		}
		if owners == nil {
			owners = got
		} else if !maps.EqualFunc(owners, got, slices.Equal) {
			return nil, fmt.Errorf("%s sees the owners %v, another member %v", m.name, got, owners)
		}
	}
	for _, m := range live {
		var subs []fixtures.StreamInfo
		if err := m.getJSON("/v1/subscriptions", &subs); err != nil {
			return nil, err
		}
		var ids []string
		for _, s := range subs {
			if s.State != fixtures.StateConnected {
				return nil, fmt.Errorf("%s's stream %s is %s", m.name, s.ID, s.State)
			}
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		if mine := owned(owners, m.name); !slices.Equal(ids, mine) {
			return nil, fmt.Errorf("%s runs %v, owns %v", m.name, ids, mine)
		}
	}
	return owners, nil
}

// assertSpread checks that each fixture has replicas owners and that every
// member of live owns its share: the loads are at most one apart (so none
// is idle while another has several more).
func assertSpread(t *testing.T, owners map[string][]string, live []*member, replicas int) {
	t.Helper()
	load := map[string]int{}
	for id, os := range owners {
		if len(os) != replicas {
			t.Errorf("%s owned by %v, want %d owners", id, os, replicas)
		}
		for _, o := range os {
			load[o]++
		}
	}
	lo, hi := len(owners)*replicas, 0
	for _, m := range live {
		lo, hi = min(lo, load[m.name]), max(hi, load[m.name])
	}
	if hi-lo > 1 || lo == 0 {
		t.Errorf("loads %v: want each of %v at most one apart from the others", load, names(live))
	}
	if total := len(owners) * replicas; total%len(live) == 0 && (lo != total/len(live) || hi != lo) {
		t.Errorf("loads %v, want %d each", load, total/len(live))
	}
}

// newCollector is a collector (harness_test.go) with no subscription yet.
func (b *clusterBed) newCollector() *collector {
	return &collector{t: b.t, sport: b.cfg.Sport, prefix: b.cfg.SubjectPrefix,
		seqs: map[string]map[uint64]int{}, changed: make(chan struct{}, 1)}
}

// readStream collects what the JetStream stream stores, from its first message.
func (b *clusterBed) readStream() *collector {
	b.t.Helper()
	c := b.newCollector()
	cons, err := b.ns.JetStream(b.t).OrderedConsumer(b.t.Context(), clusterStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		c.take(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(cc.Stop)
	return c
}

// subscribe collects what is published on the bridge's subjects from now on
// (core NATS).
func (b *clusterBed) subscribe() *collector {
	b.t.Helper()
	c := b.newCollector()
	nc := b.ns.Connect(b.t)
	if _, err := nc.Subscribe(b.cfg.SubjectPrefix+".>", c.take); err != nil {
		b.t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.t.Fatal(err)
	}
	return c
}

// subjects returns the subjects of ids's scopes, by fixture.
func (b *clusterBed) subjects(ids []string) map[string][]string {
	out := map[string][]string{}
	for _, id := range ids {
		for _, scope := range b.cfg.FixtureScopes {
			out[id] = append(out[id], sink.Subject(b.cfg.SubjectPrefix, b.cfg.Sport, "fixture", id, sink.KindFromScope(scope)))
		}
	}
	return out
}

// lastSeqs returns, per subject of ids, the emulator's last seq now.
func (b *clusterBed) lastSeqs(ids []string) map[string]uint64 {
	out := map[string]uint64{}
	for _, id := range ids {
		for _, scope := range b.cfg.FixtureScopes {
			out[sink.Subject(b.cfg.SubjectPrefix, b.cfg.Sport, "fixture", id, sink.KindFromScope(scope))] =
				b.emu.LastSeq("fixture", id, scope)
		}
	}
	return out
}

// waitReceived waits until c has, on every subject of upTo, a seq at least
// upTo's (the emulator published something on each).
func (b *clusterBed) waitReceived(c *collector, upTo map[string]uint64) {
	b.t.Helper()
	for s, n := range upTo {
		if n == 0 {
			b.t.Fatalf("the emulator published nothing on %s", s)
		}
	}
	poll.Wait(b.t, 20*time.Second, "every seq published so far to arrive", func() bool {
		for s, n := range upTo {
			if c.maxSeq(s) < n {
				return false
			}
		}
		return true
	})
}

// waitFlowing waits until c has at least n messages of each of ids.
func (b *clusterBed) waitFlowing(c *collector, ids []string, n int) {
	b.t.Helper()
	subjects := b.subjects(ids)
	poll.Wait(b.t, 20*time.Second, "messages of every fixture", func() bool {
		for _, id := range ids {
			got := 0
			for _, s := range subjects[id] {
				got += c.count(s)
			}
			if got < n {
				return false
			}
		}
		return true
	})
}

// dups counts, per subject, the seqs c received more than once (the extra copies).
func (c *collector) dups() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for subject, seen := range c.seqs {
		for _, n := range seen {
			if n > 1 {
				out[subject] += n - 1
			}
		}
	}
	return out
}

// assertExactlyOnce checks that c holds every seq of every subject of upTo
// exactly once, from the first it holds up to upTo's.
func assertExactlyOnce(t *testing.T, c *collector, upTo map[string]uint64) {
	t.Helper()
	c.checkProblems()
	tl := c.tally(upTo)
	if tl.subjects != len(upTo) {
		t.Errorf("messages on %d subjects, want %d", tl.subjects, len(upTo))
	}
	if tl.lost != 0 {
		t.Errorf("%d seqs missing: %v", tl.lost, tl.lostBelow)
	}
	if d := c.dups(); len(d) != 0 {
		t.Errorf("seqs stored more than once, by subject: %v", d)
	}
	t.Logf("%d messages on %d subjects checked", tl.received, tl.subjects)
}

func clusterFixtures(base int) []string {
	out := make([]string, 6)
	for i := range out {
		out[i] = fmt.Sprintf("sr:match:%d", base+i)
	}
	return out
}

// TestClusterKillWithTwoReplicas runs three members in JetStream mode with
// DATACORE_REPLICAS=2: every fixture is owned by two of them, each member
// owning four of the twelve; then one is killed (SIGKILL) mid-game. The
// survivors each take every fixture (logging that they take the victim's
// from it, none as a failover: the other owner went on), and the stream
// holds every seq of every fixture exactly once: no gap, no duplicate,
// although a core subscriber sees messages published by both owners (the
// stream's duplicate window drops the second copy).
func TestClusterKillWithTwoReplicas(t *testing.T) {
	ids := clusterFixtures(700)
	b := newClusterBed(t, clusterOptions{fixtures: ids, jetStream: true, replicas: 2})
	col := b.readStream()
	live := []*member{b.start("m1"), b.start("m2"), b.start("m3")}
	owners := b.waitSettled(live, ids)
	assertSpread(t, owners, live, 2)
	// Both owners publish each message: a core subscriber gets it twice,
	// the stream keeps one.
	published := b.subscribe()
	b.waitFlowing(col, ids, 2*clusterRate)

	victim, survivors := live[1], []*member{live[0], live[2]}
	victim.signal(syscall.SIGKILL)
	killed := time.Now()
	victim.wait(10 * time.Second)
	after := b.waitSettled(survivors, ids)
	t.Logf("two owners per fixture among the survivors %v after the kill", time.Since(killed).Round(time.Millisecond))
	assertSpread(t, after, survivors, 2)
	// The victim's fixtures get a second owner again; none was without
	// one, so none is a failover.
	assertTookOver(t, survivors, victim, logTaking, owned(owners, victim.name))
	assertTookOver(t, survivors, victim, logTookOver, nil)

	b.waitFlowing(col, ids, 4*clusterRate)
	upTo := b.lastSeqs(ids)
	b.waitReceived(col, upTo)
	assertExactlyOnce(t, col, upTo)
	twice := 0
	for _, n := range published.dups() {
		twice += n
	}
	if twice == 0 {
		t.Error("no message was published twice: the two owners did not both publish")
	}
	t.Logf("%d messages published twice (both owners), stored once", twice)
}

// TestClusterRollingUpdate runs three members in JetStream mode with
// DATACORE_REPLICAS=1 and replaces each in turn: SIGTERM (the member hands
// its streams over, logs it and exits 0), then a new member under a new
// name, which takes its share. The stream holds every seq of every fixture
// exactly once.
func TestClusterRollingUpdate(t *testing.T) {
	ids := clusterFixtures(710)
	b := newClusterBed(t, clusterOptions{fixtures: ids, jetStream: true, replicas: 1})
	col := b.readStream()
	live := []*member{b.start("m1"), b.start("m2"), b.start("m3")}
	owners := b.waitSettled(live, ids)
	assertSpread(t, owners, live, 1)
	b.waitFlowing(col, ids, clusterRate)

	for i := range live {
		old := live[i]
		mine := owned(owners, old.name)
		began := time.Now()
		old.signal(syscall.SIGTERM)
		if code := old.wait(40 * time.Second); code != 0 {
			t.Fatalf("%s exited %d after SIGTERM, want 0; logs:\n%s", old.name, code, old.logs.String())
		}
		if n := old.logs.Count("streams handed over to the other members"); n != 1 {
			t.Errorf("%s logged 'streams handed over to the other members' %d times, want 1", old.name, n)
		}
		if n := old.logs.Count("streams not all handed over: the rest stop now"); n != 0 {
			t.Errorf("%s did not hand every stream over", old.name)
		}
		var handed []string
		for _, rec := range old.logged("handed a stream over") {
			if rec["reason"] == "drain" {
				handed = append(handed, fmt.Sprint(rec["id"]))
			}
		}
		if slices.Sort(handed); !slices.Equal(handed, mine) {
			t.Errorf("%s handed %v over for the drain, want the fixtures it owned %v", old.name, handed, mine)
		}
		t.Logf("%s drained and exited in %v", old.name, time.Since(began).Round(time.Millisecond))
		live[i] = b.start(fmt.Sprintf("m%d", 4+i))
		owners = b.waitSettled(live, ids)
		assertSpread(t, owners, live, 1)
	}

	upTo := b.lastSeqs(ids)
	b.waitReceived(col, upTo)
	assertExactlyOnce(t, col, upTo)
}

// quietVictim picks the member whose departure moves no other member's
// fixture (cluster.Assign over the survivors), or the one that moves the
// fewest, so that a failover test sees only the victim's fixtures change hands.
func quietVictim(owners map[string][]string, live []*member, replicas int) *member {
	var best *member
	bestMoves := -1
	for _, v := range live {
		var survivors, keys []string
		for _, m := range live {
			if m != v {
				survivors = append(survivors, m.name)
			}
		}
		byKey := map[string]string{}
		for id := range owners {
			k := cluster.FollowedKey(access.Fixture, id)
			keys, byKey[k] = append(keys, k), id
		}
		moves := 0
		for k, os := range cluster.Assign(keys, survivors, replicas) {
			id := byKey[k]
			for _, o := range owners[id] {
				if o != v.name && !slices.Contains(os, o) {
					moves++
				}
			}
		}
		if bestMoves < 0 || moves < bestMoves {
			best, bestMoves = v, moves
		}
	}
	return best
}

// TestClusterCoreFailover runs three members in core NATS mode with
// DATACORE_REPLICAS=1 (each fixture owned by one, two per member, each
// member running exactly its own), then kills one (SIGKILL): a survivor
// takes each of its fixtures over within the lease TTL plus an access call
// and a connect. It logs the takeover time and the messages lost per
// fixture, and checks that nothing was received twice, that the survivors'
// fixtures lost nothing, and that the survivors log the takeovers.
func TestClusterCoreFailover(t *testing.T) {
	ids := clusterFixtures(720)
	b := newClusterBed(t, clusterOptions{fixtures: ids, jetStream: false, replicas: 1})
	live := []*member{b.start("m1"), b.start("m2"), b.start("m3")}
	before := b.waitSettled(live, ids)
	assertSpread(t, before, live, 1)
	// Collect from here on: the handovers of the start (make-before-break:
	// in core mode both owners publish for a moment) are over.
	col := b.subscribe()
	b.waitFlowing(col, ids, clusterRate)

	victim := quietVictim(before, live, 1)
	var survivors []*member
	for _, m := range live {
		if m != victim {
			survivors = append(survivors, m)
		}
	}
	lost := owned(before, victim.name)
	atKill := b.lastSeqs(lost)
	victim.signal(syscall.SIGKILL)
	killed := time.Now()
	taken := map[string]time.Duration{}
	watch := survivors[0]
	err := poll.Until(t.Context(), clusterTTL+5*time.Second, "a survivor to own the victim's fixtures, connected",
		every(10*time.Millisecond, func() bool {
			st, err := watch.status()
			if err != nil {
				return false
			}
			for _, f := range st.Followed {
				if _, done := taken[f.ID]; done || !slices.Contains(lost, f.ID) {
					continue
				}
				for _, o := range f.Owners {
					if o.Instance != victim.name && o.State == fixtures.StateConnected {
						taken[f.ID] = time.Since(killed)
					}
				}
			}
			return len(taken) == len(lost)
		}))
	if err != nil {
		t.Fatalf("%v: taken over so far %v", err, taken)
	}
	victim.wait(10 * time.Second)
	after := b.waitSettled(survivors, ids)
	assertSpread(t, after, survivors, 1)

	upTo := b.lastSeqs(ids)
	elapsed := time.Since(killed)
	b.waitReceived(col, upTo)
	col.checkProblems()
	tl, dups, subjects := col.tally(upTo), col.dups(), b.subjects(ids)
	if tl.subjects != len(upTo) {
		t.Errorf("messages on %d subjects, want %d", tl.subjects, len(upTo))
	}
	for _, id := range ids {
		missing, twice := 0, 0
		for _, s := range subjects[id] {
			missing += len(tl.lostBelow[s])
			twice += dups[s]
		}
		moved := !slices.Equal(before[id], after[id])
		switch {
		case slices.Contains(lost, id):
			var published uint64
			for _, s := range subjects[id] {
				published += upTo[s] - atKill[s]
			}
			rate := float64(published) / elapsed.Seconds()
			t.Logf("%s: taken over from %s by %v %v after the kill; %d messages lost (%.1fs at %.1f msg/s)",
				id, victim.name, after[id], taken[id].Round(time.Millisecond), missing, float64(missing)/rate, rate)
			if twice != 0 {
				t.Errorf("%s: %d messages received twice after a failover", id, twice)
			}
		case moved:
			t.Logf("%s moved from %v to %v (a make-before-break handover): %d messages received twice", id, before[id], after[id], twice)
			if missing != 0 {
				t.Errorf("%s: %d messages lost in a handover between live members: %v", id, missing, tl.lostBelow)
			}
		default:
			if missing != 0 || twice != 0 {
				t.Errorf("%s stayed on %v but lost %d messages and received %d twice", id, before[id], missing, twice)
			}
		}
	}

	assertTookOver(t, survivors, victim, logTaking, lost)
	assertTookOver(t, survivors, victim, logTookOver, lost)
}

// Log lines of a takeover: the first when a member takes a vanished
// member's stream, the second once it is connected if nobody else was (a
// failover the stream was without), with the failover time (from the
// vanished member's last lease renewal).
const (
	logTaking   = "taking over a stream from a member that vanished"
	logTookOver = "took over a stream"
)

// assertTookOver checks that the survivors logged msg for exactly the
// fixtures ids, each once, from victim.
func assertTookOver(t *testing.T, survivors []*member, victim *member, msg string, ids []string) {
	t.Helper()
	var got []string
	for _, m := range survivors {
		for _, rec := range m.logged(msg) {
			got = append(got, fmt.Sprint(rec["id"]))
			if rec["from"] != victim.name {
				t.Errorf("%s logged %q for %v from %v, want from %s", m.name, msg, rec["id"], rec["from"], victim.name)
			}
			if f, ok := rec["failover"]; ok {
				t.Logf("%s logged: took %v over from %v, failover %v", m.name, rec["id"], rec["from"], f)
			}
		}
	}
	if slices.Sort(got); !slices.Equal(got, ids) {
		t.Errorf("the survivors logged %q for %v, want %v", msg, got, ids)
	}
}

// sessionsOf lists the emulator's sessions subscribed to a topic of fixture id.
func sessionsOf(emu *sim.Server, id string) []sim.SessionInfo {
	var out []sim.SessionInfo
	for _, s := range emu.Sessions() {
		for _, f := range s.Subscriptions {
			if strings.Contains(f, "/"+id+"/") {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// TestClusterFollowedSet runs three members in JetStream mode (persistent
// MQTT sessions) and changes the followed set through two of them: a PUT
// of a new fixture on one and a DELETE of a configured one on another. Every
// member sees both; the new fixture's owner runs it, nobody runs the
// deleted one and no session subscribed to it is left at the emulator. Then
// every member stops (SIGTERM, exit 0) and three new ones start with the same
// DATACORE_FIXTURES: the admin-added fixture is followed again, the deleted
// one is not.
func TestClusterFollowedSet(t *testing.T) {
	ids := clusterFixtures(730)
	added, deleted := "sr:match:799", ids[0]
	b := newClusterBed(t, clusterOptions{fixtures: ids, more: []string{added}, jetStream: true, replicas: 1})
	live := []*member{b.start("m1"), b.start("m2"), b.start("m3")}
	before := b.waitSettled(live, ids)
	poll.Wait(t, 10*time.Second, "a session subscribed to "+deleted, func() bool { return len(sessionsOf(b.emu, deleted)) > 0 })

	if code, body, err := live[0].do(http.MethodPut, "/v1/fixtures/"+added, testAdminToken); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT %s on %s = %d %s %v, want 201", added, live[0].name, code, body, err)
	}
	if code, body, err := live[1].do(http.MethodDelete, "/v1/fixtures/"+deleted, testAdminToken); err != nil || code != http.StatusNoContent {
		t.Fatalf("DELETE %s on %s = %d %s %v, want 204", deleted, live[1].name, code, body, err)
	}
	want := append(slices.Clone(ids[1:]), added)
	after := b.waitSettled(live, want) // on every member: followed, owners, subscriptions
	st, err := live[2].status()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Followed {
		if f.ID == added && f.Source != fixtures.SourceAdmin {
			t.Errorf("%s's source is %q on %s, want admin", added, f.Source, live[2].name)
		}
	}
	t.Logf("%s (owned by %v) deleted; %s added, owned by %v", deleted, before[deleted], added, after[added])
	poll.Wait(t, 10*time.Second, "no session subscribed to the deleted fixture", func() bool {
		return len(sessionsOf(b.emu, deleted)) == 0
	})

	for _, m := range live {
		m.signal(syscall.SIGTERM)
	}
	for _, m := range live {
		if code := m.wait(40 * time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0; logs:\n%s", m.name, code, m.logs.String())
		}
	}
	for _, s := range b.emu.Sessions() {
		if len(s.Subscriptions) > 0 {
			t.Errorf("session %s left subscribed to %v after every member stopped", s.ClientID, s.Subscriptions)
		}
	}

	live = []*member{b.start("m4"), b.start("m5"), b.start("m6")}
	const seeded = "configured IDs added to the cluster's followed set"
	for _, m := range live {
		poll.Wait(t, 20*time.Second, m.name+" to seed the followed set", func() bool { return m.logs.Count(seeded) == 1 })
		// JSON numbers: the deleted ID stays deleted, the others are there.
		if rec := m.logged(seeded)[0]; rec["added"] != 0.0 || rec["already_present_or_removed"] != float64(len(ids)) {
			t.Errorf("%s seeded %v, want none added and %d present or removed", m.name, rec, len(ids))
		}
	}
	b.waitSettled(live, want)
	if s := sessionsOf(b.emu, deleted); len(s) != 0 {
		t.Errorf("sessions subscribed to the deleted fixture after the restart: %v", s)
	}
}
