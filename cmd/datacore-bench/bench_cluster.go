package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/cluster"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
	"github.com/datacore-bridge/datacore-bridge/metrics"
	"github.com/datacore-bridge/datacore-bridge/sim"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// childRoleEnv, set to "bridge", makes this program (or its test binary) a
// bridge configured from the environment, as the daemon is: the cluster
// benchmark runs its members as child processes so that one can be killed.
const childRoleEnv = "DATACORE_BENCH_ROLE"

// failPoint is one mode's failover: a member killed with SIGKILL.
type failPoint struct {
	Mode     string  `json:"mode"`
	Members  float64 `json:"members"`
	Fixtures float64 `json:"fixtures"`
	Rate     float64 `json:"ratePerFixture"`
	LeaseTTL float64 `json:"leaseTTLSeconds"`
	Moved    float64 `json:"streamsMoved"` // streams the killed member owned
	Takeover float64 `json:"takeoverSeconds"`
	TakeMax  float64 `json:"takeoverWorstSeconds"`
	Metric   float64 `json:"failoverMetricSeconds"` // cluster_failover_seconds, mean over the moved streams
	Lost     float64 `json:"lostPerFailover"`       // seqs of the moved streams never stored
	LostMax  float64 `json:"lostWorst"`
	Dup      float64 `json:"duplicated"` // seqs stored (JetStream) or received (core) twice
}

// kvPoint is the KV cost of a steady cluster.
type kvPoint struct {
	Members     float64 `json:"members"`
	IDs         float64 `json:"ids"`
	Replicas    float64 `json:"replicas"`
	LeaseTTL    float64 `json:"leaseTTLSeconds"`
	OpsPerSec   float64 `json:"kvOpsPerSec"`        // writes and reads by every member
	OpsPer1000  float64 `json:"kvOpsPerSecPer1000"` // per 1,000 followed IDs
	ServerInMsg float64 `json:"serverMsgsInPerSec"` // what the NATS server took (KV writes, API requests)
	ServerOut   float64 `json:"serverMsgsOutPerSec"`
}

// clusterModes are the failover benchmark's modes.
var clusterModes = []struct {
	name      string
	jetStream bool
	replicas  int
}{
	{"core replicas=1", false, 1},
	{"jetstream replicas=1", true, 1},
	{"jetstream replicas=2", true, 2},
}

// runClusterFailover kills one of o.clusterMembers bridge processes per mode
// and measures the takeover and what was lost.
func runClusterFailover(ctx context.Context, o benchOpts, run int, log *slog.Logger) ([]failPoint, error) {
	var out []failPoint
	for _, mode := range clusterModes {
		p, err := benchFailover(ctx, o, mode.name, mode.jetStream, mode.replicas, run, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode.name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func benchFailover(ctx context.Context, o benchOpts, mode string, jetStream bool, replicas, run int, log *slog.Logger) (failPoint, error) {
	p := failPoint{Mode: mode, Members: float64(o.clusterMembers), Fixtures: float64(o.clusterFixtures), Rate: o.clusterRate, LeaseTTL: o.clusterTTL.Seconds()}
	ids := make([]string, o.clusterFixtures)
	for i := range ids {
		ids[i] = "sr:match:" + strconv.Itoa(80000000+i)
	}
	emu, err := startBenchSim(ctx, ids, sim.Feed{Rate: o.clusterRate, PayloadSize: benchPayloadSize}, 0)
	if err != nil {
		return p, err
	}
	defer emu.Close()
	ns, err := startBenchNATS(true)
	if err != nil {
		return p, err
	}
	defer ns.Close()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return p, err
	}
	defer nc.Close()
	w := newSeqWatch()
	if !jetStream {
		if _, err := nc.Subscribe("datacore.>", w.take); err != nil {
			return p, err
		}
		if err := nc.Flush(); err != nil {
			return p, err
		}
	}

	name := fmt.Sprintf("bench%d", run)
	members := make([]*childBridge, o.clusterMembers)
	for i := range members {
		env := []string{
			"DATACORE_API_URL=" + emu.APIURL(), "DATACORE_CREDENTIAL_ID=" + benchCredID, "DATACORE_CREDENTIAL_SECRET=" + benchCredSecret,
			"DATACORE_NATS_URL=" + ns.ClientURL(), "DATACORE_FIXTURES=" + strings.Join(ids, ","),
			"DATACORE_CLUSTER=" + name, "DATACORE_INSTANCE=" + fmt.Sprintf("m%d", i), "DATACORE_REPLICAS=" + strconv.Itoa(replicas),
			"DATACORE_LEASE_TTL=" + o.clusterTTL.String(), "DATACORE_JETSTREAM=" + strconv.FormatBool(jetStream),
			"DATACORE_ACCESS_RATE=1000", "DATACORE_ACCESS_BURST=1000", "DATACORE_LOG_LEVEL=error",
		}
		if jetStream {
			env = append(env, "DATACORE_STREAM="+testbed.StreamName)
		}
		c, err := startChildBridge(ctx, env)
		if err != nil {
			return p, err
		}
		defer c.stop()
		members[i] = c
	}
	var st cluster.Status
	if err := poll.Until(ctx, 60*time.Second, "every fixture owned and connected", func() bool {
		s, err := members[0].status()
		if err != nil {
			return false
		}
		st = s
		return settled(s, len(ids), replicas)
	}); err != nil {
		return p, err
	}
	if !sleepCtx(ctx, time.Second) {
		return p, ctx.Err()
	}

	// The victim: the member that owns the most.
	owns := map[string][]string{}
	for _, f := range st.Followed {
		for _, ow := range f.Owners {
			owns[ow.Instance] = append(owns[ow.Instance], f.ID)
		}
	}
	victim := 0
	for i, m := range members {
		if len(owns[m.instance]) > len(owns[members[victim].instance]) {
			victim = i
		}
	}
	moved := owns[members[victim].instance]
	p.Moved = float64(len(moved))
	survivor := members[(victim+1)%len(members)]
	killed := time.Now()
	members[victim].kill()
	taken := map[string]time.Duration{}
	if err := poll.Until(ctx, 3*o.clusterTTL+30*time.Second, "the killed member's streams taken over", func() bool {
		s, err := survivor.status()
		if err != nil {
			return false
		}
		for _, f := range s.Followed {
			if !slices.Contains(moved, f.ID) {
				continue
			}
			if _, ok := taken[f.ID]; ok {
				continue
			}
			n := 0
			for _, ow := range f.Owners {
				if ow.Instance != members[victim].instance && ow.State == fixtures.StateConnected && slices.Contains(f.Assigned, ow.Instance) {
					n++
				}
			}
			if n >= replicas {
				taken[f.ID] = time.Since(killed)
			}
		}
		return len(taken) == len(moved)
	}); err != nil {
		return p, err
	}
	var times []float64
	for _, d := range taken {
		times = append(times, d.Seconds())
	}
	p.Takeover, p.TakeMax = median(times), slices.Max(times)
	var sum, count float64
	for i, m := range members {
		if i == victim {
			continue
		}
		s, c := m.histogram("datacore_cluster_failover_seconds")
		sum, count = sum+s, count+c
	}
	if count > 0 {
		p.Metric = sum / count
	}

	// Up to what the emulator has published by now, was every message of
	// the moved streams stored once? The survivors take a second more to
	// publish the last ones, then stop (flushing NATS).
	want := map[string]map[string]uint64{}
	for _, id := range ids {
		want[id] = map[string]uint64{}
		for _, sc := range benchScopes {
			want[id][sink.KindFromScope(sc)] = emu.LastSeq("fixture", id, sc)
		}
	}
	if !sleepCtx(ctx, time.Second) {
		return p, ctx.Err()
	}
	for _, m := range members {
		if m != members[victim] {
			m.stop()
		}
	}
	if jetStream {
		if err := readStream(ctx, ns.ClientURL(), w); err != nil {
			return p, err
		}
	}
	var lostAll, dupAll int
	for _, id := range ids {
		_, lost, dup, _ := w.tallyPrefix(fixtureSubjectPrefix(id), want[id])
		dupAll += dup
		if slices.Contains(moved, id) {
			lostAll += lost
		}
	}
	p.Lost, p.LostMax, p.Dup = float64(lostAll), float64(lostAll), float64(dupAll)
	return p, nil
}

// settled reports whether every fixture has replicas owners, all connected.
func settled(s cluster.Status, fixtures, replicas int) bool {
	if len(s.Followed) != fixtures {
		return false
	}
	for _, f := range s.Followed {
		n := 0
		for _, ow := range f.Owners {
			if ow.State == "connected" && slices.Contains(f.Assigned, ow.Instance) {
				n++
			}
		}
		if n < replicas || len(f.Owners) != replicas {
			return false
		}
	}
	return true
}

func fixtureSubjectPrefix(id string) string {
	return "datacore.basketball.fixture." + sink.EscapeToken(id) + "."
}

// readStream reads every message of the bridge's JetStream stream into w.
func readStream(ctx context.Context, url string, w *seqWatch) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	s, err := js.Stream(ctx, testbed.StreamName)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	for n := uint64(0); n < info.State.Msgs; {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			w.take(&nats.Msg{Subject: m.Subject(), Data: m.Data()})
			got++
		}
		if got == 0 {
			return fmt.Errorf("stream read stopped at %d of %d messages", n, info.State.Msgs)
		}
		n += uint64(got)
	}
	return nil
}

// childBridge is a bridge process of the cluster benchmark.
type childBridge struct {
	cmd      *exec.Cmd
	instance string
	addr     string
	done     chan struct{}
}

// startChildBridge runs this program as a bridge with env (plus its own
// HTTP address) and waits for its HTTP API.
func startChildBridge(ctx context.Context, env []string) (*childBridge, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childRoleEnv+"=bridge", "DATACORE_HTTP_ADDR="+addr)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childBridge{cmd: cmd, addr: addr, done: make(chan struct{})}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "DATACORE_INSTANCE="); ok {
			c.instance = v
		}
	}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	if err := poll.Until(ctx, 20*time.Second, "a bridge's HTTP API", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

func (c *childBridge) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// stop sends SIGTERM and waits, killing after a while.
func (c *childBridge) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(40 * time.Second):
		c.kill()
	}
}

func (c *childBridge) status() (cluster.Status, error) {
	var s cluster.Status
	resp, err := http.Get("http://" + c.addr + "/v1/cluster")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// histogram returns a histogram's sum and count from the member's /metrics.
func (c *childBridge) histogram(name string) (sum, count float64) {
	return c.metric(name + "_sum"), c.metric(name + "_count")
}

// metric sums every series of name in the member's /metrics.
func (c *childBridge) metric(name string) float64 {
	resp, err := http.Get("http://" + c.addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	return sumMetric(resp.Body, name)
}

// sumMetric sums every series of name in a Prometheus text exposition.
func sumMetric(r io.Reader, name string) float64 {
	var total float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			total += v
		}
	}
	return total
}

// childMain runs a bridge configured from the environment until SIGTERM,
// as the daemon does.
func childMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return bridge.Serve(ctx, context.Background(), os.Stderr, bridge.Options{MaxBackoff: 2 * time.Second})
}

// benchKV measures the KV operations of a steady cluster of members nodes
// following ids IDs, with streams that connect at once (the KV cost alone).
func benchKV(ctx context.Context, members, ids, replicas int, ttl, window time.Duration) (kvPoint, error) {
	p := kvPoint{Members: float64(members), IDs: float64(ids), Replicas: float64(replicas), LeaseTTL: ttl.Seconds()}
	ns, err := startBenchNATS(true)
	if err != nil {
		return p, err
	}
	defer ns.Close()
	var seed []cluster.Seed
	for i := range ids {
		seed = append(seed, cluster.Seed{ID: cluster.ID{Kind: access.Fixture, ID: "sr:match:" + strconv.Itoa(90000000+i)}, Source: fixtures.SourceEnv})
	}
	m := metrics.New()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var nodes []*cluster.Node
	var locals []*instantLocal
	for i := range members {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			return p, err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return p, err
		}
		local := &instantLocal{streams: map[cluster.ID]bool{}}
		o := cluster.Options{JetStream: js, Cluster: "kv", Instance: fmt.Sprintf("m%d", i), Replicas: replicas, LeaseTTL: ttl,
			Local: local, MaxFollowed: ids, Metrics: m}
		if i == 0 {
			o.Seed = seed
		}
		n, err := cluster.New(o)
		if err != nil {
			return p, err
		}
		nodes, locals = append(nodes, n), append(locals, local)
		go func() { _ = n.Run(runCtx) }()
	}
	if err := poll.Until(ctx, 60*time.Second, "every ID owned", func() bool {
		total := 0
		for _, l := range locals {
			total += l.count()
		}
		return total == ids*min(replicas, members)
	}); err != nil {
		return p, err
	}
	// Past the first renewals of every lease, then a window.
	if !sleepCtx(ctx, ttl) {
		return p, ctx.Err()
	}
	ops := func() float64 { return testbed.CounterSum(m.ClusterKVOps) }
	v0, err := ns.Varz(nil)
	if err != nil {
		return p, err
	}
	o0, t0 := ops(), time.Now()
	if !sleepCtx(ctx, window) {
		return p, ctx.Err()
	}
	v1, err := ns.Varz(nil)
	if err != nil {
		return p, err
	}
	secs := time.Since(t0).Seconds()
	p.OpsPerSec = (ops() - o0) / secs
	p.OpsPer1000 = p.OpsPerSec * 1000 / float64(ids)
	p.ServerInMsg = float64(v1.InMsgs-v0.InMsgs) / secs
	p.ServerOut = float64(v1.OutMsgs-v0.OutMsgs) / secs
	cancel()
	for _, n := range nodes {
		<-n.Done()
	}
	return p, nil
}

// instantLocal is a supervisor whose streams connect at once.
type instantLocal struct {
	mu      sync.Mutex
	streams map[cluster.ID]bool
}

func (l *instantLocal) FollowFrom(kind access.Kind, id string, _ fixtures.Source) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streams[cluster.ID{Kind: kind, ID: id}] = true
	return true, nil
}

func (l *instantLocal) Unfollow(kind access.Kind, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.streams, cluster.ID{Kind: kind, ID: id})
	return true
}

func (l *instantLocal) State(kind access.Kind, id string) (fixtures.State, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streams[cluster.ID{Kind: kind, ID: id}] {
		return fixtures.StateConnected, true
	}
	return "", false
}

func (l *instantLocal) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.streams)
}
