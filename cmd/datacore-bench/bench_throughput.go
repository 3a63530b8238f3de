package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/mqttclient"
	"github.com/datacore-bridge/datacore-bridge/sim"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// benchPayloadSize is the payload size of the throughput benchmarks.
const benchPayloadSize = 300

// floodFeed is the emulator's feed for the throughput benchmarks.
var floodFeed = sim.Feed{Flood: true, PayloadSize: benchPayloadSize}

// tputPoint is one throughput measurement.
type tputPoint struct {
	// Path is "bridge", "paho" (emulator to paho, no NATS) or "nats" (nats.go
	// publishing, no MQTT).
	Path      string  `json:"path"`
	QoS       int     `json:"qos"`       // MQTT QoS (bridge, paho); -1 for nats
	JetStream bool    `json:"jetstream"` // bridge, nats
	MsgPerSec float64 `json:"msgPerSec"`
	CPUPerMsg float64 `json:"cpuMicrosPerMsg"` // process CPU per message, µs
	Dropped   float64 `json:"emulatorDropped,omitempty"`
}

func (p tputPoint) key() string {
	switch p.Path {
	case "nats":
		if p.JetStream {
			return "nats jetstream publish"
		}
		return "nats core publish"
	case "paho":
		return fmt.Sprintf("paho qos%d receive", p.QoS)
	}
	mode := "core"
	if p.JetStream {
		mode = "jetstream"
	}
	return fmt.Sprintf("bridge %s qos%d", mode, p.QoS)
}

// runThroughput measures the bridge in its four modes and the ceilings.
func runThroughput(ctx context.Context, o benchOpts, log *slog.Logger) ([]tputPoint, error) {
	var out []tputPoint
	for _, js := range []bool{false, true} {
		for _, qos := range []int{0, 1} {
			if !o.paths["bridge"] {
				break
			}
			p, err := benchBridgeFlood(ctx, o, qos, js, log)
			if err != nil {
				return nil, fmt.Errorf("bridge qos %d jetstream %v: %w", qos, js, err)
			}
			out = append(out, p)
		}
	}
	for _, qos := range []int{0, 1} {
		if !o.paths["paho"] {
			break
		}
		p, err := benchPahoFlood(ctx, o, qos)
		if err != nil {
			return nil, fmt.Errorf("paho qos %d: %w", qos, err)
		}
		out = append(out, p)
	}
	for _, js := range []bool{false, true} {
		if !o.paths["nats"] {
			break
		}
		p, err := benchNATSPublish(ctx, o, js)
		if err != nil {
			return nil, fmt.Errorf("nats publish jetstream %v: %w", js, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// benchBridgeFlood runs emulator (one flooding fixture), NATS and the bridge.
func benchBridgeFlood(ctx context.Context, o benchOpts, qos int, js bool, log *slog.Logger) (tputPoint, error) {
	p := tputPoint{Path: "bridge", QoS: qos, JetStream: js}
	emu, err := startBenchSim(ctx, []string{benchFixture}, floodFeed, 0)
	if err != nil {
		return p, err
	}
	defer emu.Close()
	ns, err := startBenchNATS(js)
	if err != nil {
		return p, err
	}
	defer ns.Close()
	b, err := startBenchBridge(ctx, benchBridge{
		apiURL: emu.APIURL(), natsURL: ns.ClientURL(), fixtures: []string{benchFixture}, qos: qos, jetStream: js,
	}, log)
	if err != nil {
		return p, err
	}
	defer func() { _ = b.Shutdown(context.Background()) }()
	d0 := emu.Stats().Dropped
	w, err := measure(ctx, b.Published, o.warm, o.tputDur)
	if err != nil {
		return p, err
	}
	p.MsgPerSec, p.CPUPerMsg = w.rate(), w.cpuPerMsg()
	p.Dropped = float64(emu.Stats().Dropped - d0)
	return p, nil
}

// benchPahoFlood is the MQTT ceiling: the emulator flooding one paho client
// (through mqttclient, acknowledging QoS 1 at once) that only counts.
func benchPahoFlood(ctx context.Context, o benchOpts, qos int) (tputPoint, error) {
	p := tputPoint{Path: "paho", QoS: qos}
	emu, err := startBenchSim(ctx, []string{benchFixture}, floodFeed, 0)
	if err != nil {
		return p, err
	}
	defer emu.Close()
	g, err := benchGrant(ctx, emu.APIURL(), benchFixture)
	if err != nil {
		return p, err
	}
	var n atomic.Uint64
	c, err := mqttclient.Dial(ctx, mqttclient.Options{
		URL: g.URL, ClientID: g.ClientID, Topics: readTopics(g), QoS: byte(qos),
		Handler: func(mqttclient.Message) { n.Add(1) },
	})
	if err != nil {
		return p, err
	}
	defer c.Close()
	w, err := measure(ctx, n.Load, o.warm, o.tputDur)
	if err != nil {
		return p, err
	}
	p.MsgPerSec, p.CPUPerMsg = w.rate(), w.cpuPerMsg()
	return p, nil
}

// benchNATSPublish is the NATS ceiling: nats.go publishing, as fast as it
// takes them, messages like the bridge's (same subject, same headers with a
// fixed Datacore-Received-At, 300-byte payloads), each built afresh as any
// publisher of distinct messages must. JetStream: asynchronous publishes
// with a distinct Nats-Msg-Id each, at most 1024 unacknowledged, as the bridge.
func benchNATSPublish(ctx context.Context, o benchOpts, js bool) (tputPoint, error) {
	p := tputPoint{Path: "nats", QoS: -1, JetStream: js}
	ns, err := startBenchNATS(js)
	if err != nil {
		return p, err
	}
	defer ns.Close()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return p, err
	}
	defer nc.Close()

	payload := make([]byte, benchPayloadSize)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	proto := sink.NewRoute("datacore", "basketball", "fixture", benchFixture, "read:stream_events", "s/b/b1te1/60000001/r/e").Msg(payload, time.Now())
	newMsg := func() *nats.Msg {
		h := make(nats.Header, 8)
		for k, v := range proto.Header {
			h[k] = v
		}
		return &nats.Msg{Subject: proto.Subject, Header: h, Data: payload}
	}

	var (
		sent    atomic.Uint64
		pending func() int
		wg      sync.WaitGroup
	)
	runCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	if !js {
		pending = func() int { return 0 }
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				if err := nc.PublishMsg(newMsg()); err != nil {
					return
				}
				sent.Add(1)
			}
		}()
	} else {
		jsc, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
		if err != nil {
			return p, err
		}
		if err := sink.EnsureStream(ctx, jsc, "DATACORE", "datacore"); err != nil {
			return p, err
		}
		pending = jsc.PublishAsyncPending
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id uint64
			var buf [20]byte
			for runCtx.Err() == nil {
				m := newMsg()
				id++
				m.Header[jetstream.MsgIDHeader] = []string{string(strconv.AppendUint(buf[:0], id, 10))}
				for runCtx.Err() == nil {
					if _, err := jsc.PublishMsgAsync(m); err == nil {
						sent.Add(1)
						break
					}
					select { // stalled: let acknowledgements in
					case <-jsc.PublishAsyncComplete():
					case <-runCtx.Done():
					}
				}
			}
		}()
	}
	settled := func() uint64 {
		s := sent.Load()
		if n := uint64(pending()); n < s {
			return s - n
		}
		return 0
	}
	w, err := measure(ctx, settled, o.warm, o.tputDur)
	if err != nil {
		return p, err
	}
	p.MsgPerSec, p.CPUPerMsg = w.rate(), w.cpuPerMsg()
	return p, nil
}
