// Command datacore-demo runs the local Datacore emulator, an embedded NATS
// server and the bridge on this machine, and prints the messages flowing and
// the signed URLs rotating.
//
//	go run ./cmd/datacore-demo [-duration 20s] [-jetstream] [-h]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

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
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: datacore-demo [flags]\n\nRuns the local Datacore emulator, an embedded NATS server and the bridge,\nand prints the messages flowing and the signed URLs rotating.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
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
	m := metrics.New()
	bed, err := testbed.Start(ctx, testbed.Options{
		Sim: sim.Options{
			CredentialID:     credID,
			CredentialSecret: credSecret,
			Fixtures:         fixtures,
			Venues:           venues,
			GrantTTL:         o.grantTTL,
			Feed:             sim.Feed{Rate: o.rate},
		},
		JetStream: o.jetStream,
		NATS:      func(so *server.Options) { so.Port = o.natsPort },
		Configure: func(cfg *config.Config) {
			cfg.Fixtures, cfg.Venues = fixtures, venues
			cfg.HTTPAddr = o.httpAddr
			cfg.AdminToken = "demo"
		},
		Bridge: bridge.Options{Metrics: m, MaxBackoff: 5 * time.Second},
		Logger: log,
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

	// A subscriber of our own shows what reaches NATS.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	w := &watcher{byKind: map[string]int{}}
	if _, err := nc.Subscribe(cfg.SubjectPrefix+".>", w.take); err != nil {
		return err
	}

	fmt.Fprintf(out, "datacore-bridge demo: %d fixtures and %d venues, signed URLs valid for %s\n", len(fixtures), len(venues), o.grantTTL)
	fmt.Fprintf(out, "  emulator access API  %s\n", emu.APIURL())
	fmt.Fprintf(out, "  NATS                 %s   (try: nats sub '%s.>' -s %s)\n", ns.ClientURL(), cfg.SubjectPrefix, ns.ClientURL())
	if b.Addr() != nil {
		base := "http://" + b.Addr().String()
		fmt.Fprintf(out, "  bridge HTTP          %s/v1/subscriptions  %s/metrics  %s/readyz\n", base, base, base)
		fmt.Fprintf(out, "                       admin token %q: curl -X PUT -H 'Authorization: Bearer demo' %s/v1/fixtures/sr:match:1234\n", cfg.AdminToken, base)
	}
	fmt.Fprintln(out, "Ctrl-C stops it.")

	tick := time.NewTicker(o.every)
	defer tick.Stop()
	started := time.Now()
	shownSample := false
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(out, "\nafter %s: %s\n", time.Since(started).Round(time.Second), w.summary(m))
			return nil
		case <-tick.C:
			fmt.Fprintf(out, "[%5s] %s\n", time.Since(started).Round(time.Second), w.summary(m))
			fmt.Fprintf(out, "        %s\n", streamsLine(b.Supervisor().Streams()))
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
}

func (w *watcher) take(msg *nats.Msg) {
	kind := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
	w.mu.Lock()
	defer w.mu.Unlock()
	w.total++
	w.byKind[kind]++
	if kind == "events" || w.lastSubj == "" {
		w.lastSubj, w.lastData = msg.Subject, msg.Data
	}
}

func (w *watcher) sample() (string, []byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastSubj, w.lastData, w.lastSubj != ""
}

func (w *watcher) summary(m *metrics.Metrics) string {
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
	fmt.Fprintf(&sb, "); grants %d, rotations %d, reconnects %d, duplicates dropped %d",
		int(testbed.CounterSum(m.Grants)), int(testbed.CounterSum(m.Rotations.WithLabelValues("ok"))),
		int(testbed.CounterSum(m.Reconnects)), int(testbed.CounterSum(m.Duplicates)))
	return sb.String()
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
