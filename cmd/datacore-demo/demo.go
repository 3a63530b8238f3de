// Command datacore-demo runs the local Datacore emulator, an embedded NATS
// server and the bridge on this machine, and prints the messages flowing and
// the signed URLs rotating. By default the bridge also follows an organization
// of the emulator, whose games are discovered through the REST API, played,
// finished and unfollowed every -game-every. It runs -replicas bridges (3 by
// default) in cluster mode, spreads the followed set over them, kills one
// after -kill-after and prints how its streams are taken over; -replicas 1
// runs one bridge alone.
//
//	go run ./cmd/datacore-demo [-duration 20s] [-jetstream] [-organizations ""] [-replicas 1] [-h]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
	"github.com/datacore-bridge/datacore-bridge/metrics"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := demoCommand(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// demoCommand runs the local Datacore emulator, an embedded NATS server and the
// bridge, and prints what flows until ctx is done or -duration has passed.
func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("datacore-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		duration  = fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
		nFix      = fs.Int("fixtures", 3, "fixtures to follow")
		nVen      = fs.Int("venues", 1, "venues to follow")
		grantTTL  = fs.Duration("grant-ttl", 20*time.Second, "how long each signed URL is valid (whole seconds)")
		rate      = fs.Float64("rate", 10, "messages per second per fixture")
		every     = fs.Duration("every", 2*time.Second, "how often to print the summary")
		jetStream = fs.Bool("jetstream", false, "publish with JetStream (at-least-once) into a stream named DATACORE")
		natsPort  = fs.Int("nats-port", -1, "port of the embedded NATS server (-1: a random free port)")
		httpAddr  = fs.String("http-addr", "127.0.0.1:0", "address of the bridge's HTTP API (health, metrics, admin)")
		logLevel  = fs.String("log-level", "warn", "bridge log level: debug, info, warn or error")
		orgs      = fs.String("organizations", "demo-org", "comma-separated organizations whose games the bridge discovers and follows (\"\": none)")
		gameEvery = fs.Duration("game-every", 30*time.Second, "time between two games' starts in each organization (whole seconds)")
		gameLead  = fs.Duration("game-lead", 10*time.Second, "when the first new game starts, after the demo's start (whole seconds)")
		gameLen   = fs.Duration("game-length", 40*time.Second, "how long a game is IN_PROGRESS")
		finalAft  = fs.Duration("game-final-after", 5*time.Second, "how long a game is FINISHED before CONFIRMED")
		interval  = fs.Duration("discover-interval", 2*time.Second, "DATACORE_DISCOVER_INTERVAL: how often the organizations' fixtures are listed")
		ahead     = fs.Duration("discover-ahead", 20*time.Second, "DATACORE_DISCOVER_AHEAD: a game is followed from this long before its start")
		stopAfter = fs.Duration("stop-after-final", 5*time.Second, "DATACORE_STOP_AFTER_FINAL: a game is unfollowed this long after CONFIRMED")
		replicas  = fs.Int("replicas", 3, "bridges to run in cluster mode (DATACORE_CLUSTER=demo) on the embedded NATS's JetStream KV, each fixture owned by one of them;\n-http-addr's port, when not 0, counts up per replica (1: one bridge alone, no cluster)")
		killAfter = fs.Duration("kill-after", 20*time.Second, "with -replicas above 1: kill the replica owning the most streams this long after the start, as a crash would (0: never)")
		leaseTTL  = fs.Duration("lease-ttl", 3*time.Second, "with -replicas above 1: DATACORE_LEASE_TTL, after which a killed replica's streams are taken over")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: datacore-demo [flags]\n\nRuns the local Datacore emulator, an embedded NATS server and the bridge,\nand prints the messages flowing, the signed URLs rotating and the games of an\norganization being discovered, played, finished and unfollowed.\nIt runs three bridges sharing the fixtures (-replicas), kills one after\n-kill-after and prints which streams the others take over, and when.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *replicas < 1 {
		fmt.Fprintln(stderr, "-replicas: must be at least 1")
		return 2
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	log, err := bridge.NewLogger(*logLevel, "text", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "-log-level:", err)
		return 2
	}
	if err := runDemo(ctx, demoOptions{
		fixtures: *nFix, venues: *nVen, grantTTL: *grantTTL, rate: *rate, every: *every,
		jetStream: *jetStream, natsPort: *natsPort, httpAddr: *httpAddr,
		organizations: splitList(*orgs),
		schedule:      sim.Schedule{Every: *gameEvery, Lead: *gameLead, Length: *gameLen, FinalAfter: *finalAft},
		interval:      *interval, ahead: *ahead, stopAfter: *stopAfter,
		replicas: *replicas, killAfter: *killAfter, leaseTTL: *leaseTTL,
	}, stdout, log); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

type demoOptions struct {
	fixtures, venues int
	grantTTL         time.Duration
	rate             float64
	every            time.Duration
	jetStream        bool
	natsPort         int
	httpAddr         string
	// organizations are followed by discovery; empty: none.
	organizations []string
	schedule      sim.Schedule
	// interval, ahead and stopAfter are DATACORE_DISCOVER_INTERVAL,
	// DATACORE_DISCOVER_AHEAD and DATACORE_STOP_AFTER_FINAL.
	interval, ahead, stopAfter time.Duration
	// replicas above 1 runs that many bridges in cluster mode; killAfter
	// (0: never) kills one of them; leaseTTL is DATACORE_LEASE_TTL.
	replicas            int
	killAfter, leaseTTL time.Duration
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func runDemo(ctx context.Context, o demoOptions, out io.Writer, log *slog.Logger) error {
	var fixtures, venues []string
	for i := range o.fixtures {
		fixtures = append(fixtures, fmt.Sprintf("sr:match:%d", 60000001+i))
	}
	for i := range o.venues {
		venues = append(venues, fmt.Sprintf("venue-%d", i+1))
	}
	const credID, credSecret = "demo-credential", "demo-secret"
	clustered := o.replicas > 1
	first := &replica{name: replicaName(0), m: metrics.New(), log: log}
	if clustered {
		first = newReplica(log, 0)
	}
	firstAddr, err := replicaAddr(o.httpAddr, 0)
	if err != nil {
		return err
	}
	m := first.m
	simStart := time.Now() // the emulator's schedule counts from its start, a moment later
	bed, err := testbed.Start(ctx, testbed.Options{
		Sim: sim.Options{
			CredentialID:     credID,
			CredentialSecret: credSecret,
			Fixtures:         fixtures,
			Venues:           venues,
			GrantTTL:         o.grantTTL,
			Feed:             sim.Feed{Rate: o.rate},
			Organizations:    o.organizations,
			Schedule:         o.schedule,
			Logger:           log.With("component", "emulator"),
		},
		JetStream: o.jetStream,
		NATS: func(so *server.Options) {
			so.Port = o.natsPort
			if clustered {
				so.JetStream = true // the cluster's KV buckets, in a temporary store
			}
		},
		Configure: func(cfg *config.Config) {
			cfg.Fixtures, cfg.Venues = fixtures, venues
			cfg.HTTPAddr = firstAddr
			cfg.AdminToken = "demo"
			if len(o.organizations) > 0 {
				cfg.Organizations = o.organizations
				cfg.DiscoverInterval, cfg.DiscoverAhead = o.interval, o.ahead
				cfg.StopAfterFinal = o.stopAfter
			}
			if clustered {
				cfg.Cluster, cfg.Instance, cfg.LeaseTTL = demoCluster, first.name, o.leaseTTL
			}
		},
		Bridge: bridge.Options{Metrics: m, MaxBackoff: 5 * time.Second},
		Logger: first.log,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := bed.Close(); err != nil {
			log.Error("shutdown incomplete", "err", err)
		}
	}()
	emu, ns, cfg, b := bed.Emulator, bed.NATS, bed.Config, bed.Bridge
	first.b = b
	view := &clusterView{reps: []*replica{first}}
	if clustered {
		if view.reps, err = startReplicas(ctx, o.replicas, first, cfg, o.httpAddr, log); err != nil {
			return err
		}
		defer func() {
			// The demo stops the replicas itself, all at once; then the bed
			// stops NATS and the emulator.
			for _, err := range stopReplicas(view.reps) {
				if err != nil {
					log.Error("shutdown incomplete", "err", err)
				}
			}
			bed.Bridge = nil
		}()
	}

	// A subscriber of our own shows what reaches NATS.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	w := &watcher{byKind: map[string]int{}, status: map[string]string{}}
	if _, err := nc.Subscribe(cfg.SubjectPrefix+".>", w.take); err != nil {
		return err
	}

	fmt.Fprintf(out, "datacore-bridge demo: %d fixtures and %d venues, signed URLs valid for %s\n", len(fixtures), len(venues), o.grantTTL)
	fmt.Fprintf(out, "  emulator access API  %s\n", emu.APIURL())
	if len(o.organizations) > 0 {
		sc := o.schedule
		fmt.Fprintf(out, "  organizations        %s: a game every %s, each IN_PROGRESS for %s; listed every %s at %s/<sport>/o/<org>/fixtures,\n",
			strings.Join(o.organizations, ", "), sc.Every, sc.Length, o.interval, emu.RESTURL())
		fmt.Fprintf(out, "                       followed from %s before its start, unfollowed %s after CONFIRMED\n", o.ahead, o.stopAfter)
	}
	fmt.Fprintf(out, "  NATS                 %s   (try: nats sub '%s.>' -s %s)\n", ns.ClientURL(), cfg.SubjectPrefix, ns.ClientURL())
	if clustered {
		printCluster(out, o, cfg, ns.ClientURL(), view.reps)
	} else if b.Addr() != nil {
		base := "http://" + b.Addr().String()
		fmt.Fprintf(out, "  bridge HTTP          %s/v1/subscriptions  %s/metrics  %s/readyz\n", base, base, base)
		fmt.Fprintf(out, "                       admin token %q: curl -X PUT -H 'Authorization: Bearer demo' %s/v1/fixtures/sr:match:1234\n", cfg.AdminToken, base)
	}
	fmt.Fprintln(out, "Ctrl-C stops it.")

	tick := time.NewTicker(o.every)
	defer tick.Stop()
	var killC <-chan time.Time
	if clustered && o.killAfter > 0 {
		kill := time.NewTimer(o.killAfter)
		defer kill.Stop()
		killC = kill.C
	}
	look := time.NewTicker(200 * time.Millisecond)
	defer look.Stop()
	started := time.Now()
	shownSample := false
	games := &gameLog{followed: map[string]string{}, sched: o.schedule, simStart: simStart, ahead: o.ahead}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(out, "\nafter %s: %s\n", time.Since(started).Round(time.Second), w.summary(view.metrics()...))
			if len(o.organizations) > 0 {
				fmt.Fprintf(out, "        %s\n", games.summary(emu.Stats()))
			}
			if clustered {
				if st, ok := view.status(); ok {
					fmt.Fprintf(out, "        owners at the end: %s\n", view.owners(st))
				}
			}
			return nil
		case <-killC:
			view.kill(out, fmt.Sprintf("[%5s]", time.Since(started).Round(time.Second)))
		case <-look.C:
			if !clustered {
				games.look(out, time.Since(started), b.Supervisor().Streams(), w.statuses())
				continue
			}
			if st, ok := view.status(); ok {
				games.look(out, time.Since(started), followed(st), w.statuses())
				view.look(out, fmt.Sprintf("[%5s]", time.Since(started).Round(time.Second)), st)
			}
		case <-tick.C:
			fmt.Fprintf(out, "[%5s] %s\n", time.Since(started).Round(time.Second), w.summary(view.metrics()...))
			if !clustered {
				fmt.Fprintf(out, "        %s\n", streamsLine(b.Supervisor().Streams()))
			} else if st, ok := view.status(); ok {
				for _, l := range view.lines(st) {
					fmt.Fprintf(out, "        %s\n", l)
				}
			}
			if len(o.organizations) > 0 {
				fmt.Fprintf(out, "        %s\n", games.summary(emu.Stats()))
			}
			if subj, payload, ok := w.sample(); ok && !shownSample {
				shownSample = true
				fmt.Fprintf(out, "        sample: %s %s\n", subj, truncate(payload, 160))
			}
		}
	}
}

// watcher counts what the demo's own NATS subscriber receives.
type watcher struct {
	mu       sync.Mutex
	total    int
	byKind   map[string]int
	lastSubj string
	lastData []byte
	status   map[string]string // fixture ID → last status seen on its stream
}

func (w *watcher) take(msg *nats.Msg) {
	kind := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
	var st struct {
		Data struct {
			Status struct {
				Fixture string `json:"fixture"`
			} `json:"status"`
		} `json:"data"`
	}
	id := msg.Header.Get("Datacore-Fixture-Id")
	if kind == "status" && id != "" && json.Unmarshal(msg.Data, &st) != nil {
		st.Data.Status.Fixture = ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := st.Data.Status.Fixture; s != "" {
		w.status[id] = s
	}
	w.total++
	w.byKind[kind]++
	if kind == "events" || w.lastSubj == "" {
		w.lastSubj, w.lastData = msg.Subject, msg.Data
	}
}

// statuses returns a copy of the last status seen per fixture.
func (w *watcher) statuses() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.status))
	for k, v := range w.status {
		out[k] = v
	}
	return out
}

func (w *watcher) sample() (string, []byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastSubj, w.lastData, w.lastSubj != ""
}

// summary counts the messages seen and, over ms, the grants, rotations,
// reconnects and duplicates.
func (w *watcher) summary(ms ...*metrics.Metrics) string {
	w.mu.Lock()
	kinds := make([]string, 0, len(w.byKind))
	for k := range w.byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d messages in NATS (", w.total)
	for i, k := range kinds {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s %d", k, w.byKind[k])
	}
	w.mu.Unlock()
	var grants, rotations, reconnects, dups float64
	for _, m := range ms {
		grants += testbed.CounterSum(m.Grants)
		rotations += testbed.CounterSum(m.Rotations.WithLabelValues("ok"))
		reconnects += testbed.CounterSum(m.Reconnects)
		dups += testbed.CounterSum(m.Duplicates)
	}
	fmt.Fprintf(&sb, "); grants %d, rotations %d, reconnects %d, duplicates dropped %d",
		int(grants), int(rotations), int(reconnects), int(dups))
	return sb.String()
}

// gameLog prints the life of the games discovery follows: followed, status
// changes seen in NATS, unfollowed.
type gameLog struct {
	followed   map[string]string // fixture ID → last status printed
	discovered int
	unfollowed int
	sched      sim.Schedule
	simStart   time.Time
	ahead      time.Duration
}

// look compares the streams and statuses with what was printed and prints the changes.
func (g *gameLog) look(out io.Writer, since time.Duration, streams []fixtures.StreamInfo, status map[string]string) {
	at := fmt.Sprintf("[%5s]", since.Round(time.Second))
	now := map[string]bool{}
	for _, s := range streams {
		if s.Kind != access.Fixture || s.Source != fixtures.SourceDiscovery {
			continue
		}
		now[s.ID] = true
		if _, ok := g.followed[s.ID]; !ok {
			g.followed[s.ID] = ""
			g.discovered++
			fmt.Fprintf(out, "%s discovered and followed %s%s\n", at, s.ID, g.when(s.ID))
		}
	}
	ids := make([]string, 0, len(g.followed))
	for id := range g.followed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if st := status[id]; st != "" && st != g.followed[id] {
			g.followed[id] = st
			fmt.Fprintf(out, "%s %s is %s\n", at, id, st)
		}
		if !now[id] {
			delete(g.followed, id)
			g.unfollowed++
			fmt.Fprintf(out, "%s unfollowed %s (last status %s)\n", at, id, orDash(status[id]))
		}
	}
}

// when says when a game of the emulator's schedule starts and how long ago
// it entered the discovery window; "" for another ID.
func (g *gameLog) when(id string) string {
	i := strings.LastIndex(id, ":game:")
	if i < 0 {
		return ""
	}
	n, err := strconv.Atoi(id[i+len(":game:"):])
	if err != nil {
		return ""
	}
	start := g.simStart.Add(g.sched.Lead + time.Duration(n)*g.sched.Every)
	entered := time.Since(start.Add(-g.ahead))
	if until := time.Until(start); until > 0 {
		return fmt.Sprintf(" (starts in %s; entered the window %s ago)", until.Round(time.Second), entered.Round(100*time.Millisecond))
	}
	return fmt.Sprintf(" (started %s ago)", (-time.Until(start)).Round(time.Second))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// summary counts the games and the REST API calls the emulator answered.
func (g *gameLog) summary(st sim.Stats) string {
	var rest, tok uint64
	for _, n := range st.RESTCalls {
		rest += n
	}
	for _, n := range st.TokenCalls {
		tok += n
	}
	return fmt.Sprintf("discovery: games followed now %d, discovered %d, unfollowed %d; REST listing calls %d, REST token calls %d",
		len(g.followed), g.discovered, g.unfollowed, rest, tok)
}

// streamsLine says how many streams are connected and when the next signed URL expires.
func streamsLine(streams []fixtures.StreamInfo) string {
	connected := 0
	var next time.Time
	for _, s := range streams {
		if s.State == fixtures.StateConnected {
			connected++
		}
		if s.GrantExpiresAt != nil && (next.IsZero() || s.GrantExpiresAt.Before(next)) {
			next = *s.GrantExpiresAt
		}
	}
	line := fmt.Sprintf("streams connected %d/%d", connected, len(streams))
	if !next.IsZero() {
		line += fmt.Sprintf(", next signed URL expires in %s (rotation starts ahead of it)", time.Until(next).Round(100*time.Millisecond))
	}
	return line
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
