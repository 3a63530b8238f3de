package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/mqttclient"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// latPoint is the latency at one rate: the emulator's publish (data.sentAt)
// to receipt by a NATS subscriber, through the bridge; and, for reference, to
// receipt by a paho client on the emulator directly.
type latPoint struct {
	Rate     float64 `json:"rate"` // messages per second
	Samples  float64 `json:"samples"`
	P50      float64 `json:"p50Millis"`
	P99      float64 `json:"p99Millis"`
	Max      float64 `json:"maxMillis"`
	PahoP50  float64 `json:"pahoP50Millis,omitempty"`
	PahoP99  float64 `json:"pahoP99Millis,omitempty"`
	PahoMax  float64 `json:"pahoMaxMillis,omitempty"`
	PahoSamp float64 `json:"pahoSamples,omitempty"`
}

// latencies collects sentAt-to-receipt delays.
type latencies struct {
	mu      sync.Mutex
	on      bool
	samples []time.Duration
}

func (l *latencies) take(payload []byte) {
	now := time.Now().UnixNano()
	sent, ok := jsonInt(payload, keySentAt)
	if !ok {
		return
	}
	l.mu.Lock()
	if l.on {
		l.samples = append(l.samples, time.Duration(now-sent))
	}
	l.mu.Unlock()
}

func (l *latencies) record(on bool) {
	l.mu.Lock()
	l.on = on
	l.mu.Unlock()
}

func (l *latencies) count() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.samples))
}

// quantiles returns p50, p99 and max in milliseconds, and the sample count.
func (l *latencies) quantiles() (p50, p99, maxv, n float64) {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	l.mu.Unlock()
	if len(s) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(s)
	q := func(f float64) float64 {
		i := min(int(f*float64(len(s))), len(s)-1)
		return float64(s[i]) / float64(time.Millisecond)
	}
	return q(0.50), q(0.99), float64(s[len(s)-1]) / float64(time.Millisecond), float64(len(s))
}

// runLatency measures at each rate of o.latRates.
func runLatency(ctx context.Context, o benchOpts, log *slog.Logger) ([]latPoint, error) {
	var out []latPoint
	for _, rate := range o.latRates {
		p := latPoint{Rate: rate}
		var err error
		if p.P50, p.P99, p.Max, p.Samples, err = benchBridgeLatency(ctx, o, rate, log); err != nil {
			return nil, err
		}
		if o.pahoLatency {
			if p.PahoP50, p.PahoP99, p.PahoMax, p.PahoSamp, err = benchPahoLatency(ctx, o, rate); err != nil {
				return nil, err
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// benchBridgeLatency runs the bridge in its default mode (QoS 1, core NATS)
// on one fixture fed at rate, with a NATS subscriber taking the delays.
func benchBridgeLatency(ctx context.Context, o benchOpts, rate float64, log *slog.Logger) (p50, p99, maxv, n float64, err error) {
	feed := sim.Feed{Rate: rate, PayloadSize: benchPayloadSize}
	emu, err := startBenchSim(ctx, []string{benchFixture}, feed, 0)
	if err != nil {
		return
	}
	defer emu.Close()
	ns, err := startBenchNATS(false)
	if err != nil {
		return
	}
	defer ns.Close()
	var lat latencies
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return
	}
	defer nc.Close()
	if _, err = nc.Subscribe("datacore.>", func(m *nats.Msg) { lat.take(m.Data) }); err != nil {
		return
	}
	if err = nc.Flush(); err != nil {
		return
	}
	b, err := startBenchBridge(ctx, benchBridge{
		apiURL: emu.APIURL(), natsURL: ns.ClientURL(), fixtures: []string{benchFixture}, qos: 1,
	}, log)
	if err != nil {
		return
	}
	defer func() { _ = b.Shutdown(context.Background()) }()
	err = collectLatency(ctx, o, b.Published, &lat)
	p50, p99, maxv, n = lat.quantiles()
	return
}

// benchPahoLatency is the reference: the same feed to a paho client.
func benchPahoLatency(ctx context.Context, o benchOpts, rate float64) (p50, p99, maxv, n float64, err error) {
	feed := sim.Feed{Rate: rate, PayloadSize: benchPayloadSize}
	emu, err := startBenchSim(ctx, []string{benchFixture}, feed, 0)
	if err != nil {
		return
	}
	defer emu.Close()
	g, err := benchGrant(ctx, emu.APIURL(), benchFixture)
	if err != nil {
		return
	}
	var lat latencies
	var got countingHandler
	c, err := mqttclient.Dial(ctx, mqttclient.Options{
		URL: g.URL, ClientID: g.ClientID, Topics: readTopics(g), QoS: 1,
		Handler: func(m mqttclient.Message) { lat.take(m.Payload); got.inc() },
	})
	if err != nil {
		return
	}
	defer c.Close()
	err = collectLatency(ctx, o, got.load, &lat)
	p50, p99, maxv, n = lat.quantiles()
	return
}

// collectLatency waits for the flow, warms up, then records for o.latDur.
func collectLatency(ctx context.Context, o benchOpts, count func() uint64, lat *latencies) error {
	if err := poll.Until(ctx, 20*time.Second, "first message", func() bool { return count() > 0 }); err != nil {
		return err
	}
	if !sleepCtx(ctx, o.warm) {
		return ctx.Err()
	}
	lat.record(true)
	ok := sleepCtx(ctx, o.latDur)
	lat.record(false)
	if !ok {
		return ctx.Err()
	}
	return nil
}

// countingHandler counts calls.
type countingHandler struct {
	mu sync.Mutex
	n  uint64
}

func (c *countingHandler) inc() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *countingHandler) load() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
