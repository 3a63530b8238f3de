package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/datacore-bridge/datacore-bridge/cluster"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/metrics"
)

// demoCluster is DATACORE_CLUSTER of the demo's replicas.
const demoCluster = "demo"

// replica is one of the bridges the demo runs in cluster mode.
type replica struct {
	name string
	b    *bridge.Bridge
	m    *metrics.Metrics
	// muted silences the replica's logs: a crashed process says nothing.
	muted *atomic.Bool
	// quiet keeps only the replica's errors.
	quiet *atomic.Bool
	log   *slog.Logger
	// killed is set once kill has run; read and written by the demo's loop only.
	killed    bool
	published uint64 // at the last summary
}

// replicaName is the DATACORE_INSTANCE of the i-th replica (from 0).
func replicaName(i int) string { return "replica-" + strconv.Itoa(i+1) }

// replicaAddr is the i-th replica's DATACORE_HTTP_ADDR: addr with its port
// plus i, or addr itself when its port is 0 (a random one each).
func replicaAddr(addr string, i int) (string, error) {
	if addr == "" {
		return "", nil // no HTTP API
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("-http-addr: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("-http-addr: port %q: %w", port, err)
	}
	if p == 0 {
		return addr, nil
	}
	return net.JoinHostPort(host, strconv.Itoa(p+i)), nil
}

// newReplica returns the i-th replica, its logger log's with the replica's
// name, which muted silences and quiet limits to errors.
func newReplica(log *slog.Logger, i int) *replica {
	r := &replica{name: replicaName(i), m: metrics.New(), muted: &atomic.Bool{}, quiet: &atomic.Bool{}}
	r.log = slog.New(muteHandler{h: log.Handler(), muted: r.muted, quiet: r.quiet}).With("replica", r.name)
	return r
}

// muteHandler drops every record while muted is set, and those below
// errors while quiet is.
type muteHandler struct {
	h            slog.Handler
	muted, quiet *atomic.Bool
}

func (m muteHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return m.pass(l) && m.h.Enabled(ctx, l)
}

func (m muteHandler) pass(l slog.Level) bool {
	return !m.muted.Load() && (l >= slog.LevelError || !m.quiet.Load())
}

func (m muteHandler) Handle(ctx context.Context, r slog.Record) error {
	if !m.pass(r.Level) {
		return nil
	}
	return m.h.Handle(ctx, r)
}

func (m muteHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return muteHandler{h: m.h.WithAttrs(a), muted: m.muted, quiet: m.quiet}
}

func (m muteHandler) WithGroup(name string) slog.Handler {
	return muteHandler{h: m.h.WithGroup(name), muted: m.muted, quiet: m.quiet}
}

// startReplicas starts replicas 2..n beside first (replica-1, started by the
// test bed with cfg): the same configuration but DATACORE_INSTANCE and
// DATACORE_HTTP_ADDR. On error it stops those it started.
func startReplicas(ctx context.Context, n int, first *replica, cfg *config.Config, httpAddr string, log *slog.Logger) ([]*replica, error) {
	reps := []*replica{first}
	for i := 1; i < n; i++ {
		c := *cfg
		c.Instance = replicaName(i)
		addr, err := replicaAddr(httpAddr, i)
		if err != nil {
			stopReplicas(reps[1:])
			return nil, err
		}
		c.HTTPAddr = addr
		if err := c.Validate(); err != nil {
			stopReplicas(reps[1:])
			return nil, fmt.Errorf("%s: config: %w", c.Instance, err)
		}
		r := newReplica(log, i)
		if r.b, err = bridge.Start(ctx, &c, r.log, bridge.Options{Metrics: r.m, MaxBackoff: 5 * time.Second}); err != nil {
			stopReplicas(reps[1:])
			return nil, fmt.Errorf("%s: %w", c.Instance, err)
		}
		reps = append(reps, r)
	}
	return reps, nil
}

// stopReplicas shuts the live replicas down at once, their logs limited to
// errors: with every replica leaving, none can take the others' streams, and
// the warnings saying so are no news at the end of the demo.
func stopReplicas(reps []*replica) []error {
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, r := range reps {
		if r.killed {
			continue
		}
		r.quiet.Store(true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.b.Shutdown(context.Background()); err != nil {
				errs[i] = fmt.Errorf("%s: %w", r.name, err)
			}
		}()
	}
	wg.Wait()
	return errs
}

// kill stops r the way a crash would: its logs end, its NATS connection
// drops, then everything stops at once. With its connection gone it can
// neither hand its streams over nor delete its member key and leases, so the
// others take its streams once those expire, after the lease TTL.
func (r *replica) kill() {
	r.muted.Store(true)
	r.killed = true
	r.b.NATS().Close()
	now, cancel := context.WithCancel(context.Background())
	cancel()
	_ = r.b.Shutdown(now) // cut short at once, as asked: its error says so
}

// clusterView follows the cluster through the replicas' own status.
type clusterView struct {
	reps    []*replica
	spread  bool // the first full spread was printed
	victim  *replica
	killAt  time.Time
	pending map[cluster.ID]bool // the victim's streams not yet connected elsewhere
	moved   []string            // "ID → replica", in the order they moved
	done    bool
	// respread is set once the takeover is done, until the streams are
	// spread over the survivors again.
	respread bool
	// metricBy, once the takeover is done, is when the survivors'
	// failover count is printed even if it has not reached len(moved).
	metricBy time.Time
	leader   string // the discovery leader last seen
}

// status is the cluster as the first live replica sees it.
func (v *clusterView) status() (cluster.Status, bool) {
	for _, r := range v.reps {
		if !r.killed {
			return r.b.Cluster().Status(), true
		}
	}
	return cluster.Status{}, false
}

// followed is the cluster's followed set as streams, for gameLog.look: a
// game stays followed while its stream moves from one replica to another.
func followed(st cluster.Status) []fixtures.StreamInfo {
	out := make([]fixtures.StreamInfo, 0, len(st.Followed))
	for _, f := range st.Followed {
		out = append(out, fixtures.StreamInfo{Kind: f.Kind, ID: f.ID, Source: f.Source})
	}
	return out
}

// connectedOwner is the first live replica with a connected lease on f, or "".
func (v *clusterView) connectedOwner(f cluster.FollowedStatus) string {
	for _, o := range f.Owners {
		if o.State != fixtures.StateConnected {
			continue
		}
		for _, r := range v.reps {
			if r.name == o.Instance && !r.killed {
				return r.name
			}
		}
	}
	return ""
}

// owners lists, per live replica, the IDs it holds a connected lease on,
// then the followed IDs no live replica has connected.
func (v *clusterView) owners(st cluster.Status) string {
	by := map[string][]string{}
	var none []string
	for _, f := range st.Followed {
		if o := v.connectedOwner(f); o != "" {
			by[o] = append(by[o], f.ID)
		} else {
			none = append(none, f.ID)
		}
	}
	var parts []string
	for _, r := range v.reps {
		if r.killed {
			continue
		}
		ids := by[r.name]
		if len(ids) == 0 {
			ids = []string{"nothing"}
		}
		parts = append(parts, r.name+": "+strings.Join(ids, ", "))
	}
	if len(none) > 0 {
		parts = append(parts, "no live owner connected: "+strings.Join(none, ", "))
	}
	return strings.Join(parts, " | ")
}

// look prints the first full spread, and the takeover after a kill.
func (v *clusterView) look(out io.Writer, at string, st cluster.Status) {
	if st.Leader != "" && st.Leader != v.leader {
		if v.leader != "" {
			fmt.Fprintf(out, "%s %s now lists the organizations' fixtures (discovery leader, after %s)\n", at, st.Leader, v.leader)
		}
		v.leader = st.Leader
	}
	if !v.spread && v.even(st) {
		v.spread = true
		fmt.Fprintf(out, "%s spread over the replicas: %s\n", at, v.owners(st))
	}
	if v.respread && v.even(st) {
		v.respread = false
		fmt.Fprintf(out, "%s spread again over the live replicas: %s\n", at, v.owners(st))
	}
	if !v.metricBy.IsZero() {
		if n, line := v.failovers(st.LeaseTTL); n >= len(v.moved) || time.Now().After(v.metricBy) {
			v.metricBy = time.Time{}
			fmt.Fprintf(out, "%s %s\n", at, line)
		}
	}
	if v.victim == nil || v.done {
		return
	}
	now := map[cluster.ID]cluster.FollowedStatus{}
	for _, f := range st.Followed {
		now[cluster.ID{Kind: f.Kind, ID: f.ID}] = f
	}
	for _, id := range sortedIDs(v.pending) {
		f, ok := now[id]
		if !ok {
			delete(v.pending, id)
			fmt.Fprintf(out, "%s %s left the followed set before anyone took it over\n", at, id.ID)
			continue
		}
		if o := v.connectedOwner(f); o != "" {
			delete(v.pending, id)
			took := time.Since(v.killAt)
			v.moved = append(v.moved, id.ID+" → "+o)
			fmt.Fprintf(out, "%s %s taken over by %s: connected %s after the kill\n", at, id.ID, o, took.Round(100*time.Millisecond))
		}
	}
	if len(v.pending) == 0 {
		v.done, v.respread = true, true
		fmt.Fprintf(out, "%s takeover done in %s: %s's %d streams moved (%s)\n",
			at, time.Since(v.killAt).Round(100*time.Millisecond), v.victim.name, len(v.moved), orNothing(v.moved))
		// A survivor counts its failover a moment after its lease says
		// connected: wait for the counts, a lease TTL at most.
		ttl, _ := time.ParseDuration(st.LeaseTTL)
		v.metricBy = time.Now().Add(ttl)
	}
}

// even reports whether every followed ID has exactly one connected owner,
// a live replica, and the live replicas' loads are at most one apart.
func (v *clusterView) even(st cluster.Status) bool {
	load := map[string]int{}
	for _, r := range v.reps {
		if !r.killed {
			load[r.name] = 0
		}
	}
	for _, f := range st.Followed {
		n := 0
		for _, o := range f.Owners {
			if o.State == fixtures.StateConnected {
				n++
			}
		}
		owner := v.connectedOwner(f)
		if n != 1 || owner == "" {
			return false
		}
		load[owner]++
	}
	lo, hi := -1, 0
	for _, n := range load {
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return len(st.Followed) > 0 && hi-lo <= 1
}

// kill kills the live replica that owns the most streams (the last one on a
// tie) and remembers its streams for the takeover.
func (v *clusterView) kill(out io.Writer, at string) {
	var victim *replica
	var most []fixtures.StreamInfo
	for _, r := range v.reps {
		if r.killed {
			continue
		}
		if s := r.b.Supervisor().Streams(); victim == nil || len(s) >= len(most) {
			victim, most = r, s
		}
	}
	if victim == nil || len(v.reps)-v.killedCount() < 2 {
		return
	}
	v.victim, v.killAt, v.pending = victim, time.Now(), map[cluster.ID]bool{}
	var ids []string
	for _, s := range most {
		v.pending[cluster.ID{Kind: s.Kind, ID: s.ID}] = true
		ids = append(ids, s.ID)
	}
	sort.Strings(ids)
	victim.kill()
	fmt.Fprintf(out, "%s killed %s as a crash would; it owned %s\n", at, victim.name, orNothing(ids))
	fmt.Fprintf(out, "        no handover: its NATS connection dropped, so its member key and leases expire after the lease TTL\n")
	if len(ids) == 0 {
		v.done = true
	}
}

func (v *clusterView) killedCount() int {
	n := 0
	for _, r := range v.reps {
		if r.killed {
			n++
		}
	}
	return n
}

// failovers sums datacore_cluster_failover_seconds over the live replicas:
// the count and a line saying it.
func (v *clusterView) failovers(ttl string) (int, string) {
	var count uint64
	var sum float64
	for _, r := range v.reps {
		if r.killed {
			continue
		}
		var d dto.Metric
		if r.m.ClusterFailover.Write(&d) == nil && d.Histogram != nil {
			count += d.Histogram.GetSampleCount()
			sum += d.Histogram.GetSampleSum()
		}
	}
	if count == 0 {
		return 0, "datacore_cluster_failover_seconds on the survivors: none counted"
	}
	return int(count), fmt.Sprintf("datacore_cluster_failover_seconds on the survivors: %d streams, mean %.1fs (from the lost owner's last lease renewal to connected; lease TTL %s)",
		count, sum/float64(count), ttl)
}

// lines are the summary's lines about the replicas: per replica its streams
// and messages published since the last summary.
func (v *clusterView) lines(st cluster.Status) []string {
	var out []string
	for _, r := range v.reps {
		if r.killed {
			out = append(out, fmt.Sprintf("%s: killed %s ago", r.name, time.Since(v.killAt).Round(time.Second)))
			continue
		}
		streams := r.b.Supervisor().Streams()
		var ids []string
		connected := 0
		for _, s := range streams {
			ids = append(ids, s.ID)
			if s.State == fixtures.StateConnected {
				connected++
			}
		}
		sort.Strings(ids)
		pub := r.b.Published()
		line := fmt.Sprintf("%s: streams connected %d/%d (%s), published %d (+%d)", r.name, connected, len(streams), orNothing(ids), pub, pub-r.published)
		r.published = pub
		if st.Leader == r.name {
			line += "; lists the organizations (discovery leader)"
		}
		out = append(out, line)
	}
	return out
}

// metrics are the live and killed replicas' metrics, for the summary's totals.
func (v *clusterView) metrics() []*metrics.Metrics {
	out := make([]*metrics.Metrics, 0, len(v.reps))
	for _, r := range v.reps {
		out = append(out, r.m)
	}
	return out
}

func sortedIDs(set map[cluster.ID]bool) []cluster.ID {
	out := make([]cluster.ID, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func orNothing(ids []string) string {
	if len(ids) == 0 {
		return "nothing"
	}
	return strings.Join(ids, ", ")
}

// printCluster prints the cluster's part of the demo's header.
func printCluster(out io.Writer, o demoOptions, cfg *config.Config, natsURL string, reps []*replica) {
	fmt.Fprintf(out, "  cluster %-12q %d replicas in this process sharing the followed set, each ID owned by one of them, lease TTL %s\n",
		cfg.Cluster, len(reps), cfg.LeaseTTL)
	if o.killAfter > 0 {
		fmt.Fprintf(out, "                       after %s the replica owning the most streams is killed, with no handover\n", o.killAfter)
	}
	fmt.Fprintf(out, "                       (try: nats kv ls %s -s %s)\n", cluster.FollowedBucket(cfg.Cluster), natsURL)
	var base string
	for _, r := range reps {
		if r.b.Addr() == nil {
			continue
		}
		base = "http://" + r.b.Addr().String()
		fmt.Fprintf(out, "  %-20s %s/v1/cluster  %s/v1/subscriptions  %s/metrics\n", r.name+" HTTP", base, base, base)
	}
	if base != "" {
		fmt.Fprintf(out, "                       admin token %q on any replica: curl -X PUT -H 'Authorization: Bearer demo' %s/v1/fixtures/sr:match:1234\n", cfg.AdminToken, base)
	}
}
