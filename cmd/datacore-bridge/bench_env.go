package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/metrics"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// The emulator's credentials in every benchmark.
const benchCredID, benchCredSecret = "bench-credential", "bench-secret"

// benchFixture is the fixture of the one-stream benchmarks.
const benchFixture = "sr:match:60000001"

// benchScopes are the scopes the bridge asks for by default; the emulator is
// told the customer holds exactly these, so that it generates nothing the
// bridge does not subscribe to.
var benchScopes = config.Defaults().FixtureScopes

// errBenchTimeout is returned when a benchmark waits in vain for its setup.
var errBenchTimeout = errors.New("timed out")

// startBenchSim starts the emulator for fixtures with feed and grants valid
// for ttl (0: an hour).
func startBenchSim(ctx context.Context, fixtures []string, feed sim.Feed, ttl time.Duration) (*sim.Server, error) {
	s, err := sim.Start(ctx, sim.Options{
		CredentialID:     benchCredID,
		CredentialSecret: benchCredSecret,
		Fixtures:         fixtures,
		Scopes:           benchScopes,
		GrantTTL:         ttl,
		Feed:             feed,
	})
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	return s, nil
}

// benchNATS is an embedded NATS server with its store directory.
type benchNATS struct {
	*server.Server
	dir string
}

// startBenchNATS starts an embedded NATS server on a random port, with
// JetStream in a temporary directory when jetStream is set.
func startBenchNATS(jetStream bool) (*benchNATS, error) {
	n := &benchNATS{}
	if jetStream {
		dir, err := os.MkdirTemp("", "datacore-bench-js-")
		if err != nil {
			return nil, err
		}
		n.dir = dir
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: jetStream, StoreDir: n.dir,
	})
	if err != nil {
		n.close()
		return nil, fmt.Errorf("nats server: %w", err)
	}
	n.Server = ns
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		n.close()
		return nil, fmt.Errorf("nats server: not ready: %w", errBenchTimeout)
	}
	return n, nil
}

func (n *benchNATS) close() {
	if n.Server != nil {
		n.Shutdown()
		n.WaitForShutdown()
	}
	if n.dir != "" {
		_ = os.RemoveAll(n.dir)
	}
}

// benchBridge describes the bridge a benchmark runs.
type benchBridge struct {
	apiURL, natsURL string
	fixtures        []string
	qos             int
	jetStream       bool
}

// startBenchBridge starts the bridge as serve would, with the HTTP API off and
// logs discarded except errors, which go to log.
func startBenchBridge(ctx context.Context, bb benchBridge, log *slog.Logger) (*bridge.Bridge, error) {
	cfg := config.Defaults()
	cfg.APIURL = bb.apiURL
	cfg.CredentialID, cfg.CredentialSecret = benchCredID, benchCredSecret
	cfg.Fixtures = bb.fixtures
	cfg.NATSURLs = []string{bb.natsURL}
	cfg.HTTPAddr = ""
	cfg.QoS = bb.qos
	cfg.JetStream = bb.jetStream
	// The emulator does not throttle: pacing would measure the pace, not
	// the bridge.
	cfg.AccessRate, cfg.AccessBurst = 1000, 1000
	cfg.MaxStreams = max(cfg.MaxStreams, len(bb.fixtures))
	if bb.jetStream {
		cfg.Stream = "DATACORE"
	}
	return bridge.Start(ctx, cfg, log, bridge.Options{Metrics: metrics.New(), MaxBackoff: 2 * time.Second})
}

// benchGrant asks the emulator for a grant on fixture, as the bridge does.
func benchGrant(ctx context.Context, apiURL, fixture string) (access.Grant, error) {
	ac, err := access.New(access.Options{
		BaseURL:     apiURL,
		Credentials: access.Credentials{CredentialID: benchCredID, CredentialSecret: benchCredSecret},
	})
	if err != nil {
		return access.Grant{}, err
	}
	return ac.Access(ctx, access.Request{Kind: access.Fixture, ID: fixture, Sport: "basketball", Scopes: benchScopes})
}

func readTopics(g access.Grant) []string {
	var out []string
	for _, t := range g.ReadTopics() {
		out = append(out, t.Topic)
	}
	return out
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes returns VmRSS of /proc/<pid>/status ("self" for this process), 0
// when unknown.
func rssBytes(pid string) uint64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// sleepCtx waits for d or until ctx is done and reports whether it waited the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitUntil checks cond every 10 ms until it holds (nil), ctx is done or
// limit has passed (an error naming what).
func waitUntil(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w after %s", what, errBenchTimeout, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// window is what happened in a measured interval.
type window struct {
	msgs uint64
	wall time.Duration
	cpu  time.Duration
}

func (w window) rate() float64 {
	if w.wall <= 0 {
		return 0
	}
	return float64(w.msgs) / w.wall.Seconds()
}

// cpuPerMsg is the process CPU per message in microseconds.
func (w window) cpuPerMsg() float64 {
	if w.msgs == 0 {
		return 0
	}
	return float64(w.cpu.Microseconds()) / float64(w.msgs)
}

// measure waits until count moves, lets it run for warm, then measures
// messages, wall time and process CPU over dur.
func measure(ctx context.Context, count func() uint64, warm, dur time.Duration) (window, error) {
	if err := waitUntil(ctx, 20*time.Second, "first message", func() bool { return count() > 0 }); err != nil {
		return window{}, err
	}
	if !sleepCtx(ctx, warm) {
		return window{}, ctx.Err()
	}
	runtime.GC() // start every window with the same heap
	n0, c0, t0 := count(), cpuTime(), time.Now()
	if !sleepCtx(ctx, dur) {
		return window{}, ctx.Err()
	}
	n1, c1, t1 := count(), cpuTime(), time.Now()
	return window{msgs: n1 - n0, wall: t1.Sub(t0), cpu: c1 - c0}, nil
}

// jsonInt finds "key":<digits> in payload and returns the number.
func jsonInt(payload []byte, key string) (int64, bool) {
	i := bytes.Index(payload, []byte(key))
	if i < 0 {
		return 0, false
	}
	i += len(key)
	var n int64
	start := i
	for i < len(payload) && payload[i] >= '0' && payload[i] <= '9' {
		n = n*10 + int64(payload[i]-'0')
		i++
	}
	return n, i > start
}

const (
	keySentAt = `"sentAt":`
	keySeq    = `"seq":`
)
