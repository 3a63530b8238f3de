package main

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/sink"
)

// microPoint is the cost of one step of the per-message path.
type microPoint struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"nsPerOp"`
	BytesPerOp  float64 `json:"bytesPerOp"`
	AllocsPerOp float64 `json:"allocsPerOp"`
}

// microBench runs f with testing.Benchmark for about d and reports its
// time and allocations per operation.
func microBench(name string, d time.Duration, f func(b *testing.B)) microPoint {
	setBenchTime(d)
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		f(b)
	})
	p := microPoint{Name: name, BytesPerOp: float64(r.AllocedBytesPerOp()), AllocsPerOp: float64(r.AllocsPerOp())}
	if r.N > 0 {
		p.NsPerOp = float64(r.T.Nanoseconds()) / float64(r.N)
	}
	return p
}

// setBenchTime sets how long testing.Benchmark runs a benchmark: its
// -test.benchtime flag, registered by testing.Init outside a test binary.
func setBenchTime(d time.Duration) {
	testing.Init()
	_ = flag.Set("test.benchtime", d.String())
}

// runMicro measures the steps of the per-message path that are ours and
// exported: building the NATS message (subject precomputed per route,
// headers per message), the JetStream message id, and the hand-off of a
// message to a core publisher on an embedded NATS server. `go test -bench
// . ./fixtures/ ./sink/` has these and the rest (dedup, the whole handle path).
func runMicro(ctx context.Context, o benchOpts) ([]microPoint, error) {
	r := sink.NewRoute("datacore", "basketball", "fixture", benchFixture, "read:stream_events", "s/b/b1te1/60000001/r/e")
	payload := make([]byte, benchPayloadSize)
	now := time.Now()
	var out []microPoint
	var sinkMsg *nats.Msg
	out = append(out, microBench("sink.Route.Msg (subject + headers)", o.microDur, func(b *testing.B) {
		for b.Loop() {
			sinkMsg = r.Msg(payload, now)
		}
	}))
	_ = sinkMsg
	var id string
	out = append(out, microBench("sink.MsgID (Nats-Msg-Id, JetStream)", o.microDur, func(b *testing.B) {
		for b.Loop() {
			id = sink.MsgID(r.Subject, payload)
		}
	}))
	_ = id

	ns, err := startBenchNATS(false)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	core := sink.NewCore(nc, sink.CoreOptions{})
	defer core.Close()
	done := func(error) {}
	var perr error
	out = append(out, microBench("Route.Msg + sink.Core.Publish (embedded NATS)", o.microDur, func(b *testing.B) {
		for b.Loop() {
			if err := core.Publish(ctx, r.Msg(payload, now), done); err != nil {
				perr = err
				return
			}
		}
	}))
	if perr != nil {
		return nil, perr
	}
	return out, nil
}
