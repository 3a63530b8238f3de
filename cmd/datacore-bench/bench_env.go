package main

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
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

// startBenchSim starts the emulator for fixtures with feed and grants valid
// for ttl (0: an hour).
func startBenchSim(ctx context.Context, fixtures []string, feed sim.Feed, ttl time.Duration) (*sim.Server, error) {
	return testbed.StartEmulator(ctx, sim.Options{
		CredentialID:     benchCredID,
		CredentialSecret: benchCredSecret,
		Fixtures:         fixtures,
		Scopes:           benchScopes,
		GrantTTL:         ttl,
		Feed:             feed,
	})
}

// startBenchNATS starts an embedded NATS server on a random port, with
// JetStream in a temporary directory when jetStream is set.
func startBenchNATS(jetStream bool) (*testbed.NATS, error) {
	return testbed.StartNATS(testbed.NATSOptions(jetStream))
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
	cfg := testbed.Config(bb.apiURL, sim.Options{CredentialID: benchCredID, CredentialSecret: benchCredSecret}, bb.natsURL, bb.jetStream)
	cfg.Fixtures = bb.fixtures
	cfg.HTTPAddr = ""
	cfg.QoS = bb.qos
	// The emulator does not throttle: pacing would measure the pace, not
	// the bridge.
	cfg.AccessRate, cfg.AccessBurst = 1000, 1000
	cfg.MaxStreams = max(cfg.MaxStreams, len(bb.fixtures))
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
	if err := poll.Until(ctx, 20*time.Second, "first message", func() bool { return count() > 0 }); err != nil {
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
